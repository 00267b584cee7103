"""Every page of the book, in a browser: it renders, its math is typeset, its images load, its
sliders move their figures, its links resolve, and it logs no error and calls no one else.

Each page loads once (the `book_page` fixture) and the tests below run on it in this order;
the console and network checks come last so they also cover the slider moves.
"""

import io
import re
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import book_html
import pytest
from book_browser import CDN_HOST, CDN_PREFIX
from PIL import Image, ImageStat

# Raw TeX left in the visible text (code blocks excluded): $$, \( \) \[ \], \begin{...},
# a TeX command such as \frac or \mathcal, or $...$ holding a backslash, ^ or _.
RAW_TEX = re.compile(
    r"\$\$|\\[()\[\]]|\\(?:begin|end)\{|\\[A-Za-z]{2,}|\$[^$\n]{0,200}?[\\^_][^$\n]{0,200}?\$"
)

MATH_JS = r"""() => {
  const article = document.querySelector("article.bd-article") || document.body;
  const sources = [...article.querySelectorAll(".math")].filter((e) => !e.closest("pre, code"));
  const untypeset = sources.filter((e) => !e.querySelector("mjx-container"))
    .map((e) => e.textContent.trim().slice(0, 80));
  const errors = [...document.querySelectorAll('mjx-merror, [data-mml-node="merror"]')]
    .map((e) => (e.getAttribute("data-mjx-error") || e.textContent || "?").slice(0, 80));
  // MathJax shows an undefined command such as \foo as red text, not as an error.
  document.querySelectorAll("mjx-container").forEach((c) => {
    if (c.querySelector('[data-mml-node="mtext"][fill="red"], mjx-mtext[style*="red"]')) {
      const red = [...c.querySelectorAll('mjx-assistive-mml mtext[mathcolor="red"]')]
        .map((t) => t.textContent);
      if (!red.length || red.some((t) => t.startsWith("\\"))) {
        errors.push(`undefined command ${red.join(" ") || "(shown in red)"}`);
      }
    }
  });
  const text = document.body.cloneNode(true);
  text.querySelectorAll("pre, code, script, style, textarea, noscript, template, mjx-container")
    .forEach((e) => e.remove());
  return {
    sources: sources.length,
    typeset: article.querySelectorAll("mjx-container").length,
    untypeset, errors, text: text.textContent,
  };
}"""

IMAGES_JS = """() => [...document.images].filter((img) => !(img.naturalWidth > 0)).map((img) => ({
  src: img.getAttribute("src") || img.src, alt: img.alt,
}))"""

LINKS_JS = """() => [...new Set([...document.querySelectorAll("a[href]")].map((a) => a.href))]"""
IDS_JS = """() => [...document.querySelectorAll("[id], a[name]")].map((e) => e.id || e.name)"""

# SHA-256 of the bytes of every image shown in the widget output around a slider.
FIGURE_JS = """async (slider) => {
  const area = slider.closest(".widget-subarea") || slider.parentElement;
  const shown = [...area.querySelectorAll("img")]
    .filter((img) => img.checkVisibility() && img.naturalWidth > 0);
  return Promise.all(shown.map(async (img) => {
    const bytes = await (await fetch(img.src)).arrayBuffer();
    const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    return [...hash].map((b) => b.toString(16).padStart(2, "0")).join("");
  }));
}"""

SLIDER_NAME_JS = """(slider) => {
  const label = slider.querySelector(".widget-label");
  return (label && label.textContent.trim()) || "(no description)";
}"""


def _short(text, n=120):
    return text if len(text) <= n else text[: n - 1] + "…"


def _lines(problems):
    """Problems one per line, each once (pytest would elide the middle of a long list)."""
    return "\n".join(["", *dict.fromkeys(problems)])


ARTICLE_JS = """() => {
  const article = document.querySelector("article.bd-article");
  const h1 = article && article.querySelector("h1");
  return {title: h1 ? h1.textContent.trim() : null,
          text: article ? article.innerText.trim().length : 0};
}"""


def test_page_renders(book_page):
    """MathJax, the widgets and the images finished; the article has a title and text, and the
    page on screen is not blank (its screenshot has more than one shade)."""
    assert not book_page.settle_problems, _lines(book_page.settle_problems)
    article = book_page.page.evaluate(ARTICLE_JS)
    assert article["title"], f"{book_page.path}: no <h1> in the article"
    assert article["text"] > 200, f"{book_page.path}: the article holds {article['text']} chars"
    shot = Image.open(io.BytesIO(book_page.page.screenshot())).convert("L")
    assert ImageStat.Stat(shot).stddev[0] > 5, f"{book_page.path}: the page shows a blank screen"


# The scripts book/_ext/vaebook_static.py chooses, by the file name they end with.
SCRIPTS_JS = """() => [...document.scripts].map((s) => s.src).filter((src) =>
  /\\/(tex-svg-full|require|embed-amd)\\.js(\\?|$)/.test(src))"""


def test_javascript_source(book_page, cdn_standin):
    """MathJax, RequireJS and the widget manager came from where this build should load them:
    the CDN (answered by the npm packages standing in for it) or the book's own _static/vendor."""
    scripts = book_page.page.evaluate(SCRIPTS_JS)
    if not scripts:
        pytest.skip("the page loads neither MathJax nor widgets")
    if cdn_standin is not None:
        expected = f"https://{CDN_HOST}{CDN_PREFIX}"
    else:
        expected = book_page.url.rsplit("/", book_page.path.count("/") + 1)[0] + "/_static/vendor/"
    wrong = [src for src in scripts if not src.startswith(expected)]
    assert not wrong, _lines([f"expected every script from {expected}:", *wrong])
    if cdn_standin is not None:
        answered = set(book_page.cdn_requests)
        missing = [src for src in scripts if src not in answered]
        assert not missing, _lines(["never requested from the CDN:", *missing])


# A path of the machine that built the book, in a cell's output: a home, temporary, cache or
# work folder, or the repository's own path. (A path that is the same on every machine, such
# as Debian's /usr/share/datasets/fashion-mnist, is not one.)
MACHINE_PATH = re.compile(
    r"(?<![\w.])(?:/(?:home|root|tmp|Users|var|srv|mnt|work)/[^\s'\"]*"
    r"|~/\.cache[^\s'\"]*|[A-Za-z]:\\(?:Users|Temp)[^\s'\"]*)"
)
OUTPUTS_JS = """() => [...document.querySelectorAll(".cell_output")]
  .map((e) => e.innerText).join("\\n")"""


def test_no_machine_paths(book_page):
    """No cell output shows a path of the machine that built the page."""
    text = book_page.page.evaluate(OUTPUTS_JS)
    root = str(Path(__file__).resolve().parent.parent)
    found = sorted({m.group(0) for m in MACHINE_PATH.finditer(text)})
    found += [f"the repository path {root}"] if root in text else []
    assert not found, _lines(f"{book_page.path} shows {_short(p, 100)}" for p in found)


def test_math_typeset(book_page):
    """No raw TeX in the visible text; every math element was typeset, without TeX errors."""
    math = book_page.page.evaluate(MATH_JS)
    raw = sorted({_short(m.group(0), 60) for m in RAW_TEX.finditer(math["text"])})
    problems = [f"raw TeX in the visible text: {r}" for r in raw]
    problems += [f"math left untypeset: {u}" for u in math["untypeset"]]
    problems += [f"TeX error: {e}" for e in math["errors"]]
    if math["typeset"] < math["sources"]:
        problems.append(f"{math['sources']} math elements but {math['typeset']} typeset")
    assert not problems, _lines(problems)


def test_images_load(book_page):
    """Every <img> decoded to a real picture (naturalWidth > 0)."""
    broken = book_page.page.evaluate(IMAGES_JS)
    assert not broken, _lines(f"{_short(b['src'], 100)} (alt={b['alt']!r})" for b in broken)


def test_internal_links(book_page, book_dir):
    """Every link into the book names a file that exists, and an anchor that exists there."""
    page = book_page.page
    origin = urlsplit(book_page.url).netloc
    own_ids = set(page.evaluate(IDS_JS))
    broken = []
    for href in page.evaluate(LINKS_JS):
        url = urlsplit(href)
        if url.scheme not in ("http", "https") or url.netloc != origin:
            continue  # outside the book (not fetched), mailto:, javascript:
        path = unquote(url.path).lstrip("/")
        target = book_dir / path
        if not path or path.endswith("/"):
            target = target / "index.html"
        if not target.is_file():
            broken.append(f"{href}: {target.relative_to(book_dir)} does not exist")
            continue
        anchor = unquote(url.fragment)
        if not anchor or target.suffix != ".html":
            continue
        ids = own_ids if path == book_page.path else book_html.ids(target)
        if anchor not in ids:
            broken.append(f"{href}: no id {anchor!r} in {target.relative_to(book_dir)}")
    assert not broken, _lines(broken)


def test_launch_and_download_buttons(book_page, book_dir):
    """A notebook page offers Binder (which installs vaebook) and a download of its .ipynb."""
    if not book_html.is_notebook(book_dir, book_page.path):
        pytest.skip("not a notebook page")
    notebook = book_page.path.removesuffix(".html") + ".ipynb"
    buttons = book_page.page.evaluate(
        """() => ({
          launch: [...document.querySelectorAll(".dropdown-launch-buttons a")].map((a) => a.href),
          download: [...document.querySelectorAll(".dropdown-download-buttons a")]
            .map((a) => a.href),
        })"""
    )
    links = [h for h in buttons["launch"] if "mybinder.org" in h]
    assert links, f"no Binder launch button; launch links: {buttons['launch']}"
    assert any(h.endswith(notebook) for h in links), f"{links} do not open {notebook}"
    sources = [h for h in buttons["download"] if h.endswith(".ipynb")]
    assert sources, f"no .ipynb download button; download links: {buttons['download']}"
    for href in sources:
        assert (book_dir / unquote(urlsplit(href).path).lstrip("/")).is_file(), href


def _position(handle):
    return handle.get_attribute("aria-valuenow"), handle.get_attribute("aria-valuetext")


def _wait_for(condition, seconds):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _figure_after(slider, before, seconds=3.0):
    """The figure beside the slider once it shows an image that differs from `before`, or
    what it shows after `seconds` (a new image takes a moment to decode)."""
    deadline = time.monotonic() + seconds
    while True:
        now = slider.evaluate(FIGURE_JS)
        if (now and now != before) or time.monotonic() > deadline:
            return now
        time.sleep(0.05)


def _press(handle, key):
    """Press key on the focused slider handle; True if the slider moved."""
    before = _position(handle)
    handle.press(key)
    return _wait_for(lambda: _position(handle) != before, 1.0)


def _drag(page, slider, handle, to_left):
    """Drag the handle to one end of its track; True if the slider moved."""
    before = _position(handle)
    track = slider.locator(".noUi-target").first.bounding_box()
    box = handle.bounding_box()
    if not track or not box:
        return False
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(track["x"] + (1 if to_left else track["width"] - 1), y, steps=10)
    page.mouse.up()
    return _wait_for(lambda: _position(handle) != before, 1.0)


def _moves(page, slider, handle, limit=60):
    """Move the slider stop by stop with the arrow keys, to one end and else to the other;
    fall back to dragging it end to end. Yields once after each move."""
    for key in ("ArrowLeft", "ArrowRight"):
        moved = 0
        while moved < limit and _press(handle, key):
            moved += 1
            yield f"{key} to {_position(handle)}"
        if moved:
            return
    for to_left in (True, False):
        if _drag(page, slider, handle, to_left):
            yield f"dragged to {_position(handle)}"


def test_sliders_change_figure(book_page):
    """Moving each slider, stop by stop, changes the figure shown beside it every time."""
    page = book_page.page
    sliders = page.locator(".widget-slider")
    if sliders.count() == 0:
        pytest.skip("no sliders on this page")
    page.evaluate("() => document.querySelectorAll('details').forEach((d) => (d.open = true))")
    problems = []
    for i in range(sliders.count()):
        slider = sliders.nth(i)
        name = f"slider {i + 1} ({slider.evaluate(SLIDER_NAME_JS)})"
        if slider.evaluate("(s) => !!s.closest('.widget-interact')"):
            problems.append(
                f"{name} is an interact widget: it needs a kernel and does nothing in the "
                "book (tag its cell remove-cell, or use vaebook.widgets.snapshot_slider)"
            )
            continue
        shown = slider.evaluate(FIGURE_JS)
        if not shown:
            problems.append(f"{name} has no image beside it in its widget")
            continue
        handle = slider.locator(".noUi-handle").first
        handle.scroll_into_view_if_needed()
        moves = 0
        for move in _moves(page, slider, handle):
            moves += 1
            before, shown = shown, _figure_after(slider, shown)
            if not shown or shown == before:
                problems.append(f"{name}: the figure did not change ({move})")
                break
        if moves == 0:
            problems.append(f"{name} does not move (one stop only?)")
    assert not problems, _lines(problems)


def test_no_console_errors(book_page):
    """Nothing logged an error or threw while the page loaded and was used."""
    assert not book_page.console_errors, _lines(book_page.console_errors)


def test_no_outside_requests(book_page):
    """The page asked for nothing beyond the local server (all such requests were blocked)."""
    assert not book_page.outside_requests, _lines(book_page.outside_requests)
