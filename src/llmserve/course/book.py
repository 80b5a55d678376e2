"""`make book`: the course as a static HTML site that works offline, with every notebook as the last
test run executed it.

`make notebooks` keeps each executed notebook, outputs and plots included, under
`test-results/executed/<its path>` (`keep_executed_notebooks`, installed by the repository's
`conftest.py` when COURSE_EXECUTED_DIR is set), so the book runs nothing a second time. A notebook
the run did not execute is shown as stored, without outputs, under a banner that says so.

    .venv/bin/python -m llmserve.course.book            # -> test-results/book/index.html

Pages: the README (the index), the quickstart, the instructor and style guides, the status file,
the set-up notes, the theory, the track overviews, the lab READMEs and the notebooks. A link to a
repository file that is not a page (a model file, a Helm chart) gets a highlighted source page, a
link to a folder a listing; a link to anything that does not exist is reported as broken, and the
build fails on it. The generator uses no network: markdown-it-py for Markdown, nbconvert's
`basic` template for notebooks (no CDN scripts), Pygments for code, all CSS inline.
"""
from __future__ import annotations

import argparse
import html
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from llmserve.course.config import REPO_ROOT

DEFAULT_EXECUTED = REPO_ROOT / "test-results" / "executed"
DEFAULT_OUT = REPO_ROOT / "test-results" / "book"
MAX_SOURCE_BYTES = 256 * 1024
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".svg"}

# Top-level pages in navigation order; a missing one is left out.
FRONT_PAGES = [("README.md", "Home"), ("QUICKSTART.md", "Quickstart"), ("INSTRUCTOR_GUIDE.md", "Instructor guide"),
               ("00-Course_Setup/README.md", "Set-up notes"), ("01-Theory/README.md", "Theory overview"),
               ("01-Theory/2.1-Inference_Engines.md", "Theory 2.1 · Inference engines"),
               ("01-Theory/2.2-Serving_and_Optimization.md", "Theory 2.2 · Serving and optimization")]
BACK_PAGES = [("CHAPTER_02_STATUS.md", "Status of the last run"), ("STYLE_GUIDE.md", "Style guide")]


class BookError(RuntimeError):
    """The book cannot be built; the message says why."""


@dataclass
class Page:
    source: str         # repository-relative path of the Markdown file or notebook
    title: str
    kind: str           # "markdown" or "notebook"
    executed: Path | None = None  # the executed copy, for a notebook the run executed

    @property
    def output(self) -> str:
        if self.source == "README.md":
            return "index.html"
        return str(PurePosixPath(self.source).with_suffix(".html"))


@dataclass
class BookReport:
    out_dir: Path
    pages: list[Page]
    source_pages: list[str] = field(default_factory=list)
    broken_links: list[str] = field(default_factory=list)  # "page: target"
    executed: int = 0

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.out_dir.rglob("*") if p.is_file())


def keep_executed_notebooks(target_dir: Path, root: Path = REPO_ROOT) -> None:
    """Make nbmake save every notebook it executes, with its outputs, under target_dir/<path>.

    Called from conftest.py. It wraps `NotebookRun.execute`, so the copy is the very run the test
    judged (a failed notebook is kept too, showing its error)."""
    import nbformat
    from nbmake.nb_run import NotebookRun

    if getattr(NotebookRun.execute, "_keeps_executed", False):
        return
    original = NotebookRun.execute

    def execute(self):
        result = original(self)
        source = Path(self.filename).resolve()
        try:
            relative = source.relative_to(root.resolve())
        except ValueError:
            relative = Path(source.name)
        destination = target_dir / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(result.nb, str(destination))
        return result

    execute._keeps_executed = True
    NotebookRun.execute = execute


def course_pages(root: Path = REPO_ROOT, executed_dir: Path = DEFAULT_EXECUTED) -> list[Page]:
    """Every page of the book in reading order."""
    from llmserve.course.manifest import parse, tomllib

    manifest = parse(tomllib.loads((root / "course.toml").read_text()))
    pages = [Page(src, title, "markdown") for src, title in FRONT_PAGES if (root / src).exists()]
    for track in manifest.tracks:
        if (root / track.overview).exists():
            pages.append(Page(track.overview, f"{track.name} track", "markdown"))
        for lab in track.labs:
            readme = f"{lab.folder}/README.md"
            if (root / readme).exists():
                pages.append(Page(readme, lab.name, "markdown"))
            for notebook in lab.notebooks:
                if not (root / notebook.path).exists():
                    continue
                executed = executed_dir / notebook.path
                pages.append(Page(notebook.path, notebook.heading, "notebook",
                                  executed if executed.exists() else None))
    pages += [Page(src, title, "markdown") for src, title in BACK_PAGES if (root / src).exists()]
    return pages


def slug(text: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def _markdown_html(text: str) -> str:
    from markdown_it import MarkdownIt
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import TextLexer, get_lexer_by_name
    from pygments.util import ClassNotFound

    def highlight_code(code: str, language: str, _attrs) -> str:
        try:
            lexer = get_lexer_by_name(language) if language else TextLexer()
        except ClassNotFound:
            lexer = TextLexer()
        return highlight(code, lexer, HtmlFormatter(nowrap=False))

    md = MarkdownIt("commonmark", {"highlight": highlight_code, "html": True}).enable("table").enable("strikethrough")
    return md.render(text)


def _notebook_html(path: Path) -> str:
    import nbformat
    from nbconvert import HTMLExporter

    notebook = nbformat.read(str(path), as_version=4)
    body, _ = HTMLExporter(template_name="basic").from_notebook_node(notebook)
    return body


def _source_html(path: Path) -> str:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import TextLexer, guess_lexer_for_filename
    from pygments.util import ClassNotFound

    text = path.read_text(errors="replace")
    try:
        lexer = guess_lexer_for_filename(path.name, text)
    except ClassNotFound:
        lexer = TextLexer()
    return highlight(text, lexer, HtmlFormatter(linenos="table"))


def _css() -> str:
    from pygments.formatters import HtmlFormatter

    return """
body { font-family: system-ui, sans-serif; margin: 0; display: flex; color: #1d1d1f; }
nav { width: 18rem; min-width: 18rem; height: 100vh; overflow-y: auto; position: sticky; top: 0;
      background: #f5f5f7; border-right: 1px solid #ddd; padding: 1rem; box-sizing: border-box; font-size: .85rem; }
nav a { display: block; padding: .15rem 0; color: #0b57d0; text-decoration: none; }
nav a.current { font-weight: bold; color: #000; }
nav .group { margin-top: .8rem; font-weight: 600; color: #555; }
nav .lab { padding-left: .6rem; } nav .notebook { padding-left: 1.2rem; }
main { padding: 1.5rem 2.5rem; max-width: 62rem; min-width: 0; }
pre, code { font-family: ui-monospace, monospace; font-size: .85rem; }
pre { background: #f6f8fa; padding: .6rem; overflow-x: auto; }
table { border-collapse: collapse; margin: .8rem 0; } th, td { border: 1px solid #ccc; padding: .25rem .5rem; }
img { max-width: 100%; }
.banner { background: #fff4ce; border: 1px solid #e0c060; padding: .6rem; margin-bottom: 1rem; }
.pager { display: flex; justify-content: space-between; margin: 2rem 0 1rem; }
.input_area { border-left: 3px solid #0b57d0; margin: .4rem 0; }
.output_area pre, .output_subarea pre { background: #fff; border-left: 3px solid #999; }
.output_stderr pre { background: #fff6f6; }
.prompt { display: none; }
""" + HtmlFormatter().get_style_defs(".highlight")


def _relative(from_output: str, to_output: str) -> str:
    return os.path.relpath(to_output, start=str(PurePosixPath(from_output).parent) or ".")


class _Builder:
    def __init__(self, root: Path, out_dir: Path, pages: list[Page]):
        self.root = root.resolve()
        self.out_dir = out_dir
        self.pages = pages
        self.by_source = {p.source: p for p in pages}
        self.report = BookReport(out_dir, pages)
        self.anchors: dict[str, set[str]] = {}
        self.pending_fragments: list[tuple[str, str, str]] = []  # page output, target output, fragment
        self.extra: dict[str, str] = {}  # repository path -> output of its source page or listing

    # Links -----------------------------------------------------------------------------------
    def _target_output(self, current: Page, href: str) -> str | None:
        """The book path a repository link points to, creating a source page or listing if needed;
        None when the target does not exist."""
        parts = urlsplit(href)
        base = PurePosixPath(current.source).parent
        target = (self.root / base / unquote(parts.path)).resolve()
        try:
            relative = str(target.relative_to(self.root))
        except ValueError:
            return None
        if relative == ".":
            return "index.html"
        if relative in self.by_source:
            return self.by_source[relative].output
        if not target.exists():
            return None
        if relative not in self.extra:
            if target.is_dir():
                self.extra[relative] = f"{relative}/index.html"
            elif target.suffix.lower() in IMAGE_SUFFIXES:
                self.extra[relative] = relative
            else:
                self.extra[relative] = f"{relative}.html"
        return self.extra[relative]

    def _rewrite_links(self, page: Page, body: str) -> str:
        from bs4 import BeautifulSoup

        soup = BeautifulSoup(body, "html.parser")
        for tag, attribute in (("a", "href"), ("img", "src")):
            for element in soup.find_all(tag):
                href = element.get(attribute)
                if not href or href.startswith(("#", "data:", "mailto:")) or urlsplit(href).scheme:
                    continue
                target = self._target_output(page, href)
                if target is None:
                    self.report.broken_links.append(f"{page.source}: {href}")
                    continue
                fragment = urlsplit(href).fragment
                new = _relative(page.output, target) + (f"#{fragment}" if fragment else "")
                element[attribute] = new
                if fragment and target.endswith(".html"):
                    self.pending_fragments.append((page.source, target, unquote(fragment)))
        for level in range(1, 7):
            for heading in soup.find_all(f"h{level}"):
                if not heading.get("id"):
                    heading["id"] = slug(heading.get_text())
        self.anchors[page.output] = {tag["id"] for tag in soup.find_all(id=True)}
        return str(soup)

    # Pages -------------------------------------------------------------------------------------
    def _nav(self, current_output: str) -> str:
        lines = []
        for page in self.pages:
            css = "notebook" if page.kind == "notebook" else ""
            label = page.title
            if page.source.endswith("_OVERVIEW.md"):
                lines.append(f'<div class="group">{html.escape(page.title)}</div>')
                label = "Overview"
            elif page.source.endswith("/README.md") and page.source.startswith("02-Labs/"):
                css = "lab"
            elif page.kind == "notebook" and " — " in page.title:  # "vLLM Lab 2.1 · 01 — Title" -> "01 · Title"
                number = page.title.split(" — ")[0].split(" · ")[-1]
                label = f"{number} · {page.title.split(' — ', 1)[1]}"
            current = ' current' if page.output == current_output else ''
            lines.append(f'<a class="{css}{current}" href="{_relative(current_output, page.output)}">'
                         f'{html.escape(label)}</a>')
        return "\n".join(lines)

    def _document(self, output: str, title: str, body: str, banner: str = "", pager: str = "") -> str:
        css_href = _relative(output, "book.css")
        banner_html = f'<div class="banner">{banner}</div>' if banner else ""
        return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">'
                f'<title>{html.escape(title)}</title><link rel="stylesheet" href="{css_href}"></head>'
                f'<body><nav>{self._nav(output)}</nav><main>{banner_html}{body}{pager}</main></body></html>\n')

    def _pager(self, index: int) -> str:
        notebooks = [i for i, p in enumerate(self.pages) if p.kind == "notebook"]
        position = notebooks.index(index)
        page = self.pages[index]
        links = []
        for step, arrow in ((-1, "← "), (1, "")):
            other = position + step
            if 0 <= other < len(notebooks) and self.pages[notebooks[other]].source.split("/")[1] == page.source.split("/")[1]:
                target = self.pages[notebooks[other]]
                text = f"{arrow}{target.title}" + (" →" if step == 1 else "")
                links.append(f'<a href="{_relative(page.output, target.output)}">{html.escape(text)}</a>')
            else:
                links.append("<span></span>")
        return f'<div class="pager">{links[0]}{links[1]}</div>'

    def _write(self, output: str, text: str) -> None:
        path = self.out_dir / output
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def build(self) -> BookReport:
        if self.out_dir.exists():
            shutil.rmtree(self.out_dir)
        self.out_dir.mkdir(parents=True)
        (self.out_dir / "book.css").write_text(_css())
        for index, page in enumerate(self.pages):
            banner, pager = "", ""
            if page.kind == "markdown":
                body = _markdown_html((self.root / page.source).read_text())
            else:
                pager = self._pager(index)
                if page.executed is not None:
                    body = _notebook_html(page.executed)
                    self.report.executed += 1
                else:
                    body = _notebook_html(self.root / page.source)
                    banner = ("This notebook was not executed in the run this book was built from: it is shown as "
                              "stored, without outputs. Run <code>make notebooks</code>, then <code>make book</code>.")
            body = self._rewrite_links(page, body)
            self._write(page.output, self._document(page.output, page.title, body, banner, pager))
        self._write_extras()
        for source, target, fragment in self.pending_fragments:
            if target in self.anchors and fragment not in self.anchors[target]:
                self.report.broken_links.append(f"{source}: {target}#{fragment} (no such anchor)")
        return self.report

    def _write_extras(self) -> None:
        done: set[str] = set()
        while len(done) < len(self.extra):
            for relative, output in list(self.extra.items()):
                if relative in done:
                    continue
                done.add(relative)
                path = self.root / relative
                if path.is_dir():
                    entries = sorted(p for p in path.iterdir() if not p.name.startswith(".")
                                     and p.name != "__pycache__")
                    items = []
                    fake = Page(f"{relative}/index.md", relative, "listing")
                    for entry in entries:
                        link_target = self._target_output(fake, entry.name)
                        if link_target is None:
                            continue
                        label = entry.name + ("/" if entry.is_dir() else "")
                        items.append(f'<li><a href="{_relative(output, link_target)}">{html.escape(label)}</a></li>')
                    body = f"<h1>{html.escape(relative)}/</h1><ul>{''.join(items)}</ul>"
                    self._write(output, self._document(output, relative, body))
                elif path.suffix.lower() in IMAGE_SUFFIXES:
                    destination = self.out_dir / output
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, destination)
                else:
                    if path.stat().st_size > MAX_SOURCE_BYTES:
                        body = f"<h1>{html.escape(relative)}</h1><p>{path.stat().st_size} bytes: too large to show.</p>"
                    else:
                        body = f"<h1>{html.escape(relative)}</h1>{_source_html(path)}"
                    self._write(output, self._document(output, relative, body))
                    self.report.source_pages.append(relative)


def build_book(out_dir: Path = DEFAULT_OUT, executed_dir: Path = DEFAULT_EXECUTED, root: Path = REPO_ROOT) -> BookReport:
    """Build the site into out_dir (emptied first) and return what was built and any broken links."""
    pages = course_pages(root, executed_dir)
    if not pages:
        raise BookError(f"no course pages found under {root}")
    return _Builder(root, out_dir, pages).build()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--executed", type=Path, default=DEFAULT_EXECUTED)
    args = parser.parse_args(argv)
    report = build_book(args.out, args.executed)
    notebooks = sum(p.kind == "notebook" for p in report.pages)
    print(f"book: {len(report.pages)} pages ({notebooks} notebooks, {report.executed} executed in the last run), "
          f"{len(report.source_pages)} source pages, {report.size_bytes / 2**20:.1f} MiB in {args.out}")
    if report.executed < notebooks:
        print(f"  {notebooks - report.executed} notebook(s) shown without outputs: run `make notebooks` first")
    if report.broken_links:
        print(f"{len(report.broken_links)} broken link(s):", *report.broken_links, sep="\n  ", file=sys.stderr)
        return 1
    print(f"open {args.out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
