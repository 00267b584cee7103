#!/usr/bin/env bash
# Fetch the JavaScript that the HTML book would otherwise load from CDNs (MathJax and the
# ipywidgets HTML manager with RequireJS, at the versions in npm-packages.txt) from the npm
# registry into book/_static/vendor/, so the built book renders math and widgets without a
# network connection. book/_ext/vaebook_static.py points the build at these files when they
# exist at those versions. They are fetched, never committed (book/_static/vendor is ignored).
#
# The unpacked packages stay in _build/npm/NAME@VERSION/: the browser tests serve the CDN
# build's requests from them (browser_tests/cdn.py).
#
#   fetch_static.sh           fetch (nothing to do when the vendored files are current)
#   fetch_static.sh --check   exit 0 if the vendored files are current, 1 if not; fetch nothing
#   fetch_static.sh --npm     also make sure _build/npm holds the unpacked packages
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
vendor="$root/book/_static/vendor"
npm_dir="$root/_build/npm"
# First column of npm-packages.txt: NAME@VERSION, in the order mathjax, html-manager, requirejs.
mapfile -t packages < <(grep -v '^\s*\(#\|$\)' "$root/book/_scripts/npm-packages.txt" | awk '{print $1}')
wanted="${packages[*]}"
current=false
[[ -f "$vendor/VERSIONS" && "$(cat "$vendor/VERSIONS")" == "$wanted" ]] && current=true

unpacked=true
for package in "${packages[@]}"; do
    [[ -f "$npm_dir/$package/package.json" ]] || unpacked=false
done

case "${1:-}" in
    --check) $current; exit ;;
    --npm) $current && $unpacked && exit 0 ;;
    "") if $current; then echo "fetch_static: $vendor is up to date ($wanted)"; exit 0; fi ;;
    *) echo "usage: $0 [--check | --npm]" >&2; exit 2 ;;
esac

npm="${NPM:-npm}"
command -v "$npm" >/dev/null || { echo "fetch_static: $npm not found" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "fetch_static: npm pack $wanted"
(cd "$tmp" && "$npm" pack --silent "${packages[@]}" >/dev/null)

# Every npm tarball holds a top folder named package/; npm names it NAME-VERSION.tgz, with
# @scope/name written scope-name.
mkdir -p "$tmp/npm"
for package in "${packages[@]}"; do
    name="${package%@*}" version="${package##*@}"
    tarball="$tmp/$(echo "${name#@}" | tr / -)-$version.tgz"
    mkdir -p "$tmp/npm/$package"
    tar -xzf "$tarball" -C "$tmp/npm/$package" --strip-components=1
done
rm -rf "$npm_dir"
mkdir -p "$(dirname "$npm_dir")"
mv "$tmp/npm" "$npm_dir"

mathjax="$npm_dir/${packages[0]}" manager="$npm_dir/${packages[1]}" requirejs="$npm_dir/${packages[2]}"
# Assemble in a staging folder, then swap it in whole: a half-written vendor folder
# would make the build point at files that are not there.
stage="$tmp/vendor"
mkdir -p "$stage/mathjax" "$stage/html-manager" "$stage/requirejs"
# tex-svg-full.js holds every TeX extension and draws glyphs as SVG paths, so it loads no
# fonts and no further extensions; ui/, a11y/ and sre/ serve the right-click menu's options.
cp "$mathjax/es5/tex-svg-full.js" "$stage/mathjax/"
cp -r "$mathjax/es5/ui" "$mathjax/es5/a11y" "$mathjax/es5/sre" "$stage/mathjax/"
cp "$mathjax/LICENSE" "$stage/mathjax/"
# embed-amd.js bundles the base, controls and output widgets; the fonts beside it are the
# icon fonts it references by relative path.
cp "$manager/dist/embed-amd.js" "$stage/html-manager/"
find "$manager/dist" -maxdepth 1 \
    \( -name '*.woff2' -o -name '*.woff' -o -name '*.ttf' -o -name '*.eot' -o -name '*.svg' \) \
    -exec cp {} "$stage/html-manager/" \;
cp "$requirejs/require.js" "$stage/requirejs/"
echo "$wanted" > "$stage/VERSIONS"

mkdir -p "$(dirname "$vendor")"
rm -rf "$vendor"
mv "$stage" "$vendor"
echo "fetch_static: wrote $vendor ($(du -sh "$vendor" | cut -f1)); packages in $npm_dir"
