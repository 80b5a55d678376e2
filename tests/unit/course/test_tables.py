"""The README tables are generated from course.toml (`python -m llmserve.course.tables`)."""
from llmserve.course.config import REPO_ROOT
from llmserve.course.manifest import manifest
from llmserve.course.tables import FILES, REGION, sync


def test_every_generated_table_is_up_to_date():
    for name in FILES:
        text = (REPO_ROOT / name).read_text(encoding="utf-8")
        assert REGION.search(text), f"{name} has no generated table"
        assert sync(text, name, manifest()) == text, \
            f"{name}: a table is out of date with course.toml: run `.venv/bin/python -m llmserve.course.tables`"


def test_a_hand_edited_table_is_detected():
    text = "<!-- course.toml: labs vllm -->\n| lab | edited by hand |\n<!-- end course.toml -->\n"
    synced = sync(text, "02-Labs/README.md", manifest())
    assert synced != text and "Inference Optimization" in synced and "edited by hand" not in synced


def test_planned_labs_are_not_links():
    synced = sync("<!-- course.toml: labs triton -->\n<!-- end course.toml -->", "02-Labs/README.md", manifest())
    written = [lab for lab in manifest().labs() if lab.track == "Triton" and lab.written]
    planned = [lab for lab in manifest().labs() if lab.track == "Triton" and not lab.written]
    for lab in written:
        assert f"[{lab.id} {lab.title}](Triton_Track/{lab.folder.rsplit('/', 1)[1]}/)" in synced
    for lab in planned:
        assert f"| {lab.id} {lab.title} (planned) |" in synced
