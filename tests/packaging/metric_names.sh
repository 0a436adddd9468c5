#!/usr/bin/env bash
# metric_names.sh SRCDIR [EXPORTER] - the Grafana dashboard parses as JSON,
# and the dashboard, the alert rules and the scrape examples name only
# metrics smtp_exporter emits.
#
# The emitted names come from the exporter's source (every family it
# declares in prometheus/*.c). When EXPORTER (the built binary) is given, it
# is also started on 127.0.60.1 (the packaging tests' loopback address) with
# the sample modules file, asked to probe a loopback port nobody listens
# on, and every metric name in its /probe and /metrics answers must be one
# of the source names (so the source scan is not missing families), and the
# probe must say connect_refused.
set -euo pipefail
src=$1
exporter=${2:-}
pkg=$src/packaging
dash=$pkg/grafana/smtp-probe-dashboard.json

dir=$(mktemp -d /tmp/sp-metrics.XXXXXX)
pid=
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT

python3 -m json.tool "$dash" >/dev/null || { echo "FAIL: $dash is not valid JSON"; exit 1; }
echo "ok: dashboard parses as JSON"

# Families the exporter declares: expo_family(set, "NAME", ...).
grep -ho 'expo_family([^"]*"[a-z_]*"' "$src"/prometheus/*.c | grep -o '"[a-z_]*"' | tr -d '"' |
  sort -u >"$dir/source"
[ "$(wc -l <"$dir/source")" -ge 10 ] || { echo "FAIL: found only $(wc -l <"$dir/source") families in prometheus/*.c"; exit 1; }
echo "ok: $(wc -l <"$dir/source") metric families declared in prometheus/*.c"

if [ -n "$exporter" ]; then
  addr=127.0.60.1:19587
  "$exporter" --config.file="$src/prometheus/smtp_exporter.yml" \
    --web.listen-address="$addr" --log.level=warn >"$dir/log" 2>&1 &
  pid=$!
  ready=0
  for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null "http://$addr/-/ready" 2>/dev/null; then ready=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  [ "$ready" = 1 ] || { cat "$dir/log"; echo "FAIL: exporter not ready on $addr"; exit 1; }
  curl -fsS "http://$addr/probe?target=127.0.60.1:1&module=submission" >"$dir/probe"
  curl -fsS "http://$addr/metrics" >"$dir/metrics"
  grep -q 'smtp_probe_diagnosis_info{.*code="connect_refused"' "$dir/probe" ||
    { cat "$dir/probe"; echo "FAIL: the probe of 127.0.60.1:1 is not connect_refused"; exit 1; }
  cat "$dir/probe" "$dir/metrics" | grep -v '^#' | grep -o '^smtp_[a-z_]*' | sort -u >"$dir/live"
  extra=$(comm -23 "$dir/live" "$dir/source")
  [ -z "$extra" ] || { echo "FAIL: the exporter emits families the source scan missed: $extra"; exit 1; }
  echo "ok: $(wc -l <"$dir/live") families in a live /probe + /metrics, all in the source list"
fi

# Names used by the dashboard and the Prometheus examples.
status=0
for f in "$dash" "$pkg"/examples/prometheus/*.yml; do
  { grep -o 'smtp_\(probe\|exporter\)_[a-z_]*' "$f" || true; } | sort -u >"$dir/used"
  [ -s "$dir/used" ] || continue
  unknown=$(comm -23 "$dir/used" "$dir/source")
  if [ -n "$unknown" ]; then
    echo "FAIL: $(basename "$f") names metrics the exporter does not emit: $unknown"
    status=1
  else
    echo "ok: $(basename "$f"): $(wc -l <"$dir/used") metric names, all emitted"
  fi
done
# Every dashboard query is valid PromQL: with the Grafana variables
# replaced, they become recording rules that `promtool check rules` parses.
if command -v promtool >/dev/null; then
  python3 - "$dash" "$dir/dash-rules.yml" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
exprs = []
def walk(panels):
    for p in panels:
        for t in p.get("targets", []):
            exprs.append(t["expr"])
        walk(p.get("panels", []))
walk(d["panels"])
for v in d["templating"]["list"]:
    q = v.get("query")
    if isinstance(q, dict) and q["query"].startswith("label_values("):
        inner = q["query"][len("label_values("):].rsplit(",", 1)[0]
        exprs.append(inner)
with open(sys.argv[2], "w") as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, e in enumerate(exprs):
        for var in ("$job", "$instance", "$port"):
            e = e.replace(var, ".*")
        f.write("      - record: dashboard_expr_%d\n        expr: %s\n" % (i, json.dumps(e)))
print("%d dashboard expressions" % len(exprs))
PY
  promtool check rules "$dir/dash-rules.yml" >"$dir/promtool.out" 2>&1 ||
    { cat "$dir/promtool.out" "$dir/dash-rules.yml"; echo "FAIL: a dashboard query is not valid PromQL"; exit 1; }
  echo "ok: every dashboard query parses (promtool)"
fi
# The dashboard must cover what the issue asks: phases, success, codes, cert expiry.
for m in smtp_probe_phase_duration_seconds smtp_probe_success smtp_probe_diagnosis_info \
  smtp_probe_cert_chain_earliest_not_after_timestamp_seconds; do
  grep -q "$m" "$dash" || { echo "FAIL: dashboard lacks $m"; status=1; }
done
exit $status
