#!/usr/bin/env bash
# Re-create the self-hosted JavaScript under _static/ from the npm registry.
# The results are committed; run this only to change versions (then rebuild and run the
# browser tests). Needs npm. Nothing here runs during a normal build or test.
#
#   _static/widgets/  require.js (requirejs) + embed-amd.js and its Font Awesome woff2 fonts
#                     (@jupyter-widgets/html-manager, the ipywidgets 8 embedder)
#   _static/mathjax/  MathJax 3 tex-chtml.js + CHTML woff2 fonts + TeX extensions (autoload)
#   _static/fontawesome4/  Font Awesome 4 CSS + woff2/woff, for the buttons of matplotlib's
#                     to_jshtml animations (they link Font Awesome 4.4 from a CDN; the Sphinx
#                     extension scripts/sphinx/inwhale_vendor_static.py rewrites that link)
set -euo pipefail
HTML_MANAGER_VERSION="${HTML_MANAGER_VERSION:-1.0.15}"   # ipywidgets 8.x <-> html-manager 1.x
REQUIREJS_VERSION="${REQUIREJS_VERSION:-2.3.8}"
MATHJAX_VERSION="${MATHJAX_VERSION:-3.2.2}"
FONTAWESOME4_VERSION="${FONTAWESOME4_VERSION:-4.7.0}"   # icons of matplotlib's to_jshtml

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm pack --silent "@jupyter-widgets/html-manager@$HTML_MANAGER_VERSION" \
    "requirejs@$REQUIREJS_VERSION" "mathjax@$MATHJAX_VERSION" \
    "font-awesome@$FONTAWESOME4_VERSION" >/dev/null
for t in *.tgz; do mkdir -p "${t%.tgz}" && tar xzf "$t" -C "${t%.tgz}"; done

w="$root/_static/widgets"
rm -rf "$w" && mkdir -p "$w"
hm="jupyter-widgets-html-manager-$HTML_MANAGER_VERSION/package"
cp "$hm/dist/embed-amd.js" "$w/"
cp "$hm/dist/embed.js.LICENSE.txt" "$w/embed-amd.js.LICENSE.txt"
# embed-amd.js resolves its fonts next to itself (_static/widgets-config/require-paths.js
# tells require.js where that is); browsers take the woff2 entries, and woff for the faces
# that have no woff2.
cp "$hm/dist/"*.woff2 "$hm/dist/"*.woff "$w/"
cp "requirejs-$REQUIREJS_VERSION/package/require.js" "$w/"

m="$root/_static/mathjax"
rm -rf "$m" && mkdir -p "$m/output/chtml/fonts" "$m/input/tex"
mj="mathjax-$MATHJAX_VERSION/package"
cp "$mj/es5/tex-chtml.js" "$mj/LICENSE" "$m/"
cp -r "$mj/es5/output/chtml/fonts/woff-v2" "$m/output/chtml/fonts/"
cp -r "$mj/es5/input/tex/extensions" "$m/input/tex/"

f="$root/_static/fontawesome4"
rm -rf "$f" && mkdir -p "$f/css" "$f/fonts"
fa="font-awesome-$FONTAWESOME4_VERSION/package"
cp "$fa/css/font-awesome.min.css" "$f/css/"
cp "$fa/fonts/fontawesome-webfont.woff2" "$fa/fonts/fontawesome-webfont.woff" "$f/fonts/"
cat > "$f/README.md" <<EOF
Vendored, unmodified, by scripts/vendor_js.sh (do not edit by hand): npm
font-awesome@$FONTAWESOME4_VERSION (CSS: MIT; fonts: SIL OFL 1.1), css/font-awesome.min.css and
the woff2/woff fonts. Used by matplotlib to_jshtml animation buttons: the Sphinx extension
scripts/sphinx/inwhale_vendor_static.py points their CDN link here.
EOF

cat > "$root/_static/widgets/README.md" <<EOF
Vendored, unmodified, by scripts/vendor_js.sh (do not edit by hand):

- require.js: npm requirejs@$REQUIREJS_VERSION (MIT)
- embed-amd.js + *.woff2 + *.woff: npm @jupyter-widgets/html-manager@$HTML_MANAGER_VERSION (BSD-3-Clause;
  bundled licences in embed-amd.js.LICENSE.txt; the fonts are Font Awesome Free, SIL OFL 1.1)

_config.yml points MyST-NB's nb_ipywidgets_js at these, so pages with widget state need no CDN;
../widgets-config/require-paths.js (not vendored) tells require.js that the fonts are here.
EOF
cat > "$root/_static/mathjax/README.md" <<EOF
Vendored, unmodified, by scripts/vendor_js.sh (do not edit by hand): npm mathjax@$MATHJAX_VERSION
(Apache-2.0, see LICENSE): es5/tex-chtml.js, the CHTML woff-v2 fonts and the TeX extensions
that MathJax autoloads. _config.yml sets mathjax_path: mathjax/tex-chtml.js.
EOF
du -sh "$w" "$m" "$f"
