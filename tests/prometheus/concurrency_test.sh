#!/usr/bin/env bash
# smtp_exporter under concurrent scrapes:
#  1. 50 scrapes at once of all four Postfix ports with 8 probe slots: every
#     one answered 200 with success 1 on each port; nothing rejected.
#  2. Past the cap (2 slots held by probes of a silent listener): a request
#     whose deadline comes first waits, then gets 503 at its deadline and is
#     counted; a request with a longer deadline waits and is served once a
#     slot frees; the held probes still answer 200 with success 0.
#
# usage: concurrency_test.sh SMTP_EXPORTER ENV_SH
set -euo pipefail
BIN=${1:?usage: concurrency_test.sh SMTP_EXPORTER ENV_SH}
ENV_SH=${2:?usage: concurrency_test.sh SMTP_EXPORTER ENV_SH}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/prometheus/lib.sh
. "$HERE/lib.sh"
# shellcheck disable=SC1090
. "$ENV_SH"

N=50
cat >"$TMP/mail.yml" <<YML
modules:
  mail:
    ports: [25, 465, 587, 2525]
    timeout: 10s
    server_name: $SP_MAIL_NAME
    ca_file: $SP_CA_FILE
  hold:
    ports: [2525]
    tls: starttls
    timeout: 10s
YML

# --- 1. fifty at once, eight slots
start_exporter "$BIN" "$TMP/mail.yml" 127.0.40.12:9587 --probe.max-concurrent=8
URL=$EXPORTER_URL
jobs_pids=()
for i in $(seq 1 "$N"); do
  curl -s --max-time 30 -o "$TMP/c$i.prom" -w '%{http_code}' \
    -H 'X-Prometheus-Scrape-Timeout-Seconds: 10' \
    "$URL/probe?target=$SP_POSTFIX_ADDR&module=mail" >"$TMP/c$i.code" &
  jobs_pids+=($!)
done
for pid in "${jobs_pids[@]}"; do wait "$pid" || true; done
for i in $(seq 1 "$N"); do
  [ "$(cat "$TMP/c$i.code")" = 200 ] || fail "scrape $i: HTTP $(cat "$TMP/c$i.code")"
  for port in 25 465 587 2525; do
    expect_line "$TMP/c$i.prom" "^smtp_probe_success\{port=\"$port\"\} 1\$" "scrape $i: success on $port"
    expect_line "$TMP/c$i.prom" "^smtp_probe_diagnosis_info\{port=\"$port\",code=\"ok\"\} 1\$" "scrape $i: ok on $port"
  done
  # Every port works: the recommendation is 587 with STARTTLS (issue 15).
  expect_line "$TMP/c$i.prom" '^smtp_probe_recommendation_info\{port="587",tls_mode="starttls"\} 1$' "scrape $i: recommends 587 starttls"
done
http_get "$URL/metrics" "$TMP/self.prom" >/dev/null
expect_line "$TMP/self.prom" "^smtp_exporter_probes_total\{module=\"mail\",code=\"ok\"\} $((N * 4))\$" "$((N * 4)) ok probes counted"
expect_line "$TMP/self.prom" '^smtp_exporter_probe_requests_rejected_total 0$' "no rejections"
expect_line "$TMP/self.prom" '^smtp_exporter_probes_in_flight 0$' "no slot left taken"
ok "$N concurrent scrapes with 8 slots: all 200, all ports ok"
kill "$EXPORTER_PID"
wait "$EXPORTER_PID" || true

# --- 2. past the cap: two slots held by probes of a silent listener
python3 "$HERE/blackhole.py" 127.0.40.13 2525 "$TMP/blackhole.ready" &
PIDS+=($!)
deadline=$((SECONDS + 10))
until [ -e "$TMP/blackhole.ready" ]; do
  [ "$SECONDS" -lt "$deadline" ] || fail "blackhole listener did not start"
  sleep 0.05
done
start_exporter "$BIN" "$TMP/mail.yml" 127.0.40.16:9587 --probe.max-concurrent=2
URL=$EXPORTER_URL

# A and B hold both slots for their whole 8 s budget (8.5 s - 0.5 s offset)
hold() {
  curl -s --max-time 30 -o "$TMP/$1.prom" -w '%{http_code}' \
    -H 'X-Prometheus-Scrape-Timeout-Seconds: 8.5' \
    "$URL/probe?target=127.0.40.13&module=hold" >"$TMP/$1.code"
}
hold A &
pid_A=$!
hold B &
pid_B=$!
deadline=$((SECONDS + 10))
until http_get "$URL/metrics" "$TMP/m.prom" >/dev/null &&
  grep -q '^smtp_exporter_probes_in_flight 2$' "$TMP/m.prom"; do
  [ "$SECONDS" -lt "$deadline" ] || fail "two probes never held both slots"
  sleep 0.05
done
ok "two probes hold both slots"

# C: 3 s scrape timeout -> 2.5 s budget, less than A and B need: 503
curl -s --max-time 30 -o "$TMP/C.txt" -w '%{http_code}' \
  -H 'X-Prometheus-Scrape-Timeout-Seconds: 3' \
  "$URL/probe?target=127.0.40.2:25&module=hold" >"$TMP/C.code" &
pid_C=$!
# D: 20 s scrape timeout -> the module's 10 s: waits, then gets a slot
curl -s --max-time 30 -o "$TMP/D.prom" -w '%{http_code}' \
  -H 'X-Prometheus-Scrape-Timeout-Seconds: 20' \
  "$URL/probe?target=127.0.40.2:25&module=hold" >"$TMP/D.code" &
pid_D=$!
deadline=$((SECONDS + 10))
until http_get "$URL/metrics" "$TMP/m.prom" >/dev/null &&
  grep -q '^smtp_exporter_probe_requests_waiting 2$' "$TMP/m.prom"; do
  [ "$SECONDS" -lt "$deadline" ] || fail "C and D were not seen waiting"
  sleep 0.05
done
ok "C and D wait for a slot"

wait "$pid_C" || true
[ "$(cat "$TMP/C.code")" = 503 ] || fail "C: HTTP $(cat "$TMP/C.code"), expected 503"
expect_line "$TMP/C.txt" 'no probe slot' "503 message"
http_get "$URL/metrics" "$TMP/m.prom" >/dev/null
expect_line "$TMP/m.prom" '^smtp_exporter_probe_requests_rejected_total 1$' "one rejection counted"
expect_line "$TMP/m.prom" '^smtp_exporter_probes_in_flight 2$' "A and B still hold the slots at C's deadline"
ok "C got 503 at its deadline while A and B held the slots"

wait "$pid_A" || true
wait "$pid_B" || true
for x in A B; do
  [ "$(cat "$TMP/$x.code")" = 200 ] || fail "$x: HTTP $(cat "$TMP/$x.code")"
  expect_line "$TMP/$x.prom" '^smtp_probe_success\{port="2525"\} 0$' "$x: success 0 for a silent server"
  expect_line "$TMP/$x.prom" '^smtp_probe_diagnosis_info\{port="2525",code="[a-z_]+_timeout"\} 1$' "$x: a timeout code"
done
ok "A and B answered 200 with success 0 and a timeout code"

wait "$pid_D" || true
[ "$(cat "$TMP/D.code")" = 200 ] || fail "D: HTTP $(cat "$TMP/D.code"), expected 200 after waiting"
expect_line "$TMP/D.prom" '^smtp_probe_diagnosis_info\{port="25",code="connect_refused"\} 1$' "D probed once a slot freed"
http_get "$URL/metrics" "$TMP/m.prom" >/dev/null
expect_line "$TMP/m.prom" '^smtp_exporter_probe_requests_rejected_total 1$' "still one rejection"
expect_line "$TMP/m.prom" '^smtp_exporter_probes_in_flight 0$' "all slots free again"
expect_line "$TMP/m.prom" '^smtp_exporter_probe_requests_waiting 0$' "nobody waiting"
promtool_clean "$TMP/m.prom"
ok "D waited and was served when a slot freed"
echo "PASS"
