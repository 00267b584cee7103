"""Serve MathJax and the ipywidgets JavaScript from the book itself when they were fetched.

``book/_scripts/fetch_static.sh`` (run by ``make book`` when npm exists) puts them in
``book/_static/vendor/``. When all of them are there, this extension adds that folder to
``html_static_path`` and points ``mathjax_path`` and myst-nb's ``nb_ipywidgets_js`` at the
local copies, so math and widgets render offline. When any is missing, it changes nothing
and the pages load them from the CDNs (the Sphinx and myst-nb defaults).
"""

from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent.parent / "_static"  # book/_static
MATHJAX = "vendor/mathjax/tex-svg-full.js"
REQUIREJS = "vendor/requirejs/require.js"
EMBED_AMD = "vendor/html-manager/embed-amd.js"
WIDGETS_CDN = "https://cdn.jsdelivr.net/npm/"  # only for third-party widget modules


def use_vendored_js(app, config):
    missing = [p for p in (MATHJAX, REQUIREJS, EMBED_AMD) if not (STATIC / p).is_file()]
    if missing:
        logger.info("vaebook_static: %s missing; MathJax and widgets load from CDNs", missing[0])
        return
    config.html_static_path = [*config.html_static_path, str(STATIC)]
    config.mathjax_path = MATHJAX  # relative paths are relative to _static/
    # No crossorigin attribute: pages opened from file:// would refuse the scripts.
    config.nb_ipywidgets_js = {
        REQUIREJS: {},
        EMBED_AMD: {"data-jupyter-widgets-cdn": WIDGETS_CDN},
    }
    logger.info("vaebook_static: MathJax and widgets load from %s", STATIC / "vendor")


def setup(app):
    app.connect("config-inited", use_vendored_js)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
