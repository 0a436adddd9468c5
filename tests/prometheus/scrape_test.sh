#!/usr/bin/env bash
# A real Prometheus scrapes smtp_exporter exactly as it would
# blackbox_exporter (multi-target relabelling) against the real loopback
# Postfix (all four ports) and a failing target, and loads the shipped
# alert rules. The test asks Prometheus' HTTP API, polling with a
# deadline, for success, phase durations, diagnosis codes, the exporter's
# own metrics and the pending "probe failing" alert.
#
# usage: scrape_test.sh SMTP_EXPORTER ENV_SH ALERT_RULES
set -euo pipefail
BIN=${1:?usage: scrape_test.sh SMTP_EXPORTER ENV_SH ALERT_RULES}
ENV_SH=${2:?usage: scrape_test.sh SMTP_EXPORTER ENV_SH ALERT_RULES}
RULES=${3:?usage: scrape_test.sh SMTP_EXPORTER ENV_SH ALERT_RULES}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/prometheus/lib.sh
. "$HERE/lib.sh"
# shellcheck disable=SC1090
. "$ENV_SH"

EXPORTER=127.0.40.14:9587
PROM=127.0.40.90:9090
FAILING=127.0.40.2:25 # nothing listens there

cat >"$TMP/smtp_exporter.yml" <<YML
modules:
  mail:
    ports: [25, 465, 587, 2525]
    timeout: 5s
    server_name: $SP_MAIL_NAME
    ca_file: $SP_CA_FILE
    dns_server: "$SP_DNS_SERVER"
YML
start_exporter "$BIN" "$TMP/smtp_exporter.yml" "$EXPORTER"

cp "$RULES" "$TMP/smtp_alerts.yml"
cat >"$TMP/prom.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $TMP/smtp_alerts.yml
scrape_configs:
  - job_name: smtp
    metrics_path: /probe
    params:
      module: [mail]
    static_configs:
      - targets: ['$SP_MAIL_NAME', '$FAILING']
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: $EXPORTER
  - job_name: smtp_exporter
    static_configs:
      - targets: ['$EXPORTER']
YML
promtool check config "$TMP/prom.yml" >"$TMP/promtool.out" 2>&1 ||
  fail "promtool check config: $(cat "$TMP/promtool.out")"

prometheus --config.file="$TMP/prom.yml" --storage.tsdb.path="$TMP/data" \
  --web.listen-address="$PROM" >"$TMP/prometheus.log" 2>&1 &
PIDS+=($!)
wait_http "http://$PROM/-/ready" 60 || {
  tail -n 20 "$TMP/prometheus.log" >&2
  fail "prometheus did not become ready"
}
ok "prometheus ready on $PROM"

# Poll an instant query until a python check over its result passes.
# usage: await DESCRIPTION QUERY PYTHON_CONDITION (over `r`, the result list)
await() {
  local what=$1 query=$2 cond=$3 deadline=$((SECONDS + 60))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if curl -sf --max-time 5 -G "http://$PROM/api/v1/query" \
      --data-urlencode "query=$query" -o "$TMP/q.json" &&
      python3 - "$TMP/q.json" "$cond" <<'PY'; then
import json, sys
doc = json.load(open(sys.argv[1]))
r = doc["data"]["result"]
sys.exit(0 if doc["status"] == "success" and eval(sys.argv[2]) else 1)
PY
      ok "$what"
      return 0
    fi
    sleep 0.5
  done
  echo "--- last answer to $query:" >&2
  cat "$TMP/q.json" >&2 || true
  fail "$what: not seen within 60 s"
}

await "success 1 on all four Postfix ports" \
  "smtp_probe_success{job=\"smtp\",instance=\"$SP_MAIL_NAME\"} == 1" \
  'sorted(x["metric"]["port"] for x in r) == ["25", "2525", "465", "587"]'
await "diagnosis ok on all four ports" \
  "smtp_probe_diagnosis_info{job=\"smtp\",instance=\"$SP_MAIL_NAME\",code=\"ok\"}" \
  'len(r) == 4'
await "phase durations (dns, connect, banner, tls_handshake) for all ports" \
  "smtp_probe_phase_duration_seconds{job=\"smtp\",instance=\"$SP_MAIL_NAME\",phase=~\"dns|connect|banner|tls_handshake\"}" \
  'len(r) == 16 and all(float(x["value"][1]) >= 0 for x in r)'
await "STARTTLS ports show a starttls phase" \
  "smtp_probe_phase_duration_seconds{job=\"smtp\",instance=\"$SP_MAIL_NAME\",phase=\"starttls\"}" \
  'sorted(x["metric"]["port"] for x in r) == ["25", "2525", "587"]'
await "the failing target: success 0" \
  "smtp_probe_success{job=\"smtp\",instance=\"$FAILING\"}" \
  'len(r) == 1 and r[0]["value"][1] == "0" and r[0]["metric"]["port"] == "25"'
await "the failing target: code connect_refused" \
  "smtp_probe_diagnosis_info{job=\"smtp\",instance=\"$FAILING\"}" \
  'len(r) == 1 and r[0]["metric"]["code"] == "connect_refused"'
await "certificate expiry in the future" \
  "smtp_probe_cert_chain_earliest_not_after_timestamp_seconds{job=\"smtp\"} - time() > 0" \
  'len(r) == 4'
await "every scrape of the exporter succeeded (up == 1)" \
  'up{job=~"smtp|smtp_exporter"}' \
  'len(r) == 3 and all(x["value"][1] == "1" for x in r)'
await "the exporter's own metrics: probes counted by module and code" \
  'smtp_exporter_probes_total{job="smtp_exporter",module="mail",code="connect_refused"} > 0' \
  'len(r) == 1'
await "the exporter's config reload status" \
  'smtp_exporter_config_last_reload_successful{job="smtp_exporter"}' \
  'len(r) == 1 and r[0]["value"][1] == "1"'
await "scrape duration stays below the scrape timeout" \
  'max_over_time(scrape_duration_seconds{job="smtp"}[30s])' \
  'len(r) == 2 and all(float(x["value"][1]) < 1 for x in r)'

# The shipped "probe failing" alert is pending (for: 5m) with the code.
deadline=$((SECONDS + 60))
until curl -sf --max-time 5 "http://$PROM/api/v1/alerts" -o "$TMP/alerts.json" &&
  python3 - "$TMP/alerts.json" "$FAILING" <<'PY'; do
import json, sys
alerts = json.load(open(sys.argv[1]))["data"]["alerts"]
hit = [a for a in alerts if a["labels"].get("alertname") == "SMTPProbeFailing"
       and a["labels"].get("instance") == sys.argv[2]
       and a["labels"].get("code") == "connect_refused"
       and a["state"] in ("pending", "firing")]
others = [a for a in alerts if a["labels"].get("alertname") == "SMTPProbeFailing"
          and a["labels"].get("instance") != sys.argv[2]]
sys.exit(0 if hit and not others else 1)
PY
  [ "$SECONDS" -lt "$deadline" ] || {
    cat "$TMP/alerts.json" >&2 || true
    fail "SMTPProbeFailing not pending for $FAILING with code connect_refused"
  }
  sleep 0.5
done
ok "alert SMTPProbeFailing pending for the failing target, with code=connect_refused"
echo "PASS"
