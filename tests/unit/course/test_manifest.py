"""The course manifest (course.toml): well-formed, complete, and the truth about the files."""
import json
import re

import pytest

from llmserve.course.config import PROFILES, REPO_ROOT
from llmserve.course.manifest import ManifestError, manifest, parse

M = manifest()


def test_two_tracks_of_five_labs_of_four_notebooks():
    assert [t.name for t in M.tracks] == ["vLLM", "Triton"]
    for track in M.tracks:
        assert [lab.id for lab in track.labs] == ["2.1", "2.2", "2.3", "2.4", "2.5"]
        for lab in track.labs:
            assert [nb.number for nb in lab.notebooks] == ["01", "02", "03", "04"], lab.name


def test_every_notebook_on_disk_is_in_the_manifest():
    on_disk = {str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "02-Labs").rglob("*.ipynb")
               if ".ipynb_checkpoints" not in p.parts}
    listed = {nb.path for nb in M.notebooks()}
    assert on_disk <= listed, f"notebooks missing from course.toml: {sorted(on_disk - listed)}"


@pytest.mark.parametrize("notebook", [nb for nb in M.notebooks() if nb.exists], ids=lambda nb: nb.path)
def test_title_cell_carries_track_lab_number_and_manifest_title(notebook):
    cells = json.loads((REPO_ROOT / notebook.path).read_text())["cells"]
    first_line = "".join(cells[0]["source"]).splitlines()[0]
    assert first_line.startswith(f"# {notebook.heading}"), f"{first_line!r} should start with '# {notebook.heading}'"
    assert re.search(rf"Estimated time:\**\s*{notebook.minutes} minutes", "".join(cells[0]["source"])), \
        f"the title cell should say 'Estimated time: {notebook.minutes} minutes' (course.toml)"


def test_labs_and_overviews_exist_where_notebooks_do():
    for track in M.tracks:
        assert (REPO_ROOT / track.overview).exists(), track.overview
        for lab in track.labs:
            if lab.written:
                assert (REPO_ROOT / lab.folder / "README.md").exists(), lab.folder


def test_workloads_grow_with_the_machine():
    def size(value):  # a list (e.g. the offered loads of a sweep) grows by its number of points
        return len(value) if isinstance(value, list) else value

    for key in M.workload("ci"):
        assert size(M.workload("ci")[key]) <= size(M.workload("cpu")[key]) <= size(M.workload("gpu")[key]), key
    assert set(M.workload("ci")) == set(M.workload("gpu"))


def _minimal(**workload):
    return {"course": {"title": "t", "notebook_budget_s": 1, "notebook_average_budget_s": 1, "suite_budget_s": 1},
            "track": [], "workload": workload}


def test_a_key_in_two_groups_is_refused():
    group = {p: {"x": 1} for p in PROFILES}
    with pytest.raises(ManifestError, match="'x' is in both"):
        parse(_minimal(a=group, b=group))


def test_a_profile_missing_a_key_is_refused():
    group = {"ci": {"x": 1}, "cpu": {"x": 1}, "gpu": {}}
    with pytest.raises(ManifestError, match="profile 'gpu'"):
        parse(_minimal(a=group))
