"""The course manifest (`course.toml` at the repository root), read once.

It is the one list of tracks, labs, notebooks (titles, estimated minutes), time budgets and
per-profile workload sizes. `workload()`, `make status`, the docs tests and the README tables
read it; nothing else lists them.

    from llmserve.course.manifest import manifest
    for notebook in manifest().notebooks():
        print(notebook.heading, notebook.exists)
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from llmserve.course.config import PROFILES, REPO_ROOT

MANIFEST_PATH = REPO_ROOT / "course.toml"


class ManifestError(ValueError):
    """The manifest is malformed: the message says what and where."""


@dataclass(frozen=True)
class Notebook:
    track: str          # "vLLM" or "Triton"
    lab: str            # "2.1"
    number: str         # "01"
    title: str          # "Setup and Installation"
    minutes: int        # estimated student time
    path: str           # relative to the repository root

    @property
    def heading(self) -> str:
        """How the notebook's title cell starts: "vLLM Lab 2.1 · 01 — Setup and Installation"."""
        return f"{self.track} Lab {self.lab} · {self.number} — {self.title}"

    @property
    def exists(self) -> bool:
        return (REPO_ROOT / self.path).exists()


@dataclass(frozen=True)
class Lab:
    track: str
    id: str
    title: str
    folder: str         # relative to the repository root
    hours: str
    goal: str
    notebooks: tuple[Notebook, ...]

    @property
    def name(self) -> str:
        return f"{self.track} Lab {self.id} · {self.title}"

    @property
    def written(self) -> bool:
        return any(n.exists for n in self.notebooks)


@dataclass(frozen=True)
class Track:
    id: str
    name: str
    folder: str
    overview: str
    labs: tuple[Lab, ...]


@dataclass(frozen=True)
class Manifest:
    title: str
    budgets: dict[str, int]
    tracks: tuple[Track, ...]
    workload_groups: dict[str, dict[str, dict[str, int]]]  # group -> profile -> sizes

    def labs(self) -> list[Lab]:
        return [lab for track in self.tracks for lab in track.labs]

    def notebooks(self) -> list[Notebook]:
        return [nb for lab in self.labs() for nb in lab.notebooks]

    def notebook(self, path: str | Path) -> Notebook | None:
        key = str(Path(path))
        return next((nb for nb in self.notebooks() if nb.path == key), None)

    def workload(self, profile: str) -> dict[str, int]:
        """Every workload size of one profile, all groups merged (keys are unique across groups)."""
        sizes: dict[str, int] = {}
        for group in self.workload_groups.values():
            sizes.update(group[profile])
        return sizes


def parse(data: dict) -> Manifest:
    """Build and check a Manifest from the parsed TOML."""
    try:
        course = data["course"]
        budgets = {key: int(course[key]) for key in
                   ("notebook_budget_s", "notebook_average_budget_s", "suite_budget_s")}
        tracks = []
        for t in data["track"]:
            labs = []
            for lab in t["lab"]:
                folder = f"{t['folder']}/{lab['folder']}"
                notebooks = tuple(
                    Notebook(track=t["name"], lab=lab["id"], number=nb["file"][:2], title=nb["title"],
                             minutes=int(nb["minutes"]), path=f"{folder}/{nb['file']}")
                    for nb in lab["notebooks"])
                labs.append(Lab(track=t["name"], id=lab["id"], title=lab["title"], folder=folder,
                                hours=lab["hours"], goal=lab["goal"], notebooks=notebooks))
            tracks.append(Track(id=t["id"], name=t["name"], folder=t["folder"], overview=t["overview"],
                                labs=tuple(labs)))
        groups = {name: {p: dict(group[p]) for p in PROFILES} for name, group in data["workload"].items()}
    except KeyError as exc:
        raise ManifestError(f"course.toml is missing the key {exc}") from exc
    seen: dict[str, str] = {}
    for name, group in groups.items():
        keys = set(group[PROFILES[0]])
        for p in PROFILES:
            if set(group[p]) != keys:
                raise ManifestError(f"workload group {name!r}: profile {p!r} has keys {sorted(group[p])}, "
                                    f"expected {sorted(keys)}")
        for key in keys:
            if key in seen:
                raise ManifestError(f"workload key {key!r} is in both {seen[key]!r} and {name!r}")
            seen[key] = name
    return Manifest(title=course["title"], budgets=budgets, tracks=tuple(tracks), workload_groups=groups)


@lru_cache(maxsize=1)
def manifest(path: Path = MANIFEST_PATH) -> Manifest:
    return parse(tomllib.loads(Path(path).read_text(encoding="utf-8")))
