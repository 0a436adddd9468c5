#!/usr/bin/env bash
# Quick load test of smtp_exporter (CTest load.exporter_quick, < 60 s):
#  1. wrk, 64 connections for 5 s on /metrics: every response a valid
#     exposition, no socket errors;
#  2. wrk, 16 connections for 5 s on /probe of the fault server (starttls
#     mode, 127.0.40.31:2525, not Postfix) with 8 probe slots: every answer
#     200 with success 1;
#  3. wrk, 32 connections for 5 s on /probe of a slow listener with 2 slots
#     and a 1 s scrape timeout: past the cap the answer is 503 (valid, within
#     wrk's 5 s timeout), the rest 200; no malformed response;
#  4. slow clients (slowloris) from one address: the per-address limit sheds
#     all but 16, the header deadline closes those; a normal client on
#     another address is served while they hang;
#  5. slow clients from four addresses, more than --web.max-connections:
#     a normal request is served once the header deadline frees slots, and
#     every slow connection is closed by the exporter.
# Figures (requests/s, latency) go to stdout and LOAD_REPORT if set.
#
# usage: exporter_quick.sh SMTP_EXPORTER SMTP_FAULT_SERVER MAKE_CERTS_SH
set -euo pipefail
BIN=${1:?usage: exporter_quick.sh SMTP_EXPORTER SMTP_FAULT_SERVER MAKE_CERTS_SH}
FAULT=${2:?}
MAKE_CERTS=${3:?}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/prometheus/lib.sh
. "$HERE/../prometheus/lib.sh"
command -v wrk >/dev/null || fail "wrk is not installed (scripts/install-deps.sh)"

FS_ADDR=127.0.40.31
EX_LISTEN=127.0.40.32:9587
CLIENT=127.0.40.39

bash "$MAKE_CERTS" "$TMP/certs" >/dev/null 2>&1 || fail "make-certs.sh"
"$FAULT" --listen "$FS_ADDR:2525=starttls,cert=ecdsa" \
  --listen "$FS_ADDR:2526=slow,cert=ecdsa,delay=400" \
  --cert-prefix "$TMP/certs/server" --ready-file "$TMP/fs.ready" \
  >"$TMP/fault.log" 2>&1 &
PIDS+=($!)
deadline=$((SECONDS + 20))
until [ -s "$TMP/fs.ready" ]; do
  [ "$SECONDS" -lt "$deadline" ] || fail "fault server not ready"
  sleep 0.1
done
cat >"$TMP/load.yml" <<YML
modules:
  fs:
    ports: [2525]
    tls: starttls
    server_name: mail.smtp-probe.test
    ca_file: $TMP/certs/ca.pem
    timeout: 5s
  slow:
    ports: [2526]
    tls: starttls
    server_name: mail.smtp-probe.test
    ca_file: $TMP/certs/ca.pem
    timeout: 5s
YML

# Run wrk with validate.lua: run_wrk NAME CONNECTIONS URL; sets VALID,
# ERRORS and prints the figures.
run_wrk() {
  local name=$1 conns=$2 url=$3
  wrk -t2 -c"$conns" -d5s --timeout 5s -s "$HERE/validate.lua" "$url" \
    >"$TMP/wrk-$name.txt" 2>"$TMP/wrk-$name.err" || fail "wrk $name: $(cat "$TMP/wrk-$name.err")"
  VALID=$(grep '^VALIDATED ' "$TMP/wrk-$name.txt") || fail "wrk $name: no summary"
  ERRORS=$(grep '^ERRORS ' "$TMP/wrk-$name.txt")
  echo "$name: $(grep -E '^(VALIDATED|LATENCY|ERRORS|RATE) ' "$TMP/wrk-$name.txt" | tr '\n' ' ')"
  if [ -n "${LOAD_REPORT:-}" ]; then
    { echo "== $name (-c$conns)"; cat "$TMP/wrk-$name.txt"; } >>"$LOAD_REPORT"
  fi
  [ "$ERRORS" = "ERRORS connect=0 read=0 write=0 status=0 timeout=0" ] ||
    [[ "$ERRORS" =~ ^ERRORS\ connect=0\ read=0\ write=0\ status=[0-9]+\ timeout=0$ ]] ||
    fail "wrk $name: socket errors: $ERRORS"
  [[ "$VALID" =~ bad=0$ ]] || fail "wrk $name: malformed responses: $VALID ($(head -c 600 "$TMP/wrk-$name.err"))"
}
count_of() { # count_of KEY: the number after KEY= in $VALID
  sed -n "s/.*$1=\([0-9]*\).*/\1/p" <<<"$VALID"
}

# --- 1-3: wrk
start_exporter "$BIN" "$TMP/load.yml" "$EX_LISTEN" --probe.max-concurrent=8 --log.level=warn
URL=$EXPORTER_URL
WRK_EXPECT='smtp_exporter_build_info{' run_wrk metrics 64 "$URL/metrics"
[ "$(count_of ok200)" -gt 0 ] || fail "no /metrics answered"

WRK_EXPECT='smtp_probe_success{port="2525"} 1' WRK_SCRAPE_TIMEOUT=5 \
  run_wrk probe 16 "$URL/probe?target=$FS_ADDR&module=fs"
[ "$(count_of ok200)" -gt 0 ] || fail "no probe answered"
[ "$(count_of ok503)" = 0 ] || fail "503 with 16 connections and 5 s deadlines"
kill "$EXPORTER_PID"
wait "$EXPORTER_PID" || true

start_exporter "$BIN" "$TMP/load.yml" "$EX_LISTEN" --probe.max-concurrent=2 --log.level=error
URL=$EXPORTER_URL
WRK_EXPECT='smtp_probe_success{port="2526"}' WRK_SCRAPE_TIMEOUT=1 WRK_ALLOW_503=1 \
  run_wrk overload 32 "$URL/probe?target=$FS_ADDR&module=slow"
[ "$(count_of ok503)" -gt 0 ] || fail "no 503 past the probe cap: $VALID"
[ "$(count_of ok200)" -gt 0 ] || fail "no probe served past the cap: $VALID"
http_get "$URL/metrics" "$TMP/self.prom" >/dev/null
rejected=$(metric_value "$TMP/self.prom" smtp_exporter_probe_requests_rejected_total)
[ "${rejected%.*}" -ge "$(count_of ok503)" ] || fail "503s not counted: $rejected"
ok "past the cap: $(count_of ok503) answers 503 (counted: $rejected), $(count_of ok200) served, none malformed"
kill "$EXPORTER_PID"
wait "$EXPORTER_PID" || true

# --- 4. slow clients from one address
start_exporter "$BIN" "$TMP/load.yml" "$EX_LISTEN" --web.max-connections=32 \
  --web.max-connections-per-ip=16 --web.read-header-timeout=3 --log.level=warn
URL=$EXPORTER_URL
python3 "$HERE/slowloris.py" 127.0.40.32 9587 127.0.40.35 60 0.5 8 >"$TMP/slow1.json" &
SLOW=$!
PIDS+=("$SLOW")
sleep_until=$((SECONDS + 1)) # let the slow clients connect first
while [ "$SECONDS" -lt "$sleep_until" ]; do sleep 0.2; done
code=$(curl -s --interface "$CLIENT" --max-time 5 -o "$TMP/n1.prom" -w '%{http_code}' "$URL/metrics")
[ "$code" = 200 ] || fail "normal /metrics during slowloris: HTTP $code"
code=$(curl -s --interface "$CLIENT" --max-time 10 -o "$TMP/n1p.prom" -w '%{http_code}' \
  "$URL/probe?target=$FS_ADDR&module=fs")
[ "$code" = 200 ] || fail "normal /probe during slowloris: HTTP $code"
expect_line "$TMP/n1p.prom" '^smtp_probe_success\{port="2525"\} 1$' "a probe served during slowloris"
wait "$SLOW" || fail "slowloris.py failed"
echo "slowloris one address: $(cat "$TMP/slow1.json")"
python3 - "$TMP/slow1.json" <<'PY' || fail "slow clients from one address were not contained"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["connected"] + r["refused_at_connect"] == 60, r
assert r["held_over_1s"] <= 16, r            # the per-address limit
assert r["still_open_at_end"] == 0, r        # the header deadline closed them
assert r["closed_by_server"] == r["connected"], r
PY
http_get "$URL/metrics" "$TMP/self.prom" >/dev/null
shut=$(metric_value "$TMP/self.prom" smtp_exporter_http_header_timeouts_total)
[ "${shut%.*}" -ge 1 ] || fail "header timeouts not counted: $shut"
ok "slowloris from one address: at most 16 held, all closed by the header deadline ($shut), normal client served"

# --- 5. slow clients from four addresses, more than the connection limit
python3 "$HERE/slowloris.py" 127.0.40.32 9587 127.0.40.35,127.0.40.36,127.0.40.37,127.0.40.38 \
  60 0.5 8 >"$TMP/slow2.json" &
SLOW=$!
PIDS+=("$SLOW")
sleep_until=$((SECONDS + 1))
while [ "$SECONDS" -lt "$sleep_until" ]; do sleep 0.2; done
served=0
deadline=$((SECONDS + 15))
while [ "$SECONDS" -lt "$deadline" ]; do
  code=$(curl -s --interface "$CLIENT" --max-time 5 -o "$TMP/n2.prom" -w '%{http_code}' "$URL/metrics" || true)
  if [ "$code" = 200 ]; then
    served=1
    break
  fi
  sleep 0.2
done
[ "$served" = 1 ] || fail "normal client never served while 60 slow clients hung"
wait "$SLOW" || fail "slowloris.py failed"
echo "slowloris four addresses: $(cat "$TMP/slow2.json")"
python3 - "$TMP/slow2.json" <<'PY' || fail "slow clients from four addresses were not contained"
import json, sys
r = json.load(open(sys.argv[1]))
# past the connection limit the kernel's listen queue holds the rest; each
# is accepted when a slot frees and closed at its own header deadline
assert r["connected"] + r["refused_at_connect"] == 60, r
assert r["still_open_at_end"] == 0, r
assert r["closed_by_server"] == r["connected"], r
PY
curl -sf -o /dev/null "$URL/-/healthy" || fail "exporter unhealthy after the slow clients"
ok "slowloris from four addresses (more than --web.max-connections): all closed by the header deadline, normal client served"
echo PASS
