#!/usr/bin/env bash
# Fetch the JavaScript that the HTML book loads from CDNs by default (MathJax and the
# ipywidgets HTML manager with RequireJS) from the npm registry into book/_static/vendor/,
# so the built book renders math and widgets without a network connection.
# book/_ext/vaebook_static.py points the build at these files when they exist.
# The files are fetched, never committed (book/_static/vendor is gitignored).
set -euo pipefail

MATHJAX=mathjax@3.2.2
HTML_MANAGER=@jupyter-widgets/html-manager@1.0.15  # the 1.x line serves ipywidgets 8.1
REQUIREJS=requirejs@2.3.8

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
vendor="$root/book/_static/vendor"
wanted="$MATHJAX $HTML_MANAGER $REQUIREJS"

if [[ -f "$vendor/VERSIONS" && "$(cat "$vendor/VERSIONS")" == "$wanted" ]]; then
    echo "fetch_static: $vendor is up to date ($wanted)"
    exit 0
fi
npm="${NPM:-npm}"
command -v "$npm" >/dev/null || { echo "fetch_static: $npm not found" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "fetch_static: npm pack $wanted"
(cd "$tmp" && "$npm" pack --silent "$MATHJAX" "$HTML_MANAGER" "$REQUIREJS" >/dev/null)

unpack() {  # unpack TARBALL_GLOB DIR: every npm tarball holds a top folder named package/
    mkdir -p "$tmp/$2"
    tar -xzf "$tmp"/$1 -C "$tmp/$2" --strip-components=1
}
unpack 'mathjax-*.tgz' mathjax
unpack 'jupyter-widgets-html-manager-*.tgz' html-manager
unpack 'requirejs-*.tgz' requirejs

# Assemble in a staging folder, then swap it in whole: a half-written vendor folder
# would make the build point at files that are not there.
stage="$tmp/vendor"
mkdir -p "$stage/mathjax" "$stage/html-manager" "$stage/requirejs"
# tex-svg-full.js holds every TeX extension and draws glyphs as SVG paths, so it loads no
# fonts and no further extensions; ui/, a11y/ and sre/ serve the right-click menu's options.
cp "$tmp/mathjax/es5/tex-svg-full.js" "$stage/mathjax/"
cp -r "$tmp/mathjax/es5/ui" "$tmp/mathjax/es5/a11y" "$tmp/mathjax/es5/sre" "$stage/mathjax/"
cp "$tmp/mathjax/LICENSE" "$stage/mathjax/"
# embed-amd.js bundles the base, controls and output widgets; the fonts beside it are the
# icon fonts it references by relative path.
cp "$tmp/html-manager/dist/embed-amd.js" "$stage/html-manager/"
find "$tmp/html-manager/dist" -maxdepth 1 \
    \( -name '*.woff2' -o -name '*.woff' -o -name '*.ttf' -o -name '*.eot' -o -name '*.svg' \) \
    -exec cp {} "$stage/html-manager/" \;
cp "$tmp/requirejs/require.js" "$stage/requirejs/"
echo "$wanted" > "$stage/VERSIONS"

mkdir -p "$(dirname "$vendor")"
rm -rf "$vendor"
mv "$stage" "$vendor"
echo "fetch_static: wrote $vendor ($(du -sh "$vendor" | cut -f1))"
