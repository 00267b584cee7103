"""The book as a whole: its table of contents, and its figures in the theme's dark mode."""

import io

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
MAX_FIGURES = 20


def test_table_of_contents(book_dir):
    """The toc lists at least the root page, and every page it lists was built."""
    pages = book_html.pages(book_dir)
    assert pages, "the table of contents lists no page"
    missing = [p for p in pages if not (book_dir / p).is_file()]
    assert not missing, f"listed in the toc but not built: {missing}"


def _luminance(png):
    """Mean luma of a PNG, from 0 (black) to 1 (white)."""
    return ImageStat.Stat(Image.open(io.BytesIO(png)).convert("L")).mean[0] / 255


def _rgb_luminance(css):
    r, g, b = (float(v) for v in css[css.index("(") + 1 : css.index(")")].split(",")[:3])
    return (0.299 * r + 0.587 * g + 0.114 * b) / 255


def _figure_luminances(loaded):
    page = loaded.page
    images = page.locator("article.bd-article img")
    return {
        f["i"]: (f["src"], _luminance(images.nth(f["i"]).screenshot()))
        for f in page.evaluate(FIGURES_JS)[:MAX_FIGURES]
    }


def test_dark_mode_figures_readable(browser, server, book_dir, screenshot_dir):
    """In the theme's dark mode the figures of a chapter keep a light backdrop: each stands out
    from the dark page and looks about as light as in light mode (a transparent figure would
    show the dark page through it, with its dark lines and text lost)."""
    pages = book_html.pages(book_dir)
    with_figures = [p for p in pages if book_html.has_figure(book_dir, p)]
    chapters = [p for p in with_figures if book_html.is_notebook(book_dir, p)]
    if not with_figures:
        pytest.skip("no page of the book has a figure yet")
    path = (chapters or with_figures)[0]

    light = open_page(browser, server, path)
    try:
        light_figures = _figure_luminances(light)
    finally:
        light.page.context.close()
    dark = open_page(browser, server, path, dark=True)
    try:
        page = dark.page
        page.screenshot(path=str(screenshot_dir / screenshot_name(path, ".dark")), full_page=True)
        assert page.evaluate("document.documentElement.dataset.theme") == "dark"
        background = _rgb_luminance(page.evaluate(BACKGROUND_JS))
        dark_figures = _figure_luminances(dark)
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
