"""`make status`: CHAPTER_02_STATUS.md is generated from JUnit results and the course manifest."""
import datetime as dt
from pathlib import Path

from llmserve.course.manifest import parse
from llmserve.course.status import render


def _lab(folder, lab_id, files):
    return {"id": lab_id, "folder": folder, "title": "t", "hours": "1", "goal": "g",
            "notebooks": [{"file": f, "title": f[3:-6].replace("_", " "), "minutes": 10} for f in files]}


COURSE = parse({
    "course": {"title": "t", "notebook_budget_s": 90, "notebook_average_budget_s": 50, "suite_budget_s": 3000},
    "track": [
        {"id": "vllm", "name": "vLLM", "folder": "02-Labs/vLLM_Track", "overview": "o",
         "lab": [_lab("Lab-2.1-vLLM_Deployment", "2.1", ["01-Setup_and_Installation.ipynb"])]},
        {"id": "triton", "name": "Triton", "folder": "02-Labs/Triton_Track", "overview": "o",
         "lab": [_lab("Lab-2.1-Triton_Server_Basics", "2.1", ["01-Setup_and_Installation.ipynb",
                                                              "02-Model_Repository_Design.ipynb",
                                                              "03-Not_Yet.ipynb"])]},
    ],
    "workload": {},
})


JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="3">
<testcase classname="02-Labs.vLLM_Track.Lab-2.1-vLLM_Deployment.01-Setup_and_Installation.ipynb" name="01-Setup_and_Installation.ipynb" time="95.2"/>
<testcase classname="02-Labs.Triton_Track.Lab-2.1-Triton_Server_Basics.01-Setup_and_Installation.ipynb" name="01-Setup_and_Installation.ipynb" time="30.1">
<failure message="boom"/></testcase>
<testcase classname="02-Labs.Triton_Track.Lab-2.1-Triton_Server_Basics.02-Model_Repository_Design.ipynb" name="02-Model_Repository_Design.ipynb" time="20"/>
</testsuite></testsuites>"""


def test_status_is_generated_from_junit(tmp_path: Path):
    (tmp_path / "notebooks.xml").write_text(JUNIT)
    text = render(tmp_path, now=dt.datetime(2026, 11, 23, 12, 0), profile="ci", course=COURSE,
                  commit="abc1234 a commit", machine="2 cores")
    assert "2026-11-23 12:00" in text and "profile: `ci`" in text and "abc1234 a commit" in text
    assert "| vLLM Lab 2.1 | 1 | 1 | 95 |" in text
    assert "| Triton Lab 2.1 | 1 | 2 | 50 |" in text
    assert "| **all** | **2** | **3** | **145** |" in text
    assert "❌ failed" in text and "| unit | – | not run | – |" in text
    # 95 s is over the 90 s budget of this manifest, 30 s and 20 s are not; the mean 48 s is within 50 s
    assert "| `02-Labs/vLLM_Track/Lab-2.1-vLLM_Deployment/01-Setup_and_Installation.ipynb` | ✅ passed | 95 | ⚠️ over 90 s |" in text
    assert "| 20 | ok |" in text and "mean 48 s (within budget), 1 notebook(s) over 90 s" in text
    # listed but not on disk: planned
    assert "Planned (1 notebooks" in text and "Triton Lab 2.1 · 03 — Not Yet" in text
