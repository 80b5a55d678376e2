"""`make nbclean`: store notebooks the way the course keeps them.

Outputs and execution counts stripped, cell metadata emptied, notebook metadata reduced to the
`python3` kernel, nbformat 4.5 with cell ids, written as nbformat writes it (1-space indent).
The hygiene test (tests/unit/test_repository.py) fails when this would change a committed
notebook, and says to run `make nbclean`.

    python -m llmserve.course.nbclean 02-Labs            # clean every notebook under a folder
    python -m llmserve.course.nbclean --check 02-Labs    # list what would change, exit 1 if any
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


def clean(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook as the course stores it (a new object; the input is not changed)."""
    notebook = nbformat.from_dict(notebook)
    notebook.nbformat, notebook.nbformat_minor = 4, 5
    notebook.metadata = nbformat.from_dict({"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}})
    for cell in notebook.cells:
        cell.metadata = nbformat.from_dict({})
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        else:
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
    nbformat.validator.normalize(notebook)
    return notebook


def cleaned_text(path: Path) -> str:
    notebook = nbformat.read(path, as_version=4)
    return nbformat.writes(clean(notebook)) + "\n"


def notebooks_under(paths: list[Path]) -> list[Path]:
    found = []
    for path in paths:
        if path.is_dir():
            found += [p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts]
        elif path.suffix == ".ipynb":
            found.append(path)
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a notebook would change")
    args = parser.parse_args(argv)
    changed = []
    for path in notebooks_under(args.paths):
        text = cleaned_text(path)
        if text != path.read_text(encoding="utf-8"):
            changed.append(path)
            if not args.check:
                path.write_text(text, encoding="utf-8")
    verb = "would change" if args.check else "cleaned"
    for path in changed:
        print(f"{verb}: {path}")
    if not changed:
        print("every notebook is clean")
    return 1 if (changed and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
