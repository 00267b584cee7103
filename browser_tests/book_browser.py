"""Open a page of the built book in Chromium and let it settle, recording what went wrong."""

import mimetypes
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

# The CDN a build without the vendored JavaScript loads it from (book/_ext/vaebook_static.py):
# https://cdn.jsdelivr.net/npm/NAME@VERSION/FILE, which serves the npm package's files.
CDN_HOST = "cdn.jsdelivr.net"
CDN_PREFIX = "/npm/"

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # Belt and braces: even a request that escaped the route below could not resolve a host.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
VIEWPORT = {"width": 1280, "height": 900}
TIMEOUT_MS = 20_000  # for any one wait: page load, MathJax, widgets, images

# Runs in the page after "load": waits for MathJax, the widgets and the images; returns
# what did not finish in time.
SETTLE_JS = """async (timeoutMs) => {
  const problems = [];
  const within = (promise, what) => Promise.race([
    promise.then(() => null, (e) => `${what} failed: ${e}`),
    new Promise((r) => setTimeout(() => r(`${what}: not done after ${timeoutMs} ms`), timeoutMs)),
  ]).then((problem) => problem && problems.push(problem));
  const until = (test) => new Promise((resolve) => {
    const poll = () => (test() ? resolve() : setTimeout(poll, 100));
    poll();
  });
  const mj = window.MathJax;
  if (mj && mj.startup && mj.startup.promise) {
    await within(mj.startup.promise, "MathJax typesetting");
  } else if (document.querySelector(".math")) {
    problems.push("the page has math but MathJax did not load");
  }
  const views = [...document.querySelectorAll(
    'script[type="application/vnd.jupyter.widget-view+json"]')];
  const rendered = () => views.every((view) => {
    const area = view.previousElementSibling;
    return area && area.classList.contains("widget-subarea")
      && area.querySelector(".jupyter-widgets");
  });
  if (views.length) {
    await within(until(rendered), `rendering ${views.length} widget(s)`);
  }
  await within(Promise.all([...document.images].map((img) => img.complete ? null
    : new Promise((r) => { img.addEventListener("load", r); img.addEventListener("error", r); })
  )), "loading the images");
  await within(document.fonts.ready, "loading the fonts");
  if (mj && mj.typesetPromise) {
    await within(mj.typesetPromise(), "MathJax typesetting after the widgets");
  }
  return problems;
}"""


@dataclass
class LoadedPage:
    """A page of the book open in the browser, and what happened while it loaded."""

    path: str
    url: str
    page: object  # playwright Page
    console_errors: list = field(default_factory=list)
    outside_requests: list = field(default_factory=list)
    cdn_requests: list = field(default_factory=list)  # answered by the stand-in
    settle_problems: list = field(default_factory=list)
    screenshot: Path | None = None


def cdn_file(standin, url):
    """The file of the stand-in folder (NAME@VERSION/FILE, as npm packs it) that answers a
    request to the CDN, or None."""
    parts = urlsplit(url)
    if standin is None or parts.netloc != CDN_HOST or not parts.path.startswith(CDN_PREFIX):
        return None
    relative = unquote(parts.path[len(CDN_PREFIX) :])
    path = (Path(standin) / relative).resolve()
    inside = path.is_relative_to(Path(standin).resolve())
    return path if inside and path.is_file() else None


def open_page(browser, server, path, *, dark=False, cdn_standin=None):
    """Open `path` of the book in a fresh context, wait until it has settled.

    With `cdn_standin` (a folder of unpacked npm packages, NAME@VERSION/...), requests to the
    CDN are answered from it, as the CDN would (with CORS, so Subresource Integrity checks
    apply); a request for a file it lacks counts as an outside request."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    loaded = LoadedPage(path=path, url=server + path, page=None)
    origin = urlsplit(server).netloc

    def route(route):
        url = route.request.url
        standin = cdn_file(cdn_standin, url)
        if urlsplit(url).netloc == origin:
            route.continue_()
        elif standin is not None:
            loaded.cdn_requests.append(url)
            kind = mimetypes.guess_type(standin.name)[0] or "application/octet-stream"
            route.fulfill(
                status=200,
                body=standin.read_bytes(),
                headers={"Content-Type": kind, "Access-Control-Allow-Origin": "*"},
            )
        else:
            loaded.outside_requests.append(f"{route.request.method} {route.request.url}")
            route.abort("blockedbyclient")

    def route_socket(socket):
        loaded.outside_requests.append(f"WebSocket {socket.url}")
        socket.close()

    context.route("**/*", route)
    context.route_web_socket("**/*", route_socket)
    if dark:  # the theme's own switch: pydata-sphinx-theme keeps the choice in localStorage
        context.add_init_script(
            "localStorage.setItem('mode', 'dark'); localStorage.setItem('theme', 'dark');"
        )
    page = context.new_page()
    loaded.page = page

    def on_console(message):
        if message.type != "error":
            return
        where = message.location.get("url", "")
        # The browser asks every site for /favicon.ico by itself; the book declares none.
        if where == server + "favicon.ico":
            return
        loaded.console_errors.append(f"{message.text} ({where})" if where else message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: loaded.console_errors.append(f"uncaught: {error}"))
    response = page.goto(loaded.url, wait_until="load", timeout=TIMEOUT_MS)
    loaded.settle_problems = page.evaluate(SETTLE_JS, TIMEOUT_MS)
    if response is None or not response.ok:
        status = response.status if response else "no response"
        loaded.settle_problems.insert(0, f"{path}: HTTP {status}")
    return loaded


def screenshot_name(path, suffix=""):
    return path.removesuffix(".html").replace("/", "__") + suffix + ".png"
