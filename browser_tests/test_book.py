"""The book as a whole: its table of contents, and the figures of every chapter in the theme's
dark mode."""

import io
import json

import book_html
import pytest
from book_browser import open_page, screenshot_name
from PIL import Image, ImageStat

# Figures: images in the article at least this large (icons and logos are smaller).
FIGURES_JS = """() => [...document.querySelectorAll("article.bd-article img")]
  .map((img, i) => ({i, src: (img.getAttribute("src") || "").slice(0, 80),
                     w: img.naturalWidth, h: img.naturalHeight, shown: img.checkVisibility()}))
  .filter((f) => f.shown && f.w >= 64 && f.h >= 64)"""
BACKGROUND_JS = """() => [document.body, document.documentElement]
  .map((e) => getComputedStyle(e).backgroundColor)
  .find((c) => !/rgba\\(.*, 0\\)$|transparent/.test(c)) || "rgb(255, 255, 255)" """
MAX_FIGURES = 6  # per chapter, spread over it


def test_table_of_contents(book_dir):
    """Every page `_toc.yml` lists was built, and the sidebar lists exactly those, in order."""
    problems = book_html.toc_problems(book_dir)
    assert not problems, "\n".join(["", *problems])


def _fake_book(folder, built):
    """A book folder whose index opens the toc's root page, whose sidebar links to `built`
    (root excluded) and which holds only the pages in `built`."""
    (folder / "index.html").write_text(f'<meta http-equiv="refresh" content="0; url={built[0]}">')
    links = "".join(f'<a class="reference internal" href="../{p}">{p}</a>' for p in built[1:])
    for page in built:
        (folder / page).parent.mkdir(parents=True, exist_ok=True)
        (folder / page).write_text(f'<nav class="bd-docs-nav">{links}</nav>')


def test_table_of_contents_check_catches_a_missing_chapter(tmp_path):
    """The check above fails when a chapter of `_toc.yml` is missing from the build, even
    though the sidebar, built from the same incomplete book, does not list it either."""
    wanted = book_html.toc_pages()
    chapter = next(p for p in wanted if p.startswith("notebooks/"))
    _fake_book(tmp_path, [p for p in wanted if p != chapter])
    problems = book_html.toc_problems(tmp_path)
    assert any(chapter in p and "not built" in p for p in problems), problems
    complete = tmp_path / "complete"
    complete.mkdir()
    _fake_book(complete, wanted)
    assert book_html.toc_problems(complete) == []


def _luminance(png):
    """Mean luma of a PNG, from 0 (black) to 1 (white)."""
    return ImageStat.Stat(Image.open(io.BytesIO(png)).convert("L")).mean[0] / 255


def _rgb_luminance(css):
    r, g, b = (float(v) for v in css[css.index("(") + 1 : css.index(")")].split(",")[:3])
    return (0.299 * r + 0.587 * g + 0.114 * b) / 255


def _spread(items, n):
    """At most n of items, evenly spread from the first to the last."""
    if len(items) <= n:
        return items
    return [items[round(k * (len(items) - 1) / (n - 1))] for k in range(n)]


def _figure_luminances(page, figures):
    images = page.locator("article.bd-article img")
    return {f["i"]: (f["src"], _luminance(images.nth(f["i"]).screenshot())) for f in figures}


def _chapters():
    return [p for p in book_html.toc_pages() if p.startswith("notebooks/")]


@pytest.mark.parametrize("path", _chapters())
def test_dark_mode_figures_readable(browser, server, book_dir, screenshot_dir, cdn_standin, path):
    """In the theme's dark mode the figures of every chapter keep a light backdrop: each stands
    out from the dark page and looks about as light as in light mode (a transparent figure
    would show the dark page through it, with its dark lines and text lost)."""
    if not book_html.has_figure(book_dir, path):
        pytest.skip(f"{path} has no figure")

    # One load: dark mode as a reader's stored choice, then the theme's light mode on the
    # same page (pydata-sphinx-theme switches by the data-theme attribute alone).
    dark = open_page(browser, server, path, dark=True, cdn_standin=cdn_standin)
    try:
        page = dark.page
        page.screenshot(path=str(screenshot_dir / screenshot_name(path, ".dark")), full_page=True)
        assert page.evaluate("document.documentElement.dataset.theme") == "dark"
        dark_css = page.evaluate(BACKGROUND_JS)
        background = _rgb_luminance(dark_css)
        figures = _spread(page.evaluate(FIGURES_JS), MAX_FIGURES)
        dark_figures = _figure_luminances(page, figures)
        page.evaluate("document.documentElement.dataset.theme = 'light'")
        page.wait_for_function(f"({BACKGROUND_JS})() !== {json.dumps(dark_css)}")
        light_figures = _figure_luminances(page, figures)
    finally:
        dark.page.context.close()

    assert background < 0.3, f"the dark theme's page background is not dark ({background:.2f})"
    assert dark_figures, f"no figure found on {path}"
    unreadable = []
    for i, (src, lum) in dark_figures.items():
        lum_light = light_figures.get(i, (src, lum))[1]
        if lum - background < 0.1 or lum < lum_light - 0.25:
            unreadable.append(
                f"{src}: mean luminance {lum:.2f} in dark mode, {lum_light:.2f} in light mode,"
                f" page background {background:.2f}"
            )
    assert not unreadable, "\n".join([f"figures on {path} unreadable in dark mode:", *unreadable])
