"""Load MathJax and the ipywidgets JavaScript from the book itself, else from a pinned CDN.

``book/_scripts/fetch_static.sh`` (run by ``make book`` when npm exists) puts the npm packages
listed in ``book/_scripts/npm-packages.txt`` into ``book/_static/vendor/``. When they are all
there at those versions, this extension adds that folder to ``html_static_path`` and points
``mathjax_path`` and myst-nb's ``nb_ipywidgets_js`` at the local copies, so math and widgets
render offline. Otherwise (or with ``VAEBOOK_JS=cdn``) the pages load the same files, at the
same versions, from cdn.jsdelivr.net with their Subresource Integrity hashes.
``VAEBOOK_JS=vendor`` makes missing vendored files an error instead.

Both ways the pages load ``book/_static/vaebook-widgets.js`` between RequireJS and the widget
manager. It lets the manager find its icon fonts (beside embed-amd.js, wherever that came from),
typeset labels with MathJax 3, and keep its Play button, which the theme's icon script broke and
with it every slider linked to one (see the file).

It also removes errors that pages logged in the browser console (browser_tests/ fails on any):

- Sphinx 7.4 writes an inline script added after the builder started twice, so sphinx-thebe's
  ``const THEBE_JS_URL`` threw "has already been declared": repeated scripts are dropped.
- The theme logged "Got invalid theme mode" on a first visit: ``html_context``'s
  ``default_mode`` is set to ``auto``, which is what the theme then fell back to anyway.
"""

import hashlib
import os
from pathlib import Path

from sphinx.errors import ConfigError
from sphinx.util import logging

logger = logging.getLogger(__name__)

BOOK = Path(__file__).resolve().parent.parent  # book/
STATIC = BOOK / "_static"
PACKAGES = BOOK / "_scripts" / "npm-packages.txt"
CDN = "https://cdn.jsdelivr.net/npm/"  # serves every npm package, byte for byte
WIDGETS_SHIM = "vaebook-widgets.js"
# Where the vendored files are, relative to book/_static (fetch_static.sh copies them there).
VENDORED = {
    "mathjax": "vendor/mathjax/tex-svg-full.js",
    "@jupyter-widgets/html-manager": "vendor/html-manager/embed-amd.js",
    "requirejs": "vendor/requirejs/require.js",
}


def packages():
    """{name: (name@version, file in the package, SRI hash)} from npm-packages.txt."""
    found = {}
    for line in PACKAGES.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            package, path, integrity = line.split()
            found[package.rpartition("@")[0]] = (package, path, integrity)
    return found


def wanted_versions():
    """The VERSIONS line fetch_static.sh writes for the packages it should fetch."""
    return " ".join(package for package, _, _ in packages().values())


def vendored_is_current():
    versions = STATIC / "vendor" / "VERSIONS"
    current = versions.is_file() and versions.read_text().strip() == wanted_versions()
    return current and all((STATIC / path).is_file() for path in VENDORED.values())


def static_digest():
    """A digest of book/_static's own files, of the packages and of the vendored versions."""
    files = sorted(p for p in STATIC.glob("*") if p.is_file())
    files += [PACKAGES, STATIC / "vendor" / "VERSIONS"]
    digest = hashlib.sha256(os.environ.get("VAEBOOK_JS", "auto").encode())
    for path in files:
        digest.update(path.name.encode() + (path.read_bytes() if path.is_file() else b"-"))
    return digest.hexdigest()[:16]


def choose_javascript(app, config):
    # The theme reads default_mode from html_context; a value set in the configuration wins.
    # Sphinx copies static files only when it writes pages: a changed digest rewrites them all.
    config.html_context = {
        "default_mode": "auto",
        **(config.html_context or {}),
        "vaebook_static": static_digest(),
    }
    mode = os.environ.get("VAEBOOK_JS", "auto")
    if mode not in ("auto", "vendor", "cdn"):
        raise ConfigError(f"VAEBOOK_JS must be auto, vendor or cdn, not {mode!r}")
    vendored = mode != "cdn" and vendored_is_current()
    if mode == "vendor" and not vendored:
        raise ConfigError(
            f"VAEBOOK_JS=vendor but {STATIC / 'vendor'} does not hold {wanted_versions()}: "
            "run book/_scripts/fetch_static.sh"
        )
    if vendored:
        config.html_static_path = [*config.html_static_path, str(STATIC)]
        config.mathjax_path = VENDORED["mathjax"]  # relative paths are relative to _static/
        # No crossorigin attribute: pages opened from file:// would refuse the scripts.
        requirejs = {VENDORED["requirejs"]: {}}
        manager = {VENDORED["@jupyter-widgets/html-manager"]: {}}
        manager_folder = "vendor/html-manager/"  # relative to the shim's own URL
        where = STATIC / "vendor"
    else:
        config.html_static_path = [*config.html_static_path, str(STATIC / WIDGETS_SHIM)]
        urls = {
            name: (
                CDN + package + "/" + path,
                {"integrity": integrity, "crossorigin": "anonymous"},
            )
            for name, (package, path, integrity) in packages().items()
        }
        config.mathjax_path = urls["mathjax"][0]
        config.mathjax_options = {**(config.mathjax_options or {}), **urls["mathjax"][1]}
        requirejs = dict([urls["requirejs"]])
        manager = dict([urls["@jupyter-widgets/html-manager"]])
        manager_folder = urls["@jupyter-widgets/html-manager"][0].rpartition("/")[0] + "/"
        where = CDN
    config.nb_ipywidgets_js = {
        **requirejs,
        WIDGETS_SHIM: {"data-manager-folder": manager_folder},
        **{url: {**attrs, "data-jupyter-widgets-cdn": CDN} for url, attrs in manager.items()},
    }
    logger.info("vaebook_static: MathJax and widgets load from %s", where)


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
    app.connect("config-inited", choose_javascript)
    app.connect("html-page-context", drop_repeated_scripts, priority=900)
    return {"version": "1.2", "parallel_read_safe": True, "parallel_write_safe": True}
