# shellcheck shell=bash
# Shared helpers for the smtp_exporter integration tests (sourced).
# Every daemon a test starts is recorded and stopped by the EXIT trap;
# all files live in a private temporary directory removed at exit.

TMP=$(mktemp -d /tmp/smtp-exporter-test.XXXXXX)
PIDS=()

# Stop every process this test started, then remove the temporary files.
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ "${KEEP_TMP:-0}" = 1 ]; then
    echo "kept $TMP" >&2
  else
    rm -rf "$TMP"
  fi
}
trap cleanup EXIT

# Print a failure message (and the exporter log when there is one), exit 1.
fail() {
  echo "FAIL: $*" >&2
  if [ -s "$TMP/exporter.log" ]; then
    echo "--- exporter log (last 30 lines)" >&2
    tail -n 30 "$TMP/exporter.log" >&2
  fi
  exit 1
}

# Print a progress line.
ok() {
  echo "ok: $*"
}

# Poll URL until it answers 2xx or DEADLINE seconds pass.
wait_http() {
  local url=$1 deadline=$((SECONDS + ${2:-20}))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if curl -sf -o /dev/null --max-time 2 "$url"; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}

# Start the exporter: start_exporter BINARY CONFIG ADDR:PORT [flags...].
# Sets EXPORTER_PID and EXPORTER_URL; waits for /-/healthy.
start_exporter() {
  local bin=$1 config=$2 listen=$3
  shift 3
  "$bin" --config.file="$config" --web.listen-address="$listen" \
    --log.level=debug "$@" >>"$TMP/exporter.log" 2>&1 &
  EXPORTER_PID=$!
  PIDS+=("$EXPORTER_PID")
  EXPORTER_URL="http://$listen"
  wait_http "$EXPORTER_URL/-/healthy" 20 || fail "exporter did not come up on $listen"
}

# GET a URL: http_get URL OUTFILE [curl args...]; prints the HTTP status.
http_get() {
  local url=$1 out=$2
  shift 2
  curl -s --max-time 30 -o "$out" -w '%{http_code}' "$@" "$url"
}

# Assert a file holds a line matching an extended regex.
expect_line() {
  local file=$1 re=$2 what=${3:-$2}
  grep -Eq -- "$re" "$file" || {
    echo "--- $file:" >&2
    head -c 4000 "$file" >&2
    fail "expected $what"
  }
}

# Assert promtool finds nothing to complain about in an exposition file.
promtool_clean() {
  local file=$1 out
  out=$(promtool check metrics <"$file" 2>&1) || fail "promtool check metrics $file: $out"
  [ -z "$out" ] || fail "promtool check metrics $file reported: $out"
}

# The value of a metric line exactly as written (first match), or "".
metric_value() {
  local file=$1 series=$2
  awk -v s="$series" '$1 == s { print $2; exit }' "$file"
}
