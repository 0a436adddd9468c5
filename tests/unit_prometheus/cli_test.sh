#!/usr/bin/env bash
# smtp_exporter's command line without network: --help, --version, flag
# errors, --config.check on the sample file and on bad files (line numbers).
#
# usage: cli_test.sh SMTP_EXPORTER SAMPLE_YML ALERT_RULES
set -euo pipefail
BIN=${1:?usage: cli_test.sh SMTP_EXPORTER SAMPLE_YML ALERT_RULES}
SAMPLE=${2:?}
RULES=${3:?}
TMP=$(mktemp -d /tmp/smtp-exporter-cli.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# Run the binary; record exit code, stdout and stderr.
run() {
  set +e
  "$BIN" "$@" >"$TMP/out" 2>"$TMP/err"
  rc=$?
  set -e
}

run --help
[ "$rc" = 0 ] || fail "--help exit $rc"
grep -q -- '--web.listen-address=\[HOST\]:PORT' "$TMP/out" || fail "--help lacks --web.listen-address"
grep -q -- '127.0.0.1:9587' "$TMP/out" || fail "--help lacks the default address"
grep -q -- '--probe.max-concurrent' "$TMP/out" || fail "--help lacks --probe.max-concurrent"

run --version
[ "$rc" = 0 ] || fail "--version exit $rc"
grep -Eq '^smtp_exporter, version [0-9]+\.[0-9]+\.[0-9]+ ' "$TMP/out" || fail "--version: $(cat "$TMP/out")"

run --no.such.flag
[ "$rc" = 2 ] || fail "unknown flag exit $rc"
grep -q 'unknown flag' "$TMP/err" || fail "unknown flag message"
run --probe.max-concurrent=0
[ "$rc" = 2 ] || fail "--probe.max-concurrent=0 exit $rc"
run --log.level=loud
[ "$rc" = 2 ] || fail "--log.level=loud exit $rc"
run --web.listen-address=nohost --config.file="$SAMPLE"
[ "$rc" = 2 ] || fail "bad listen address exit $rc"
run --config.file
[ "$rc" = 2 ] || fail "flag without value exit $rc"

run --config.check --config.file="$SAMPLE"
[ "$rc" = 0 ] || fail "sample config rejected: $(cat "$TMP/err")"
grep -q '2 modules OK' "$TMP/out" || fail "config check output: $(cat "$TMP/out")"
run --config.check --config.file "$SAMPLE"
[ "$rc" = 0 ] || fail "space-separated flag value not accepted"

printf 'modules:\n  a:\n    ports: [25]\n    timeout: 5 seconds\n' >"$TMP/bad.yml"
run --config.check --config.file="$TMP/bad.yml"
[ "$rc" = 1 ] || fail "bad config exit $rc"
grep -q 'bad.yml:4:14: timeout: invalid duration' "$TMP/err" || fail "bad config message: $(cat "$TMP/err")"

# a bad config at start-up: exit 1 without listening
run --config.file="$TMP/bad.yml" --web.listen-address=127.0.40.19:9587
[ "$rc" = 1 ] || fail "start with a bad config exit $rc"

if command -v promtool >/dev/null; then
  promtool check rules "$RULES" >"$TMP/out" 2>&1 || fail "promtool check rules: $(cat "$TMP/out")"
fi
echo PASS
