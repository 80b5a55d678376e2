"""Triton Lab 2.5 · 02 CI/CD Pipeline: reference answers (spoilers)."""


def _model(root):
    return root / "repositories" / "pipeline" / "scorer" / "2" / "model.py"


def solutions(ns):
    def version_disagrees_with_its_folder(root):  # config.pbtxt is untouched, so lint passes
        path = _model(root)
        path.write_text(path.read_text().replace("version = 2", "version = 3"))

    # lint, tests and the smoke test look at the candidate alone; only the canary compares it with production
    # (64 layers add about 30 ms to the p95 here, over the gate's 10 ms floor and 1.5x ratio)
    return {"answer_latency_step": "canary gate", "break_for_tests": version_disagrees_with_its_folder}


def wrong_answers(ns):
    def wrong_dims(root):  # lint catches this one first
        path = root / "repositories" / "pipeline" / "scorer" / "config.pbtxt"
        path.write_text(path.read_text().replace("dims: [ 16 ]", "dims: [ 0 ]", 1))

    return {"answer_latency_step": "deploy", "break_for_tests": wrong_dims}
