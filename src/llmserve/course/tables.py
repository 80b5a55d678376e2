"""Markdown tables generated from the course manifest, so no list lives in two places.

A markdown file marks each generated table with a pair of comments:

    <!-- course.toml: labs vllm -->
    ...generated, do not edit...
    <!-- end course.toml -->

Kinds: `labs <track id>` (lab, notebooks, hours), `overview <track id>` (lab, what you learn,
notebooks), `profiles` (the common workload per profile), `budgets` (the time budgets).

    python -m llmserve.course.tables            # rewrite the tables in place
    python -m llmserve.course.tables --check    # exit 1 if a table is out of date
"""
from __future__ import annotations

import os
import re
import sys

from llmserve.course.config import REPO_ROOT
from llmserve.course.manifest import Lab, Manifest, manifest

FILES = ("README.md", "02-Labs/README.md", "02-Labs/vLLM_Track/VLLM_LABS_OVERVIEW.md",
         "02-Labs/Triton_Track/TRITON_LABS_OVERVIEW.md")
REGION = re.compile(r"(<!-- course\.toml: (?P<kind>[^>]*?) -->\n)(?P<body>.*?)(<!-- end course\.toml -->)", re.S)


def _link(lab: Lab, from_file: str) -> str:
    label = f"{lab.id} {lab.title}"
    if not lab.written:
        return f"{label} (planned)"
    target = os.path.relpath(REPO_ROOT / lab.folder, (REPO_ROOT / from_file).parent)
    return f"[{label}]({target}/)"


def _notebook_list(lab: Lab) -> str:
    return " · ".join(f"{nb.number} {nb.title}" for nb in lab.notebooks)


def _track(course: Manifest, track_id: str):
    for track in course.tracks:
        if track.id == track_id:
            return track
    raise KeyError(f"no track {track_id!r} in course.toml")


def render_table(kind: str, course: Manifest, from_file: str) -> str:
    words = kind.split()
    if words[0] == "labs":
        track = _track(course, words[1])
        rows = ["| lab | notebooks | hours |", "|---|---|---|"]
        rows += [f"| {_link(lab, from_file)} | {_notebook_list(lab)} | {lab.hours} |" for lab in track.labs]
    elif words[0] == "overview":
        track = _track(course, words[1])
        rows = ["| lab | you learn to | notebooks |", "|---|---|---|"]
        rows += [f"| {_link(lab, from_file)} | {lab.goal} | {_notebook_list(lab)} |" for lab in track.labs]
    elif words[0] == "profiles":
        chosen = {"ci": "`CI=true` (and always for `make test` notebooks)", "cpu": "no GPU",
                  "gpu": "CUDA available (`nvidia-smi`)"}
        rows = ["| profile | chosen when | workload (prompts × new tokens, load requests) |", "|---|---|---|"]
        for profile, when in chosen.items():
            sizes = course.workload(profile)
            rows.append(f"| `{profile}` | {when} | {sizes['num_prompts']} × {sizes['max_new_tokens']}, "
                        f"{sizes['load_requests']} |")
    elif words[0] == "budgets":
        b = course.budgets
        rows = ["| budget (`ci` profile, reference machine) | limit |", "|---|---:|",
                f"| one notebook | {b['notebook_budget_s']} s |",
                f"| mean over all notebooks | {b['notebook_average_budget_s']} s |",
                f"| the whole `make test` | {b['suite_budget_s'] // 60} min |"]
    else:
        raise ValueError(f"unknown table kind {kind!r}")
    return "\n".join(rows) + "\n"


def sync(text: str, from_file: str, course: Manifest) -> str:
    return REGION.sub(lambda m: m.group(1) + render_table(m.group("kind"), course, from_file) + m.group(4), text)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    check = "--check" in argv
    course = manifest()
    stale = []
    for name in FILES:
        path = REPO_ROOT / name
        text = path.read_text(encoding="utf-8")
        new = sync(text, name, course)
        if new != text:
            stale.append(name)
            if not check:
                path.write_text(new, encoding="utf-8")
    for name in stale:
        print(f"{'out of date' if check else 'updated'}: {name}")
    return 1 if (check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
