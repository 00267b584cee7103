"""`make book` on a small book of the same shape: the Makefile, book/_ext, book/_scripts and
_config.yml of this repository, a stand-in `vaebook` whose MARK each chapter prints, two chapters.

- The Pages workflow's sequence: build; change src/vaebook; start from a fresh checkout that has
  only what book.yml restores from its cache; build. Every chapter must show the new MARK.
- The notebooks run before Sphinx reads them (book/_scripts/execute.py), and Sphinx takes every
  one from that cache instead of running it again.
- Without npm and without vendored files the pages load pinned CDN files with their hashes, and
  the notice says so; with vendored files present and no npm, the pages use them, and no notice
  says they load from CDNs.
- A cell that raises fails `make book`.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
COPIED = [
    "Makefile",
    "_config.yml",
    "requirements.txt",
    "pyproject.toml",
    "book/references.bib",
    "book/_ext",
    "book/_scripts",
    "book/_static",
]
TOC = """format: jb-book
root: book/intro
chapters:
  - file: notebooks/01_first
  - file: notebooks/02_second
"""
INTRO = "# A small book\n\nSome math, $x^2$, so that MathJax is loaded.\n"
WIDGET = "import ipywidgets\n\nipywidgets.IntSlider(value=3)"

pytestmark = pytest.mark.skipif(
    not (VENV / "bin" / "jupyter-book").exists() or shutil.which("make") is None,
    reason="needs make and jupyter-book in .venv",
)


def notebook(*sources):
    cells = [
        {
            "cell_type": "code",
            "metadata": {},
            "source": src,
            "outputs": [],
            "execution_count": None,
        }
        for src in sources
    ]
    return {
        "cells": [{"cell_type": "markdown", "metadata": {}, "source": "# Chapter"}, *cells],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def write_notebook(path, *sources):
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(notebook(*sources), indent=1))


def set_mark(project, mark):
    package = project / "src" / "vaebook"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(f'MARK = "{mark}"\n')


def make_project(folder):
    folder.mkdir()
    for name in COPIED:
        source, target = ROOT / name, folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("vendor", "__pycache__"))
        else:
            shutil.copy2(source, target)
    (folder / ".venv").symlink_to(VENV)
    (folder / "_toc.yml").write_text(TOC)
    (folder / "book" / "intro.md").write_text(INTRO)
    mark = "import vaebook\n\nprint(f'MARK={vaebook.MARK}')"
    write_notebook(folder / "notebooks" / "01_first.ipynb", mark, WIDGET)
    write_notebook(folder / "notebooks" / "02_second.ipynb", mark)
    set_mark(folder, "one")
    return folder


def make_book(project, *args):
    """`make book` in project, with the stand-in vaebook first on the kernels' path."""
    env = {**os.environ, "PYTHONPATH": str(project / "src"), "VAEBOOK_DATA": str(project / "d")}
    env.pop("VAEBOOK_FAST", None)  # the build's own setting (make test sets it)
    env.pop("MAKEFLAGS", None)
    # -o: the symlinked .venv is installed already; never reinstall it from here.
    command = ["make", "-o", ".venv/.installed", "book", "NPM=/nonexistent", *args]
    result = subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, timeout=600
    )
    return result.returncode, result.stdout + result.stderr


def chapter_html(project):
    html = project / "_build" / "html" / "notebooks"
    return {p.stem: p.read_text() for p in sorted(html.glob("0*.html"))}


def cached_paths():
    """What the Pages workflow restores from its execution cache (book.yml's cache step)."""
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    steps = workflow["jobs"]["build"]["steps"]
    step = next(s for s in steps if "jupyter_cache" in str(s.get("with", {}).get("path", "")))
    return step["with"]["path"].split()


@pytest.fixture(scope="module")
def first_build(tmp_path_factory):
    project = make_project(tmp_path_factory.mktemp("book") / "checkout")
    status, log = make_book(project)
    assert status == 0, log
    return project, log


def test_chapters_run_before_sphinx_and_come_from_the_cache(first_build):
    project, log = first_build
    assert "execute: running 2 of 2 notebooks" in log, log
    assert "Executing notebook" not in log, "Sphinx executed a notebook itself:\n" + log
    assert log.count("Using cached notebook") == 2, log
    pages = chapter_html(project)
    assert sorted(pages) == ["01_first", "02_second"]
    assert all("MARK=one" in page for page in pages.values())


def test_without_npm_the_pages_load_pinned_cdn_files(first_build):
    project, log = first_build
    assert "notice: npm not found" in log, log
    intro = (project / "_build" / "html" / "book" / "intro.html").read_text()
    page = chapter_html(project)["01_first"]
    for url, html in [
        ("https://cdn.jsdelivr.net/npm/mathjax@3.2.2/es5/tex-svg-full.js", intro),
        ("https://cdn.jsdelivr.net/npm/requirejs@2.3.8/require.js", page),
        (
            "https://cdn.jsdelivr.net/npm/@jupyter-widgets/html-manager@1.0.15/dist/embed-amd.js",
            page,
        ),
    ]:
        tag = next((t for t in html.split("<script")[1:] if url in t.split(">")[0]), None)
        assert tag is not None, f"{url} is not loaded"
        assert 'integrity="sha384-' in tag.split(">")[0], f"{url} has no integrity hash"
    # The shim that makes the CDN's widget manager find its fonts and MathJax 3 comes before it.
    assert page.index("vaebook-widgets.js") < page.index("embed-amd.js")
    assert "_static/vendor" not in intro + page


def test_a_change_in_src_reruns_every_chapter_from_a_restored_cache(first_build, tmp_path):
    """book.yml: checkout (with the change), restore the cached items only, make book."""
    project, _ = first_build
    checkout = make_project(tmp_path / "checkout")
    set_mark(checkout, "two")
    for name in cached_paths():
        source, target = project / name, checkout / name
        assert source.exists(), f"book.yml caches {name}, which make book did not write"
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)
    status, log = make_book(checkout)
    assert status == 0, log
    assert "every chapter runs again" in log, log
    pages = chapter_html(checkout)
    stale = [name for name, page in pages.items() if "MARK=two" not in page]
    assert sorted(pages) == ["01_first", "02_second"] and not stale, f"stale: {stale}\n{log}"


def test_vendored_files_are_used_without_npm_and_without_the_notice(first_build, tmp_path):
    project, _ = first_build
    checkout = tmp_path / "checkout"
    shutil.copytree(project, checkout, symlinks=True)
    vendor = checkout / "book" / "_static" / "vendor"
    for path in ("mathjax/tex-svg-full.js", "requirejs/require.js", "html-manager/embed-amd.js"):
        (vendor / path).parent.mkdir(parents=True, exist_ok=True)
        (vendor / path).write_text("// stand-in\n")
    sys.path.insert(0, str(checkout / "book" / "_ext"))
    try:
        import vaebook_static

        (vendor / "VERSIONS").write_text(vaebook_static.wanted_versions() + "\n")
    finally:
        sys.path.pop(0)
        sys.modules.pop("vaebook_static", None)
    status, log = make_book(checkout)
    assert status == 0, log
    assert "npm not found" not in log and "load from CDNs" not in log, log
    assert "is up to date" in log, log
    assert "Executing notebook" not in log and "execute: all 2 notebooks are in the cache" in log
    page = chapter_html(checkout)["01_first"]
    assert "_static/vendor/requirejs/require.js" in page and "cdn.jsdelivr.net/npm/req" not in page


def test_a_failing_cell_fails_make_book(first_build, tmp_path):
    project, _ = first_build
    checkout = tmp_path / "checkout"
    shutil.copytree(project, checkout, symlinks=True)
    write_notebook(checkout / "notebooks" / "02_second.ipynb", "raise RuntimeError('planted')")
    status, log = make_book(checkout)
    assert status != 0, log
    assert "02_second.ipynb failed" in log and "planted" in log, log
