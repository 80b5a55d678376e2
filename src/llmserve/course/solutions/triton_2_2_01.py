"""Triton Lab 2.2 · 01 Multi-Model Repository: reference answers (spoilers)."""
import json


def _reload(client, policy) -> None:
    config = client.get_model_config("classifier")
    config["version_policy"] = policy
    client.load_model("classifier", config=json.dumps(config))


def solutions(ns):
    client = ns["client"]
    index = client.get_model_repository_index()
    ready = {model: sorted(entry["version"] for entry in index
                           if entry["name"] == model and entry.get("state") == "READY")
             for model in ("embedder", "tokenizer")}
    return {"answer_ready": ready,
            # the configuration's version_policy chooses the versions; `all` (or specific 1 and 2) serves both
            "serve_both_classifier_versions": lambda client: _reload(client, {"all": {}})}


def wrong_answers(ns):
    return {"answer_ready": {"embedder": ["1", "2"], "tokenizer": []},
            # the file's own policy again: latest, one version
            "serve_both_classifier_versions": lambda client: _reload(client, {"latest": {"num_versions": 1}})}
