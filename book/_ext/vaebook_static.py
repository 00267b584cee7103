"""Serve MathJax and the ipywidgets JavaScript from the book itself when they were fetched.

``book/_scripts/fetch_static.sh`` (run by ``make book`` when npm exists) puts them in
``book/_static/vendor/``. When all of them are there, this extension adds that folder to
``html_static_path`` and points ``mathjax_path`` and myst-nb's ``nb_ipywidgets_js`` at the
local copies, so math and widgets render offline. When any is missing, the pages load them
from the CDNs (the Sphinx and myst-nb defaults).

It also removes errors that pages logged in the browser console (browser_tests/ fails on any):

- Sphinx 7.4 writes an inline script added after the builder started twice, so sphinx-thebe's
  ``const THEBE_JS_URL`` threw "has already been declared": repeated scripts are dropped.
- The theme logged "Got invalid theme mode" on a first visit: ``html_context``'s
  ``default_mode`` is set to ``auto``, which is what the theme then fell back to anyway.
- With the vendored widget JavaScript, ``book/_static/vaebook-widgets.js`` (loaded between
  RequireJS and the widget manager) lets the manager find its icon fonts, typeset labels with
  MathJax 3, and keep its Play button, which the theme's icon script broke and with it every
  slider linked to one (see the file).
"""

import hashlib
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent.parent / "_static"  # book/_static
MATHJAX = "vendor/mathjax/tex-svg-full.js"
REQUIREJS = "vendor/requirejs/require.js"
EMBED_AMD = "vendor/html-manager/embed-amd.js"
WIDGETS_SHIM = "vaebook-widgets.js"
WIDGETS_CDN = "https://cdn.jsdelivr.net/npm/"  # only for third-party widget modules


def static_digest():
    """A digest of book/_static's own files and of the vendored versions."""
    files = sorted(p for p in STATIC.glob("*") if p.is_file()) + [STATIC / "vendor" / "VERSIONS"]
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + (path.read_bytes() if path.is_file() else b"-"))
    return digest.hexdigest()[:16]


def use_vendored_js(app, config):
    # The theme reads default_mode from html_context; a value set in the configuration wins.
    # Sphinx copies static files only when it writes pages: a changed digest rewrites them all.
    config.html_context = {
        "default_mode": "auto",
        **(config.html_context or {}),
        "vaebook_static": static_digest(),
    }
    missing = [p for p in (MATHJAX, REQUIREJS, EMBED_AMD) if not (STATIC / p).is_file()]
    if missing:
        logger.info("vaebook_static: %s missing; MathJax and widgets load from CDNs", missing[0])
        return
    config.html_static_path = [*config.html_static_path, str(STATIC)]
    config.mathjax_path = MATHJAX  # relative paths are relative to _static/
    # No crossorigin attribute: pages opened from file:// would refuse the scripts.
    config.nb_ipywidgets_js = {
        REQUIREJS: {},
        WIDGETS_SHIM: {},
        EMBED_AMD: {"data-jupyter-widgets-cdn": WIDGETS_CDN},
    }
    logger.info("vaebook_static: MathJax and widgets load from %s", STATIC / "vendor")


def drop_repeated_scripts(app, pagename, templatename, context, doctree):
    """Keep the first of scripts that differ only in filename None vs '' (Sphinx 7.4)."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        attributes = getattr(script, "attributes", {})
        key = (
            getattr(script, "filename", script) or "",
            getattr(script, "priority", None),
            tuple(sorted(attributes.items())),
        )
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def setup(app):
    app.connect("config-inited", use_vendored_js)
    app.connect("html-page-context", drop_repeated_scripts, priority=900)
    return {"version": "1.1", "parallel_read_safe": True, "parallel_write_safe": True}
