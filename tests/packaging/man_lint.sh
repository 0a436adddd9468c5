#!/usr/bin/env bash
# man_lint.sh SRCDIR - every man page formats without a groff warning
# (-ww), `man -l` renders it, and each page documents every option its
# program's --help lists (when the built programs are given as
# CHECK=path EXPORTER=path in the environment).
set -euo pipefail
man=$1/packaging/man
status=0
for page in "$man"/check_smtp_ports.1 "$man"/smtp_exporter.1 "$man"/smtp_probe.5; do
  warn=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$page" 2>&1)
  if [ -n "$warn" ]; then echo "$warn"; echo "FAIL: groff warnings in $page"; status=1; fi
  # groff above is the lint; man -l must render (its stderr is shown, but
  # man-db may print cache notices while a package install runs mandb).
  if ! rendered=$(MANWIDTH=80 man -l "$page" 2>&1 >/dev/null); then
    echo "$rendered"; echo "FAIL: man -l $page"; status=1
  elif [ -n "$rendered" ]; then
    echo "note: man -l $page said: $rendered"
  fi
  echo "checked $(basename "$page")"
done
# Options in --help must appear in the page (as rendered text).
check_opts() {
  local page=$1 help=$2
  local text opts
  text=$(MANWIDTH=200 man -l "$page" 2>/dev/null | sed 's/‐/-/g')
  opts=$(printf '%s\n' "$help" | grep -o -- '--[a-z][a-z0-9.-]*[a-z0-9]' | sort -u)
  for o in $opts; do
    if ! grep -q -- "$o" <<<"$text"; then
      echo "FAIL: $(basename "$page") does not document $o"
      status=1
    fi
  done
  echo "checked $(printf '%s\n' "$opts" | wc -l) long options of $(basename "$page") against --help"
}
if [ -n "${CHECK:-}" ]; then check_opts "$man/check_smtp_ports.1" "$("$CHECK" --help || true)"; fi
if [ -n "${EXPORTER:-}" ]; then check_opts "$man/smtp_exporter.1" "$("$EXPORTER" --help || true)"; fi
# Names in the sources must be in the pages: the exporter's metric families
# and module keys, the collectd plugin's options.
src=$1
words_in_page() { # PAGE WORD...
  local page=$1 text w
  shift
  text=$(MANWIDTH=200 man -l "$page" 2>/dev/null | sed 's/‐/-/g')
  for w in "$@"; do
    if ! grep -qw -- "$w" <<<"$text"; then
      echo "FAIL: $(basename "$page") does not mention $w"
      status=1
    fi
  done
  echo "checked $# names from the source in $(basename "$page")"
}
if ls "$src"/prometheus/*.c >/dev/null 2>&1; then
  # shellcheck disable=SC2046
  words_in_page "$man/smtp_exporter.1" \
    $(grep -ho 'expo_family([^"]*"smtp_[a-z_]*"' "$src"/prometheus/*.c | grep -o '"[a-z_]*"' | tr -d '"' | sort -u) \
    $(grep -ho 'strcmp(key, "[a-z_]*")' "$src"/prometheus/modules.c | grep -o '"[a-z_]*"' | tr -d '"' | grep -vx 'modules' | sort -u)
fi
if [ -f "$src/collectd/plugin.c" ]; then
  # The name map's rows ({"MinTLS", "min_tls"}) and the plugin's own
  # keys (unit.collectd.docs checks both directions against USAGE.md too).
  # shellcheck disable=SC2046
  words_in_page "$man/smtp_probe.5" \
    $(grep -o '{"[A-Z][A-Za-z]*", "[a-z_]*"}' "$src/collectd/plugin.c" | grep -o '^{"[A-Za-z]*"' | tr -d '{"' | sort -u) \
    $(sed -n '/spc_own_keys\[\] = {/,/};/p' "$src/collectd/plugin.c" | grep -o '"[A-Za-z]*"' | tr -d '"' | sort -u)
fi
exit $status
