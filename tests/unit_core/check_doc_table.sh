#!/usr/bin/env bash
# The code table in docs/diagnosis.md (scope, state per role, hint) must
# equal the one in
# common/codes.c (printed by the core itself via print_code_table).
set -euo pipefail
doc=$1
printer=$2
want=$("$printer")
got=$(grep -E '^\| `[a-z_]+` \| (port|domain|round_trip) \| (OK|WARNING|CRITICAL|UNKNOWN) \|' "$doc")
if [ "$want" != "$(printf '%s\n' "$got")" ]; then
  echo "docs/diagnosis.md's table differs from common/codes.c:" >&2
  diff <(echo "$want") <(echo "$got") >&2 || true
  exit 1
fi
echo "table of $(echo "$want" | wc -l) codes matches"
