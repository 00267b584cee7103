"""Read the built HTML book without a browser: its pages in table-of-contents order, ids."""

import re
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

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


def pages(html_dir):
    """The pages the table of contents lists, in its order: the root page and every page
    its sidebar links to. Pages left in html_dir by an older toc are not listed."""
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
