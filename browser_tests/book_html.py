"""Read the built HTML book without a browser: its pages in table-of-contents order, ids."""

import re
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import yaml

ROOT = Path(__file__).resolve().parent.parent
TOC = ROOT / "_toc.yml"

REDIRECT = re.compile(r"url=([^\"'>\s]+)", re.IGNORECASE)


class _Collector(HTMLParser):
    """Collects every id (and a name), the toc links of the sidebar and a meta refresh."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids = set()
        self.nav_links = []
        self.refresh = None
        self._nav_depth = 0  # > 0 inside <nav class="... bd-docs-nav ...">

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key) and (key == "id" or tag == "a"):
                self.ids.add(attrs[key])
        classes = (attrs.get("class") or "").split()
        if tag == "nav":
            self._nav_depth += 1 if (self._nav_depth or "bd-docs-nav" in classes) else 0
        if tag == "a" and self._nav_depth and "internal" in classes and attrs.get("href"):
            self.nav_links.append(attrs["href"])
        if tag == "meta" and (attrs.get("http-equiv") or "").lower() == "refresh":
            match = REDIRECT.search(attrs.get("content") or "")
            self.refresh = match.group(1) if match else None

    def handle_endtag(self, tag):
        if tag == "nav" and self._nav_depth:
            self._nav_depth -= 1


@cache
def parse(path):
    collector = _Collector()
    collector.feed(Path(path).read_text(encoding="utf-8", errors="replace"))
    return collector


def ids(path):
    """Every id (and <a name>) in the HTML file at path."""
    return parse(str(path)).ids


def root_page(html_dir):
    """The book's first page, relative to html_dir: index.html, or where it redirects."""
    index = Path(html_dir) / "index.html"
    if not index.is_file():
        raise FileNotFoundError(f"{index} does not exist: build the book first")
    target = parse(str(index)).refresh
    return urlsplit(target).path if target else "index.html"


def toc_pages(toc=TOC):
    """The pages `_toc.yml` lists, in its order: root, then every `file` entry, as the HTML
    paths Sphinx writes them to (docname + .html)."""
    data = yaml.safe_load(Path(toc).read_text(encoding="utf-8"))
    files = [data["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for key, value in node.items():
                if key != "file":
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk({k: v for k, v in data.items() if k != "root"})
    docnames = [
        str(Path(f).with_suffix("")) if Path(f).suffix in (".md", ".ipynb") else f for f in files
    ]
    return [f"{d}.html" for d in dict.fromkeys(docnames)]


def sidebar_pages(html_dir):
    """The root page and every page its sidebar links to, in the sidebar's order."""
    html_dir = Path(html_dir)
    root = root_page(html_dir)
    found = [root]
    for href in parse(str(html_dir / root)).nav_links:
        url = urlsplit(urljoin(root, urldefrag(href).url))
        if url.scheme or url.netloc or not url.path:
            continue
        page = unquote(url.path.lstrip("/"))
        if page not in found:
            found.append(page)
    return found


def pages(html_dir, toc=TOC):
    """The pages the table of contents (`_toc.yml`) lists, in its order. Pages left in
    html_dir by an older toc are not listed; pages missing from html_dir are."""
    return toc_pages(toc)


def toc_problems(html_dir, toc=TOC):
    """What differs between `_toc.yml` and the built book: a listed page that was not built,
    a root page other than the toc's, or a sidebar that lists other pages or another order."""
    html_dir = Path(html_dir)
    wanted = toc_pages(toc)
    problems = [
        f"{p}: listed in {Path(toc).name} but not built"
        for p in wanted
        if not (html_dir / p).is_file()
    ]
    try:
        sidebar = sidebar_pages(html_dir)
    except FileNotFoundError as error:
        return [*problems, str(error)]
    if sidebar[0] != wanted[0]:
        problems.append(f"index.html opens {sidebar[0]}, the toc's root is {wanted[0]}")
    if sidebar != wanted:
        problems.append(f"the sidebar lists {sidebar}, {Path(toc).name} lists {wanted}")
    return problems


def is_notebook(html_dir, page):
    """True when the page was built from a .ipynb (its source is copied to _sources/)."""
    docname = page.removesuffix(".html")
    return (Path(html_dir) / "_sources" / f"{docname}.ipynb").is_file() or docname.startswith(
        "notebooks/"
    )


def has_figure(html_dir, page):
    """True when the page shows a figure: an image output or a widget image."""
    path = Path(html_dir) / page
    if not path.is_file():
        return False
    text = path.read_text(encoding="utf-8", errors="replace")
    return "_images/" in text or '"ImageModel"' in text
