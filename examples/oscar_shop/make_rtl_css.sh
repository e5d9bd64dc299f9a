#!/bin/sh
# Rebuild the demo's right-to-left stylesheets from the installed Django Oscar's own CSS.
# Oscar 4 ships Bootstrap 4 (v4.6.2) compiled into oscar/css/styles.css and dashboard.css,
# with no RTL build; rtlcss (MIT, https://rtlcss.com) mirrors every left/right rule.
# Needs Node.js: npx fetches rtlcss 4.3.0. Run from the repository root.
set -eu
css="$(python -c 'import oscar, os; print(os.path.join(os.path.dirname(oscar.__file__), "static/oscar/css"))')"
out=examples/oscar_shop/oscar_shop/static/oscar_shop/css
for name in styles dashboard; do
  npx --yes rtlcss@4.3.0 "$css/$name.css" "$out/$name.rtl.tmp"
  {
    echo '@charset "UTF-8";'
    printf '/*! Right-to-left build of Django Oscar 4.2'"'"'s oscar/css/%s.css (Oscar: BSD-3-Clause; the Bootstrap v4.6.2\n' "$name"
    printf ' * inside it: MIT), mirrored by rtlcss 4.3.0 (MIT) for the demo shop in Arabic. Regenerate with\n'
    printf ' * examples/oscar_shop/make_rtl_css.sh after upgrading Oscar. */\n'
    # Oscar's @charset line goes above; its fonts and images stay in oscar/ (url("../...")).
    tail -n +2 "$out/$name.rtl.tmp" | sed 's|url("\.\./|url("../../oscar/|g'
  } >"$out/$name.rtl.css"
  rm "$out/$name.rtl.tmp"
done
