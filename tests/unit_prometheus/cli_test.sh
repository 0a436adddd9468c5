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
grep -qF "bad.yml:4:14: timeout: '5 seconds' is not a number of seconds 0-3600 (or a duration such as 500ms, 1m30s)" "$TMP/err" ||
  fail "bad config message: $(cat "$TMP/err")"

# module values are the core's vocabulary: its sentence after the key, and
# the documented role: default accepted
printf 'modules:\n  a:\n    min_tls_version: "1.4"\n' >"$TMP/tls14.yml"
run --config.check --config.file="$TMP/tls14.yml"
[ "$rc" = 1 ] || fail "min_tls_version 1.4 exit $rc"
grep -qF "tls14.yml:3:22: min_tls_version: '1.4' is not 1.0, 1.1, 1.2 or 1.3" "$TMP/err" ||
  fail "min_tls_version 1.4 message: $(cat "$TMP/err")"
printf 'modules:\n  a:\n    role: default\n    tls: implicit\n    ports: [465]\n' >"$TMP/role.yml"
run --config.check --config.file="$TMP/role.yml"
[ "$rc" = 0 ] || fail "role: default refused: $(cat "$TMP/err")"
grep -q '1 modules OK' "$TMP/out" || fail "role: default check output: $(cat "$TMP/out")"

# a bad config at start-up: exit 1 without listening
run --config.file="$TMP/bad.yml" --web.listen-address=127.0.40.19:9587
[ "$rc" = 1 ] || fail "start with a bad config exit $rc"

# Every flag with a wrong type, an out-of-range number, an over-long value,
# a missing or unusable file: exit non-zero at start with a message naming
# the flag. Lines: EXIT_CODE|MESSAGE_WORDS|ARGS (ARGS split on spaces).
LONG=$(printf 'a%.0s' $(seq 1 5000))
printf 'modules:\n  a: {}\n' >"$TMP/good.yml"
mkdir -p "$TMP/dir.yml"
printf 'basic_auth_users:\n  u: plaintext\n' >"$TMP/web-bad.yml"
printf 'tls_server_config:\n  cert_file: /nonexistent/tls.crt\n  key_file: /nonexistent/tls.key\n' >"$TMP/web-nofile.yml"
while IFS='|' read -r want words args; do
  [ -n "$want" ] || continue
  args=${args//@LONG@/$LONG}
  args=${args//@TMP@/$TMP}
  # shellcheck disable=SC2086
  run --web.listen-address=127.0.40.19:9587 --config.file="$TMP/good.yml" $args
  words=${words//@TMP@/$TMP}
  shown=${args:0:120}
  [ "$rc" = "$want" ] || fail "$shown: exit $rc, want $want ($(head -c 300 "$TMP/err"))"
  grep -qF -- "$words" "$TMP/err" || fail "$shown: message lacks \"$words\": $(head -c 300 "$TMP/err")"
  [ "$(wc -c <"$TMP/err")" -lt 2000 ] || fail "$shown: message over 2000 bytes"
done <<'CASES'
2|--web.max-connections: 1..4096|--web.max-connections=abc
2|--web.max-connections: 1..4096|--web.max-connections=0
2|--web.max-connections: 1..4096|--web.max-connections=4097
2|--web.max-connections: 1..4096|--web.max-connections=99999999999999999999999
2|--web.max-connections: 1..4096|--web.max-connections=@LONG@
2|--probe.max-concurrent: 1..1024|--probe.max-concurrent=-1
2|--probe.max-concurrent: 1..1024|--probe.max-concurrent=1.5
2|--probe.timeout-offset: 0..60 s|--probe.timeout-offset=nan
2|--probe.timeout-offset: 0..60 s|--probe.timeout-offset=61
2|--probe.timeout-offset: 0..60 s|--probe.timeout-offset=0.5s
2|--web.max-connections-per-ip: 0..4096|--web.max-connections-per-ip=-1
2|--web.max-connections-per-ip: 0..4096|--web.max-connections-per-ip=many
2|--web.idle-timeout: 1..3600|--web.idle-timeout=0
2|--web.idle-timeout: 1..3600|--web.idle-timeout=10s
2|--web.idle-timeout: 1..3600|--web.idle-timeout=3601
2|--log.level: error, warn, info or debug|--log.level=@LONG@
2|--log.level: error, warn, info or debug|--log.level=
2|--web.listen-address: expected [HOST]:PORT|--web.listen-address=@LONG@
2|--web.listen-address: expected [HOST]:PORT|--web.listen-address=127.0.0.1:70000
2|--web.listen-address: expected [HOST]:PORT|--web.listen-address=[::1
2|--web.listen-address: expected [HOST]:PORT|--web.listen-address=mail.example.com:9587
2|--web.config.file: empty path|--web.config.file=
2|needs a value|--web.config.file
1|--config.file), nothing to run: /nonexistent/smtp.yml: No such file|--config.file=/nonexistent/smtp.yml
1|not a regular file|--config.file=@TMP@/dir.yml
1|File name too long|--config.file=@LONG@
1|--web.config.file: /nonexistent/web.yml: No such file|--web.config.file=/nonexistent/web.yml
1|--web.config.file: @TMP@/dir.yml: not a regular file|--web.config.file=@TMP@/dir.yml
1|File name too long|--web.config.file=@LONG@
1|web-bad.yml:2:6: the hash of user "u" is not a bcrypt hash|--web.config.file=@TMP@/web-bad.yml
1|web-nofile.yml:2:14: cert_file /nonexistent/tls.crt: No such file|--web.config.file=@TMP@/web-nofile.yml
CASES

# Unreadable files (root reads everything, so run as nobody): each error
# names the flag or key and the file.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
  chmod 711 "$TMP"
  mkdir -m 755 "$TMP/pub"
  printf 'modules:\n  a: {}\n' >"$TMP/pub/secret.yml"
  chmod 600 "$TMP/pub/secret.yml"
  printf 'x\n' >"$TMP/pub/ca.pem"
  chmod 600 "$TMP/pub/ca.pem"
  printf 'modules:\n  a:\n    ca_file: %s\n' "$TMP/pub/ca.pem" >"$TMP/pub/ca.yml"
  printf 'modules:\n  a: {}\n' >"$TMP/pub/good.yml"
  printf 'basic_auth_users:\n  u: x\n' >"$TMP/pub/web.yml"
  chmod 600 "$TMP/pub/web.yml"
  chmod 644 "$TMP/pub/ca.yml" "$TMP/pub/good.yml"
  as_nobody() {
    set +e
    setpriv --reuid=65534 --regid=65534 --clear-groups "$BIN" "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    set -e
  }
  as_nobody --config.check --config.file="$TMP/pub/secret.yml"
  if [ "$rc" != 1 ] || ! grep -qF -- "--config.file: $TMP/pub/secret.yml: Permission denied" "$TMP/err"; then
    fail "unreadable --config.file: exit $rc: $(cat "$TMP/err")"
  fi
  as_nobody --config.check --config.file="$TMP/pub/ca.yml"
  if [ "$rc" != 1 ] || ! grep -qF -- 'ca.yml:2:3: module "a": ca_file' "$TMP/err" ||
    ! grep -q 'Permission denied' "$TMP/err"; then
    fail "unreadable ca_file: exit $rc: $(cat "$TMP/err")"
  fi
  as_nobody --config.check --config.file="$TMP/pub/good.yml" --web.config.file="$TMP/pub/web.yml"
  if [ "$rc" != 1 ] || ! grep -qF -- "--web.config.file: $TMP/pub/web.yml: Permission denied" "$TMP/err"; then
    fail "unreadable --web.config.file: exit $rc: $(cat "$TMP/err")"
  fi
else
  echo "skip: unreadable-file cases need root and setpriv"
fi

if command -v promtool >/dev/null; then
  promtool check rules "$RULES" >"$TMP/out" 2>&1 || fail "promtool check rules: $(cat "$TMP/out")"
fi
echo PASS
