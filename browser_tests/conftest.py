"""Browser tests of the built HTML book: Playwright drives the system Chromium.

The book is served from a local HTTP server on 127.0.0.1; every request for anything else is
recorded and aborted, and a page that made one fails. Run with `make test-browser`, or:

    VAEBOOK_HTML=_build/html .venv/bin/python -m pytest browser_tests -o addopts= -p no:nbval

Settings (command-line option, else environment variable, else default):
  --html-dir     VAEBOOK_HTML         _build/html          the built book
  --screenshots  VAEBOOK_SCREENSHOTS  _build/screenshots   full-page screenshots land here
  --chromium     VAEBOOK_CHROMIUM     /usr/bin/chromium    Debian: apt-get install chromium
  --cdn-standin  VAEBOOK_CDN_STANDIN  (none)               npm packages that answer requests
                                                           to the CDN (a build with JS=cdn)
Relative paths are relative to the repository root. With a CDN stand-in (make test-browser
JS=cdn passes _build/npm, which book/_scripts/fetch_static.sh fills), the pages must load
MathJax and the widget JavaScript from the CDN; without one, from the book itself.
"""

import functools
import http.server
import os
import threading
from pathlib import Path

import book_html
import pytest
from book_browser import CHROMIUM_ARGS, open_page, screenshot_name

ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser):
    group = parser.getgroup("vaebook browser tests")
    group.addoption("--html-dir", help="the built book (default: $VAEBOOK_HTML or _build/html)")
    group.addoption("--screenshots", help="screenshot folder (default: _build/screenshots)")
    group.addoption("--chromium", help="Chromium executable (default: /usr/bin/chromium)")
    group.addoption("--cdn-standin", help="npm packages standing in for the CDN (JS=cdn build)")


def _setting(config, option, env, default):
    value = config.getoption(option) or os.environ.get(env) or default
    path = Path(value)
    return path if path.is_absolute() else ROOT / path


def html_dir(config):
    return _setting(config, "html_dir", "VAEBOOK_HTML", "_build/html")


def pytest_generate_tests(metafunc):
    """Parametrize `page_path` over the pages `_toc.yml` lists, in its order."""
    if "page_path" not in metafunc.fixturenames:
        return
    root = html_dir(metafunc.config)
    if not (root / "index.html").is_file():
        message = f"browser tests: {root / 'index.html'} does not exist: build the book first"
        raise pytest.UsageError(message + " (or set --html-dir or VAEBOOK_HTML)")
    pages = book_html.pages(root)
    # Module scope: each page loads once and all its tests share it.
    metafunc.parametrize("page_path", pages, ids=pages, scope="module")


@pytest.fixture(scope="session")
def book_dir(pytestconfig):
    return html_dir(pytestconfig)


@pytest.fixture(scope="session")
def cdn_standin(pytestconfig):
    """The folder of npm packages answering requests to the CDN, or None (vendored build)."""
    value = pytestconfig.getoption("cdn_standin") or os.environ.get("VAEBOOK_CDN_STANDIN")
    if not value:
        return None
    folder = _setting(pytestconfig, "cdn_standin", "VAEBOOK_CDN_STANDIN", value)
    if not folder.is_dir():
        pytest.fail(f"CDN stand-in {folder} does not exist (book/_scripts/fetch_static.sh --npm)")
    return folder


@pytest.fixture(scope="session")
def screenshot_dir(pytestconfig):
    folder = _setting(pytestconfig, "screenshots", "VAEBOOK_SCREENSHOTS", "_build/screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return folder


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="session")
def server(book_dir):
    """Serves the book on 127.0.0.1 at an ephemeral port; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(book_dir))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="session")
def browser(pytestconfig):
    from playwright.sync_api import sync_playwright

    chromium = _setting(pytestconfig, "chromium", "VAEBOOK_CHROMIUM", "/usr/bin/chromium")
    if not os.access(chromium, os.X_OK):
        pytest.fail(f"{chromium} not found: install Chromium (Debian: apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS, timeout=60_000
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def book_page(browser, server, screenshot_dir, cdn_standin, page_path):
    """The page, loaded once for all the tests of one page; a full-page screenshot is saved."""
    loaded = open_page(browser, server, page_path, cdn_standin=cdn_standin)
    loaded.screenshot = screenshot_dir / screenshot_name(page_path)
    loaded.page.screenshot(path=str(loaded.screenshot), full_page=True)
    yield loaded
    loaded.page.context.close()
