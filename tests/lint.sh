#!/bin/sh
# Source gates run by `make check`: the pinned clang-format style (.clang-format) and no banned
# C functions (unbounded copies and parsers: strcpy, strcat, sprintf, vsprintf, gets, strtok, atoi,
# atol). Prints TAP.
cd "${top_srcdir:-$(dirname "$0")/..}" || exit 1
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find server media signaling tests -name '*.[ch]')
echo "1..2"
if command -v clang-format >/dev/null; then
  out=$(clang-format --dry-run $files 2>&1 | grep -m 20 'warning:')
  if [ -z "$out" ]; then echo "ok 1 - clang-format clean"; else
    echo "not ok 1 - clang-format: run clang-format -i on these"; echo "$out" | sed 's/^/# /'; fi
else
  echo "ok 1 # SKIP clang-format not installed"
fi
banned='\b(strcpy|strcat|sprintf|vsprintf|gets|strtok|atoi|atol)[[:space:]]*\('
out=$(grep -nE "$banned" $files | grep -v 'lint: allow')
if [ -z "$out" ]; then echo "ok 2 - no banned functions"; else
  echo "not ok 2 - banned functions used"; echo "$out" | sed 's/^/# /'; fi
