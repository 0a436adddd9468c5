#!/usr/bin/env bash
# demo-exporter.sh - start smtp_exporter on 127.0.40.1:9587 against the mail
# environment, scrape /probe for the four Postfix ports (by name, through the
# test resolver) and a failing port, show the debug page of one probe and
# the exporter's own /metrics, then stop it.
#
# usage: demo-exporter.sh BUILD_DIR [ENV_DIR]
# Needs SP_POSTFIX_ADDR, SP_CA_FILE, SP_MAIL_NAME, SP_DNS_SERVER in the
# environment, or ENV_DIR/env.sh to read them from (scripts/demo.sh passes
# both). Everything is kept in a temporary directory and removed at the end.
set -euo pipefail
build=${1:?usage: demo-exporter.sh BUILD_DIR [ENV_DIR]}
envdir=${2:-}
if [ -z "${SP_MAIL_NAME:-}" ] && [ -n "$envdir" ] && [ -r "$envdir/env.sh" ]; then
  # shellcheck disable=SC1091
  . "$envdir/env.sh"
fi
: "${SP_POSTFIX_ADDR:?}" "${SP_CA_FILE:?}" "${SP_MAIL_NAME:?}" "${SP_DNS_SERVER:?}"
bin=$build/prometheus/smtp_exporter
[ -x "$bin" ] || { echo "demo-exporter: $bin not built" >&2; exit 1; }

listen=127.0.40.1:9587
url=http://$listen
dir=$(mktemp -d /tmp/smtp-exporter-demo.XXXXXX)
pid=
# Stop the exporter (if started) and remove the temporary directory.
stop() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap stop EXIT

cat >"$dir/smtp_exporter.yml" <<EOF2
modules:
  mail:
    ports: [25, 465, 587, 2525]
    tls: auto
    timeout: 5s
    server_name: $SP_MAIL_NAME
    ca_file: $SP_CA_FILE
    dns_server: "$SP_DNS_SERVER"
EOF2
# With the environment's SASL user: a module that authenticates after TLS.
if [ -n "${SP_SASL_USER:-}" ] && [ -r "${SP_SASL_PASSWORD_FILE:-}" ]; then
  cat >>"$dir/smtp_exporter.yml" <<EOF2
  auth:
    ports: [587, 465]
    timeout: 5s
    server_name: $SP_MAIL_NAME
    ca_file: $SP_CA_FILE
    auth_user: $SP_SASL_USER
    auth_password_file: $SP_SASL_PASSWORD_FILE
EOF2
fi
echo "\$ cat smtp_exporter.yml"
cat "$dir/smtp_exporter.yml"

"$bin" --config.file="$dir/smtp_exporter.yml" --web.listen-address="$listen" \
  >"$dir/exporter.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -sf -o /dev/null --max-time 1 "$url/-/healthy" && break
  sleep 0.1
done
curl -sf -o /dev/null --max-time 1 "$url/-/healthy" || {
  cat "$dir/exporter.log" >&2
  echo "demo-exporter: exporter did not start" >&2
  exit 1
}

# Print a command line, then its output.
show() {
  echo
  echo "\$ $*"
  "$@" || true
}

show curl -s "$url/probe?target=$SP_MAIL_NAME&module=mail"
show curl -s "$url/probe?target=$SP_POSTFIX_ADDR:2526&module=mail"
if grep -q '^  auth:' "$dir/smtp_exporter.yml"; then
  echo
  echo "\$ curl -s '$url/probe?target=$SP_POSTFIX_ADDR&module=auth' | grep -E '^smtp_probe_(success|diagnosis_info|auth_used_info|reply_code.*auth)'"
  curl -s "$url/probe?target=$SP_POSTFIX_ADDR&module=auth" |
    grep -E '^smtp_probe_(success|diagnosis_info|auth_used_info|reply_code.*auth)' || true
fi
echo
echo "\$ curl -s '$url/probe?target=$SP_POSTFIX_ADDR:587&module=mail&debug=true' | head -n 60"
curl -s "$url/probe?target=$SP_POSTFIX_ADDR:587&module=mail&debug=true" | head -n 60 || true
show curl -s "$url/metrics"
show curl -s -o /dev/null -w 'GET /-/reload -> HTTP %{http_code}\n' "$url/-/reload"
show curl -s -X POST "$url/-/reload"
echo
echo "exporter log:"
cat "$dir/exporter.log"
