#!/usr/bin/env bash
# Soak test of smtp_exporter (documented in prometheus/USAGE.md; not in
# CI: it runs for several minutes). 100,000 /probe requests (by default)
# over one exporter's lifetime, in wrk rounds of 20 s with 16 connections,
# against the fault server in starttls mode (127.0.40.41:2525) plus a
# closed port (connect_refused); /metrics is scraped between rounds. The
# exporter's open descriptors (/proc/PID/fd) and resident memory
# (/proc/PID/status VmRSS) are sampled after a warm-up round and after the
# last round; the test fails when they grow beyond a small bound.
#
# usage: soak-exporter.sh SMTP_EXPORTER SMTP_FAULT_SERVER MAKE_CERTS_SH [PROBES]
# env:   SOAK_MAX_FD_GROWTH (default 8), SOAK_MAX_RSS_GROWTH_KB (16384),
#        SOAK_MAX_ROUNDS (60: a bound on time whatever the rate)
set -euo pipefail
BIN=${1:?usage: soak-exporter.sh SMTP_EXPORTER SMTP_FAULT_SERVER MAKE_CERTS_SH [PROBES]}
FAULT=${2:?}
MAKE_CERTS=${3:?}
TARGET_PROBES=${4:-100000}
MAX_FD_GROWTH=${SOAK_MAX_FD_GROWTH:-8}
MAX_RSS_GROWTH_KB=${SOAK_MAX_RSS_GROWTH_KB:-16384}
MAX_ROUNDS=${SOAK_MAX_ROUNDS:-60}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/prometheus/lib.sh
. "$HERE/../prometheus/lib.sh"
command -v wrk >/dev/null || fail "wrk is not installed (scripts/install-deps.sh)"

FS_ADDR=127.0.40.41
bash "$MAKE_CERTS" "$TMP/certs" >/dev/null 2>&1 || fail "make-certs.sh"
"$FAULT" --listen "$FS_ADDR:2525=starttls,cert=ecdsa" \
  --cert-prefix "$TMP/certs/server" --ready-file "$TMP/fs.ready" >"$TMP/fault.log" 2>&1 &
PIDS+=($!)
deadline=$((SECONDS + 20))
until [ -s "$TMP/fs.ready" ]; do
  [ "$SECONDS" -lt "$deadline" ] || fail "fault server not ready"
  sleep 0.1
done
cat >"$TMP/soak.yml" <<YML
modules:
  fs:
    ports: [2525, 2599]
    tls: starttls
    server_name: mail.smtp-probe.test
    ca_file: $TMP/certs/ca.pem
    timeout: 5s
YML
start_exporter "$BIN" "$TMP/soak.yml" 127.0.40.42:9587 --probe.max-concurrent=8 --log.level=warn
URL=$EXPORTER_URL
PID=$EXPORTER_PID

# Print "FDS RSS_KB" of the exporter once it is quiet: connections wrk
# just closed take a moment to be reaped, so the descriptor count is the
# lowest of ten readings over about five seconds (a leak raises it too).
sample() {
  local fds rss n i
  fds=999999
  for i in 1 2 3 4 5 6 7 8 9 10; do
    n=$(find "/proc/$PID/fd" -mindepth 1 -maxdepth 1 | wc -l)
    [ "$n" -lt "$fds" ] && fds=$n
    [ "$i" = 10 ] || sleep 0.5
  done
  rss=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$PID/status")
  echo "$fds $rss"
}

# One wrk round of SECONDS; adds its validated 200s to DONE.
DONE=0
round() {
  local secs=$1 out
  out=$(WRK_EXPECT='smtp_probe_success{port="2525"} 1' WRK_SCRAPE_TIMEOUT=10 \
    wrk -t2 -c16 -d"${secs}s" --timeout 10s -s "$HERE/validate.lua" \
    "$URL/probe?target=$FS_ADDR&module=fs" 2>"$TMP/wrk.err") || fail "wrk: $(cat "$TMP/wrk.err")"
  grep -q 'bad=0$' <<<"$out" || fail "malformed responses: $(grep VALIDATED <<<"$out") $(head -c 500 "$TMP/wrk.err")"
  grep -q '^ERRORS connect=0 read=0 write=0 status=0 timeout=0$' <<<"$out" ||
    fail "errors: $(grep ERRORS <<<"$out")"
  DONE=$((DONE + $(sed -n 's/^VALIDATED ok200=\([0-9]*\).*/\1/p' <<<"$out")))
  RATE=$(sed -n 's/^RATE .*rps=\([0-9.]*\).*/\1/p' <<<"$out")
  LAT=$(sed -n 's/^LATENCY //p' <<<"$out")
  curl -sf -o "$TMP/self.prom" "$URL/metrics" || fail "/metrics between rounds"
}

read -r fd0 rss0 < <(sample)
round 10
read -r fd1 rss1 < <(sample)
echo "start: fds=$fd0 rss_kb=$rss0; after warm-up ($DONE probes): fds=$fd1 rss_kb=$rss1"
rounds=1
while [ "$DONE" -lt "$TARGET_PROBES" ] && [ "$rounds" -lt "$MAX_ROUNDS" ]; do
  round 20
  rounds=$((rounds + 1))
  read -r fd rss < <(sample)
  echo "round $rounds: $DONE probes, $RATE req/s ($LAT), fds=$fd rss_kb=$rss"
done
[ "$DONE" -ge "$TARGET_PROBES" ] || fail "only $DONE probes in $MAX_ROUNDS rounds"
read -r fd2 rss2 < <(sample)
ok200=$(metric_value "$TMP/self.prom" 'smtp_exporter_probe_requests_total{status="200"}')
echo "end: $DONE probes ($ok200 counted by the exporter): fds=$fd2 rss_kb=$rss2"
echo "growth after warm-up: fds $((fd2 - fd1)) (bound $MAX_FD_GROWTH), rss $((rss2 - rss1)) KiB (bound $MAX_RSS_GROWTH_KB)"
[ $((fd2 - fd1)) -le "$MAX_FD_GROWTH" ] || fail "descriptors grew from $fd1 to $fd2"
[ $((rss2 - rss1)) -le "$MAX_RSS_GROWTH_KB" ] || fail "RSS grew from $rss1 to $rss2 KiB"
kill "$PID"
wait "$PID" || true
ok "soak: $DONE probes, fds $fd1 -> $fd2, rss $rss1 -> $rss2 KiB"
echo PASS
