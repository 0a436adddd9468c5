#!/usr/bin/env bash
# promtool_check.sh SRCDIR - the Prometheus examples are valid: scrape config
# (multi-target relabeling), hashmod sharding example, alerting rules, and the
# rules' unit tests (alerts fire, with the diagnosis code label, at the right
# times). promtool only reads files; nothing is started.
set -euo pipefail
ex=$1/packaging/examples/prometheus
command -v promtool >/dev/null || { echo "promtool not installed (package prometheus)"; exit 1; }
cd "$ex"
promtool check config prometheus.yml
promtool check config prometheus-shard.yml
promtool check rules smtp-probe.rules.yml
promtool test rules smtp-probe.rules.test.yml
# The sharding example really shards: a hashmod keep on __address__.
grep -q 'action: hashmod' prometheus-shard.yml
grep -q 'regex: "0"' prometheus-shard.yml
echo "ok: Prometheus examples valid"
