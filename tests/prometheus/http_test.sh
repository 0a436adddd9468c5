#!/usr/bin/env bash
# smtp_exporter's HTTP surface against the real loopback Postfix:
# /probe on all four ports (success, phases, codes, port labels), a failing
# target, IPv6 target form, 400/404/405 answers, debug page with masking,
# /metrics, landing page, reload by POST and SIGHUP (bad config rejected,
# old kept), and promtool check metrics over every exposition.
#
# usage: http_test.sh SMTP_EXPORTER ENV_SH
set -euo pipefail
BIN=${1:?usage: http_test.sh SMTP_EXPORTER ENV_SH}
ENV_SH=${2:?usage: http_test.sh SMTP_EXPORTER ENV_SH}
# shellcheck source=tests/prometheus/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1090
. "$ENV_SH"

LISTEN=127.0.40.11:9587
FAILING=127.0.40.2:25 # nothing listens there

cat >"$TMP/smtp_exporter.yml" <<YML
modules:
  mail:
    ports: [25, 465, 587, 2525]
    tls: auto
    timeout: 8s
    server_name: $SP_MAIL_NAME
    ca_file: $SP_CA_FILE
    dns_server: "$SP_DNS_SERVER"
  plain:
    ports: [25]
    tls: none
    timeout: 3s
  auth:
    ports: [587, 465]
    timeout: 8s
    server_name: $SP_MAIL_NAME
    ca_file: $SP_CA_FILE
    auth_user: $SP_SASL_USER
    auth_password_file: $SP_SASL_PASSWORD_FILE
YML
cat >"$TMP/policy.yml" <<YML
ports:
  465:
    tls: implicit
    auth: after_tls
  587:
    tls: starttls
    mechanisms: [PLAIN]
  2525:
    state: closed
  2526:
    state: closed
YML
cat >>"$TMP/smtp_exporter.yml" <<YML
  policy:
    policy_file: $TMP/policy.yml
    timeout: 8s
    server_name: $SP_MAIL_NAME
    ca_file: $SP_CA_FILE
YML

start_exporter "$BIN" "$TMP/smtp_exporter.yml" "$LISTEN"
URL=$EXPORTER_URL

# --- every port of the real Postfix, by IP, module ports
code=$(http_get "$URL/probe?target=$SP_POSTFIX_ADDR&module=mail" "$TMP/all.prom" -D "$TMP/all.hdr")
[ "$code" = 200 ] || fail "/probe all ports: HTTP $code"
expect_line "$TMP/all.hdr" '^Content-Type: text/plain; version=0\.0\.4' "text format content type"
for port in 25 465 587 2525; do
  expect_line "$TMP/all.prom" "^smtp_probe_success\{port=\"$port\"\} 1\$" "success on $port"
  expect_line "$TMP/all.prom" "^smtp_probe_diagnosis_info\{port=\"$port\",code=\"ok\"\} 1\$" "code ok on $port"
  expect_line "$TMP/all.prom" "^smtp_probe_phase_duration_seconds\{port=\"$port\",phase=\"connect\"\} [0-9.e-]+\$" "connect phase on $port"
  expect_line "$TMP/all.prom" "^smtp_probe_phase_duration_seconds\{port=\"$port\",phase=\"tls_handshake\"\} [0-9.e-]+\$" "tls_handshake phase on $port"
  expect_line "$TMP/all.prom" "^smtp_probe_tls_version_info\{port=\"$port\",version=\"TLSv1\.[23]\"\} 1\$" "TLS version on $port"
  expect_line "$TMP/all.prom" "^smtp_probe_cert_not_after_timestamp_seconds\{port=\"$port\"\} [0-9]+\$" "leaf expiry on $port"
  expect_line "$TMP/all.prom" "^smtp_probe_reply_code\{port=\"$port\",phase=\"banner\"\} 220\$" "banner reply on $port"
done
expect_line "$TMP/all.prom" '^smtp_probe_tls_implicit\{port="465"\} 1$' "implicit TLS on 465"
expect_line "$TMP/all.prom" '^smtp_probe_starttls_advertised\{port="587"\} 1$' "STARTTLS advertised on 587"
expect_line "$TMP/all.prom" '^smtp_probe_auth_mechanism_info\{port="587",mechanism="PLAIN",tls="true"\} 1$' "AUTH PLAIN inside TLS on 587"
# no phase the probe did not go through (IP literal: no dns), no total phase
if grep -Eq 'phase="(dns|total)"' "$TMP/all.prom"; then fail "dns/total phase reported for an IP target"; fi
# every sample carries a port label
if grep -v '^#' "$TMP/all.prom" | grep -vq '{port="'; then fail "a sample without a port label"; fi
promtool_clean "$TMP/all.prom"
ok "four Postfix ports: success, phases, codes, port labels, promtool clean"

# --- by name through the test resolver, one port in the target
code=$(http_get "$URL/probe?target=$SP_MAIL_NAME:587&module=mail" "$TMP/one.prom")
[ "$code" = 200 ] || fail "/probe name:587: HTTP $code"
expect_line "$TMP/one.prom" '^smtp_probe_success\{port="587"\} 1$' "success for name:587"
expect_line "$TMP/one.prom" '^smtp_probe_phase_duration_seconds\{port="587",phase="dns"\} ' "dns phase for a name"
[ "$(grep -c '^smtp_probe_success' "$TMP/one.prom")" = 1 ] || fail "target with a port probed more than that port"
ok "name:port probes just that port, with a dns phase"

# --- a failing target: still 200, success 0, the code
code=$(http_get "$URL/probe?target=$FAILING&module=mail" "$TMP/fail.prom")
[ "$code" = 200 ] || fail "/probe failing target: HTTP $code"
expect_line "$TMP/fail.prom" '^smtp_probe_success\{port="25"\} 0$' "success 0 for a refused port"
expect_line "$TMP/fail.prom" '^smtp_probe_diagnosis_info\{port="25",code="connect_refused"\} 1$' "connect_refused"
promtool_clean "$TMP/fail.prom"
ok "failing target: HTTP 200, success 0, connect_refused"

# --- IPv6 target form keeps the port label
code=$(http_get "$URL/probe?target=%5B::1%5D:2&module=plain" "$TMP/v6.prom")
[ "$code" = 200 ] || fail "/probe [::1]:2: HTTP $code"
expect_line "$TMP/v6.prom" '^smtp_probe_success\{port="2"\} 0$' "port label for an IPv6 target"
ok "IPv6 target [::1]:2 answered with port=\"2\""

# --- bad requests
expect_status() {
  local want=$1 url=$2
  shift 2
  local got
  got=$(http_get "$url" "$TMP/body" "$@")
  [ "$got" = "$want" ] || fail "$url: HTTP $got, expected $want ($(head -c 200 "$TMP/body"))"
}
expect_status 400 "$URL/probe?module=mail"
expect_line "$TMP/body" 'target' "a message naming target"
expect_status 400 "$URL/probe?target=&module=mail"
expect_status 400 "$URL/probe?target=$SP_POSTFIX_ADDR"
expect_line "$TMP/body" 'module' "a message naming module"
expect_status 400 "$URL/probe?target=$SP_POSTFIX_ADDR&module=nope"
expect_line "$TMP/body" 'unknown module "nope"' "unknown module message"
expect_status 400 "$URL/probe?target=bad%20host&module=mail"
expect_status 400 "$URL/probe?target=$SP_POSTFIX_ADDR:99999&module=mail"
expect_line "$TMP/body" 'port' "a message naming the port"
expect_status 400 "$URL/probe?target=$SP_POSTFIX_ADDR&module=mail&debug=maybe"
expect_status 404 "$URL/nothing-here"
expect_status 405 "$URL/-/reload"
expect_status 405 "$URL/metrics" -X POST
expect_status 200 "$URL/-/healthy"
ok "400 for missing/invalid target and unknown module, 404, 405"

# --- debug page: dialogue, decisions, metrics
code=$(http_get "$URL/probe?target=$SP_POSTFIX_ADDR:587&module=mail&debug=true" "$TMP/debug.txt")
[ "$code" = 200 ] || fail "debug: HTTP $code"
expect_line "$TMP/debug.txt" '^Decisions:' "the decision trail"
expect_line "$TMP/debug.txt" '^timeout ' "the timeout decision"
expect_line "$TMP/debug.txt" '^S: 220 ' "the server greeting in the dialogue"
expect_line "$TMP/debug.txt" '^C: STARTTLS' "the STARTTLS command in the dialogue"
expect_line "$TMP/debug.txt" '^smtp_probe_success\{port="587"\} 1$' "the metrics on the debug page"
ok "debug=true shows decisions, dialogue and metrics"

# --- AUTH with the test SASL user: works, and no secret on the debug page
code=$(http_get "$URL/probe?target=$SP_POSTFIX_ADDR&module=auth" "$TMP/auth.prom")
[ "$code" = 200 ] || fail "/probe auth: HTTP $code"
for port in 587 465; do
  expect_line "$TMP/auth.prom" "^smtp_probe_success\{port=\"$port\"\} 1\$" "AUTH success on $port"
  expect_line "$TMP/auth.prom" "^smtp_probe_auth_used_info\{port=\"$port\",mechanism=\"[A-Z0-9-]+\"\} 1\$" "AUTH mechanism on $port"
  expect_line "$TMP/auth.prom" "^smtp_probe_reply_code\{port=\"$port\",phase=\"auth\"\} 235\$" "AUTH 235 on $port"
  expect_line "$TMP/auth.prom" "^smtp_probe_phase_duration_seconds\{port=\"$port\",phase=\"auth\"\} " "auth phase on $port"
done
promtool_clean "$TMP/auth.prom"
code=$(http_get "$URL/probe?target=$SP_POSTFIX_ADDR:587&module=auth&debug=true" "$TMP/authdebug.txt")
[ "$code" = 200 ] || fail "auth debug: HTTP $code"
expect_line "$TMP/authdebug.txt" '^C: AUTH ' "the AUTH command on the debug page"
secret=$(head -n 1 "$SP_SASL_PASSWORD_FILE")
[ -n "$secret" ] || fail "empty SASL secret in $SP_SASL_PASSWORD_FILE"
plain_b64=$(printf '\0%s\0%s' "$SP_SASL_USER" "$secret" | base64 -w0)
user_b64=$(printf '%s' "$SP_SASL_USER" | base64 -w0)
secret_b64=$(printf '%s' "$secret" | base64 -w0)
for needle in "$secret" "$plain_b64" "$secret_b64"; do
  if grep -qF -- "$needle" "$TMP/authdebug.txt" "$TMP/auth.prom" "$TMP/exporter.log"; then
    fail "a credential appears on the debug page, in metrics or in the log"
  fi
done
: "$user_b64" # the user name may appear; only secrets are masked
ok "AUTH on 587 and 465: success, mechanism, 235; debug page and log hold no secret"

# --- a port policy: its ports are probed, deviations are policy_violation
code=$(http_get "$URL/probe?target=$SP_POSTFIX_ADDR&module=policy" "$TMP/policy.prom")
[ "$code" = 200 ] || fail "/probe policy: HTTP $code"
expect_line "$TMP/policy.prom" '^smtp_probe_diagnosis_info\{port="465",code="ok"\} 1$' "465 meets the policy"
expect_line "$TMP/policy.prom" '^smtp_probe_diagnosis_info\{port="2526",code="ok"\} 1$' "2526 closed as the policy says"
expect_line "$TMP/policy.prom" '^smtp_probe_success\{port="2526"\} 1$' "a closed port the policy wants closed succeeds"
expect_line "$TMP/policy.prom" '^smtp_probe_diagnosis_info\{port="2525",code="policy_violation"\} 1$' "2525 open against the policy"
expect_line "$TMP/policy.prom" '^smtp_probe_policy_deviation_info\{port="2525",rule="state"\} 1$' "the state rule broken on 2525"
expect_line "$TMP/policy.prom" '^smtp_probe_policy_deviation_info\{port="587",rule="mechanisms"\} 1$' "the mechanisms rule broken on 587"
promtool_clean "$TMP/policy.prom"
ok "port policy: ports from the policy, deviations as policy_violation"

# --- scrape timeout header is honoured (decision trail shows it)
http_get "$URL/probe?target=$SP_POSTFIX_ADDR:25&module=mail&debug=true" "$TMP/hdr.txt" \
  -H 'X-Prometheus-Scrape-Timeout-Seconds: 3' >/dev/null
expect_line "$TMP/hdr.txt" '^timeout 2\.500s: scrape timeout 3\.000s' "timeout from the scrape header minus offset"
ok "X-Prometheus-Scrape-Timeout-Seconds lowers the timeout"

# --- landing page and /metrics
code=$(http_get "$URL/" "$TMP/index.html")
[ "$code" = 200 ] || fail "/: HTTP $code"
expect_line "$TMP/index.html" 'href="metrics"' "a link to /metrics"
expect_line "$TMP/index.html" '<td>mail</td>' "the module list"
code=$(http_get "$URL/metrics" "$TMP/self.prom")
[ "$code" = 200 ] || fail "/metrics: HTTP $code"
promtool_clean "$TMP/self.prom"
expect_line "$TMP/self.prom" '^smtp_exporter_build_info\{version="[0-9.]+",' "build info"
expect_line "$TMP/self.prom" '^smtp_exporter_probes_total\{module="mail",code="ok"\} [1-9]' "probes by module and code"
expect_line "$TMP/self.prom" '^smtp_exporter_probes_total\{module="mail",code="connect_refused"\} 1$' "the refused probe counted"
expect_line "$TMP/self.prom" '^smtp_exporter_config_last_reload_successful 1$' "reload status"
expect_line "$TMP/self.prom" '^smtp_exporter_config_last_reload_success_timestamp_seconds [0-9]{10}$' "reload timestamp"
for m in process_cpu_seconds_total process_resident_memory_bytes process_open_fds process_start_time_seconds; do
  expect_line "$TMP/self.prom" "^$m [0-9.e+]+\$" "$m"
done
ok "/metrics: self metrics and process metrics, promtool clean"

# --- reload: a bad file is rejected (old kept), a good one applied
cp "$TMP/smtp_exporter.yml" "$TMP/good.yml"
printf 'modules:\n  mail:\n    ports: [25]\n    bogus: 1\n' >"$TMP/smtp_exporter.yml"
code=$(http_get "$URL/-/reload" "$TMP/reload.txt" -X POST)
[ "$code" = 500 ] || fail "reload of a bad file: HTTP $code"
expect_line "$TMP/reload.txt" 'smtp_exporter\.yml:4:5: unknown key "bogus"' "the bad key with its line"
http_get "$URL/metrics" "$TMP/self2.prom" >/dev/null
expect_line "$TMP/self2.prom" '^smtp_exporter_config_last_reload_successful 0$' "reload failure shown"
code=$(http_get "$URL/probe?target=$SP_POSTFIX_ADDR:465&module=mail" "$TMP/after.prom")
[ "$code" = 200 ] || fail "old config not kept after a bad reload (HTTP $code)"
expect_line "$TMP/after.prom" '^smtp_probe_success\{port="465"\} 1$' "old module still probes"
ok "bad config rejected by POST /-/reload, old kept"

# SIGHUP with a new good file: module "renamed" appears, "plain" is gone
sed 's/^  plain:/  renamed:/' "$TMP/good.yml" >"$TMP/smtp_exporter.yml"
kill -HUP "$EXPORTER_PID"
deadline=$((SECONDS + 20))
until [ "$(http_get "$URL/probe?target=$FAILING&module=renamed" "$TMP/renamed.prom")" = 200 ]; do
  [ "$SECONDS" -lt "$deadline" ] || fail "SIGHUP did not load the new config"
  sleep 0.1
done
expect_status 400 "$URL/probe?target=$FAILING&module=plain"
http_get "$URL/metrics" "$TMP/self3.prom" >/dev/null
expect_line "$TMP/self3.prom" '^smtp_exporter_config_last_reload_successful 1$' "reload success after SIGHUP"
ok "SIGHUP reloads the config"

kill -TERM "$EXPORTER_PID"
wait "$EXPORTER_PID" || fail "exporter exited non-zero on SIGTERM"
ok "SIGTERM: clean exit"
echo "PASS"
