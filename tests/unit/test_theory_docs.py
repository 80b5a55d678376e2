"""Structural checks of the theory files in 01-Theory/.

The python blocks themselves are executed by `pytest --markdown-docs 01-Theory`; this module checks
that they are there, that links resolve, that each file has a glossary, and that every
`llmserve.teach.formulas.<name>` the prose mentions exists.
"""
from __future__ import annotations

import re

import pytest

from llmserve.course.config import REPO_ROOT
from llmserve.teach import formulas

ROOT = REPO_ROOT
THEORY = ROOT / "01-Theory"
FILES = {"2.1-Inference_Engines.md": 8, "2.2-Serving_and_Optimization.md": 5}  # min. python blocks

LABS = {
    "vLLM_Track/Lab-2.1-vLLM_Deployment": ["01-Setup_and_Installation", "02-Basic_Inference",
                                          "03-Advanced_Features", "04-Production_Deployment"],
    "vLLM_Track/Lab-2.2-Inference_Optimization": ["01-KV_Cache_Optimization", "02-Speculative_Decoding",
                                                  "03-Quantization_Inference",
                                                  "04-Comprehensive_Optimization"],
    "vLLM_Track/Lab-2.3-FastAPI_Service": ["01-Basic_API", "02-Async_Processing",
                                          "03-Integration_with_vLLM", "04-Monitoring_and_Deploy"],
    "vLLM_Track/Lab-2.4-Production_Deployment": ["01-Deployment_Architecture", "02-Kubernetes_Deployment",
                                                 "03-Security_and_Monitoring", "04-Cost_Optimization"],
    "vLLM_Track/Lab-2.5-Performance_Monitoring": ["01-Monitoring_Setup", "02-Real_Time_Metrics",
                                                  "03-Performance_Analysis", "04-Alerting_and_Optimization"],
    "Triton_Track/Lab-2.1-Triton_Server_Basics": ["01-Setup_and_Installation", "02-Model_Repository_Design",
                                                  "03-PyTorch_Backend_Deploy", "04-Monitoring_Integration"],
    "Triton_Track/Lab-2.2-Multi_Model_Management": ["01-Multi_Model_Repository", "02-AB_Testing_Framework",
                                                    "03-Model_Lifecycle", "04-Advanced_Configuration"],
    "Triton_Track/Lab-2.3-Backend_Integration": ["01-Multi_Backend_Setup", "02-Performance_Comparison",
                                                 "03-Unified_API_Design", "04-Advanced_Optimization"],
    "Triton_Track/Lab-2.4-Enterprise_Features": ["01-Ensemble_Models", "02-Dynamic_Batching",
                                                 "03-Model_Warmup", "04-Security_and_Auth"],
    "Triton_Track/Lab-2.5-Production_Operations": ["01-Kubernetes_Deployment", "02-CICD_Pipeline",
                                                   "03-Monitoring_and_Alerting", "04-Troubleshooting"],
}
LAB_NOTEBOOKS = {(ROOT / "02-Labs" / lab / f"{nb}.ipynb").resolve()
                 for lab, notebooks in LABS.items() for nb in notebooks}

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```(\w*)", re.M)


def _text(name: str) -> str:
    return (THEORY / name).read_text(encoding="utf-8")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower-case, drop punctuation except '-', spaces to '-'."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def test_lab_list_is_complete():
    assert len(LAB_NOTEBOOKS) == 40


@pytest.mark.parametrize("name", sorted(FILES))
def test_python_blocks_present_and_fences_balanced(name):
    text = _text(name)
    fences = FENCE.findall(text)
    assert len(fences) % 2 == 0, "unbalanced code fences"
    openers = fences[::2]
    assert openers.count("python") >= FILES[name]
    assert "" not in openers, "every code block needs a language (python, text, mermaid)"


@pytest.mark.parametrize("name", sorted(FILES) + ["README.md"])
def test_relative_links_resolve(name):
    text = _text(name)
    anchors = {_slug(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}
    bad = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+://", target) or target.startswith("mailto:"):
            continue
        path, _, anchor = target.partition("#")
        if not path:
            if anchor not in anchors:
                bad.append(target)
            continue
        resolved = (THEORY / path).resolve()
        if not (resolved.exists() or resolved in LAB_NOTEBOOKS):
            bad.append(target)
    assert not bad, f"unresolved links in {name}: {bad}"


@pytest.mark.parametrize("name", sorted(FILES))
def test_every_section_links_to_a_lab(name):
    sections = re.split(r"^## ", _text(name), flags=re.M)[1:]
    numbered = [s for s in sections if re.match(r"\d+\. ", s) and not s.startswith(
        tuple(f"{i}. References" for i in range(1, 30)))]
    assert numbered
    for section in numbered:
        assert "Practised in:" in section and ".ipynb" in section, section.splitlines()[0]


@pytest.mark.parametrize("name", sorted(FILES))
def test_glossary_present_and_bilingual(name):
    text = _text(name)
    assert re.search(r"^## Glossary\s*$", text, re.M)
    glossary = text.split("## Glossary", 1)[1]
    rows = [r for r in glossary.splitlines() if r.startswith("|") and not r.startswith("|---")][1:]
    assert len(rows) >= 15
    cjk = re.compile(r"[\u4e00-\u9fff]")
    assert all(cjk.search(r) for r in rows), "every glossary row needs a Traditional Chinese term"


@pytest.mark.parametrize("name", sorted(FILES))
def test_named_formulas_exist(name):
    names = set(re.findall(r"llmserve\.teach\.formulas\.(\w+)", _text(name)))
    for block in re.findall(r"from llmserve\.teach\.formulas import (\([^)]*\)|[^\n]+)", _text(name)):
        names |= {n.strip() for n in block.strip("()").split(",") if n.strip()}
    assert names, "the file should name the functions that implement its formulas"
    missing = sorted(n for n in names if not callable(getattr(formulas, n, None)))
    assert not missing, f"{name} mentions functions that llmserve.teach.formulas lacks: {missing}"
