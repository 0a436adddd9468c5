#!/usr/bin/env bash
# smtp_exporter's exposure controls (no mail server needed):
#  1. the default listen address is loopback (127.0.0.1:9587);
#  2. allowed_targets: refused hosts, networks and ports get 403 and are
#     counted; an allowed target is probed (200); a reload with a bad list
#     answers 500 and keeps the old one;
#  3. --web.config.file: HTTPS only (TLS 1.2+), basic auth with a bcrypt
#     hash (401 without or with wrong credentials, counted), the password
#     never in argv or the log;
#  4. a connection that sends nothing is closed after --web.idle-timeout.
#
# usage: exposure_test.sh SMTP_EXPORTER MAKE_CERTS_SH
set -euo pipefail
BIN=${1:?usage: exposure_test.sh SMTP_EXPORTER MAKE_CERTS_SH}
MAKE_CERTS=${2:?usage: exposure_test.sh SMTP_EXPORTER MAKE_CERTS_SH}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/prometheus/lib.sh
. "$HERE/lib.sh"

# --- 1. default listen address
cat >"$TMP/plain.yml" <<'YML'
modules:
  sub:
    ports: [2525]
    tls: starttls
    timeout: 2s
YML
taken=$(ss -Hltn | awk '$4 == "127.0.0.1:9587" || $4 == "0.0.0.0:9587" || $4 == "*:9587" || $4 == "[::]:9587"')
if [ -n "$taken" ]; then
  echo "skip: something already listens on 127.0.0.1:9587; default address not checked"
else
  "$BIN" --config.file="$TMP/plain.yml" >>"$TMP/exporter.log" 2>&1 &
  DEFAULT_PID=$!
  PIDS+=("$DEFAULT_PID")
  wait_http "http://127.0.0.1:9587/-/healthy" 20 || fail "no listener on 127.0.0.1:9587 by default"
  listeners=$(ss -Hltnp 'sport = :9587' | grep "pid=$DEFAULT_PID," | awk '{print $4}')
  [ "$listeners" = "127.0.0.1:9587" ] || fail "default listeners: '$listeners', want only 127.0.0.1:9587"
  kill "$DEFAULT_PID"
  wait "$DEFAULT_PID" || true
  ok "default listen address is 127.0.0.1:9587 only"
fi

# --- 2. allowed_targets
cat >"$TMP/allow.yml" <<'YML'
allowed_targets:
  hosts: [mail.smtp-probe.test, "*.smtp-probe.test", localhost]
  networks: [127.0.40.0/24, "::1/128"]
  ports: [25, 2525]
modules:
  v4:
    ports: [25]
    ip_protocol: ip4
    timeout: 2s
  sub:
    ports: [2525]
    tls: starttls
    timeout: 2s
  wide:
    ports: [2525, 587]
    timeout: 2s
YML
start_exporter "$BIN" "$TMP/allow.yml" 127.0.40.20:9587
URL=$EXPORTER_URL
check_status() {
  local target=$1 module=$2 want=$3 words=$4 code
  code=$(http_get "$URL/probe?target=$target&module=$module" "$TMP/r.txt")
  [ "$code" = "$want" ] || fail "$target ($module): HTTP $code, want $want: $(head -c 300 "$TMP/r.txt")"
  grep -qF -- "$words" "$TMP/r.txt" || fail "$target: answer lacks '$words': $(head -c 300 "$TMP/r.txt")"
}
check_status 127.0.41.1 sub 403 "not in allowed_targets.networks"
check_status '127.0.40.29:22' sub 403 "port 22 is not in allowed_targets.ports"
check_status example.org sub 403 "matches no allowed_targets.hosts"
check_status 2130706433 sub 403 "looks numeric"
check_status 127.0.40.29 wide 403 "port 587"
# allowed: nothing listens there, so the probe runs and fails (200)
check_status 127.0.40.29 sub 200 'smtp_probe_diagnosis_info{port="2525",code="connect_refused"} 1'
check_status '[::1]:25' sub 200 'smtp_probe_success{port="25"} 0'
http_get "$URL/metrics" "$TMP/self.prom" >/dev/null
expect_line "$TMP/self.prom" '^smtp_exporter_probe_requests_total\{status="403"\} 5$' "five 403s counted"
expect_line "$TMP/self.prom" '^smtp_exporter_probe_requests_total\{status="200"\} 2$' "two 200s counted"
grep -c 'refused /probe' "$TMP/exporter.log" | grep -qx 5 || fail "five refusals logged"
# a name that passes the host patterns but resolves (here via /etc/hosts)
# outside the networks: the core's guard stops it before any connect
check_status localhost v4 200 'smtp_probe_diagnosis_info{port="25",code="policy_violation"} 1'
# what the client sent comes back sanitised (an escape sequence here)
check_status '%5b%1b%5b31m%5d:25' sub 400 "is not an IPv6 address"
if grep -q $'\x1b' "$TMP/r.txt" "$TMP/exporter.log"; then
  fail "a control byte from the request reached the answer or the log"
fi
# a bad allowlist on reload: 500, old list kept
cp "$TMP/allow.yml" "$TMP/allow.good"
sed -i 's|127.0.40.0/24|127.0.40.1/24|' "$TMP/allow.yml"
code=$(curl -s -o "$TMP/reload.txt" -w '%{http_code}' -X POST "$URL/-/reload")
[ "$code" = 500 ] || fail "bad allowlist reload: HTTP $code"
expect_line "$TMP/reload.txt" 'allow.yml:3:.*zero host bits' "the reload error names line and reason"
check_status 127.0.41.1 sub 403 "not in allowed_targets.networks"
ok "allowed_targets: 403 for hosts, networks, numeric names and ports; counted; bad reload kept the old list"
kill "$EXPORTER_PID"
wait "$EXPORTER_PID" || true

# --- 3. TLS and basic auth
bash "$MAKE_CERTS" "$TMP/certs" >/dev/null 2>&1 || fail "make-certs.sh"
chmod 600 "$TMP/certs/server.key"
head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$TMP/password"
chmod 600 "$TMP/password"
PASSWORD=$(cat "$TMP/password")
hash=$(mkpasswd -m bcrypt -R 6 --stdin <"$TMP/password")
cat >"$TMP/web.yml" <<YML
tls_server_config:
  cert_file: $TMP/certs/server-chain.pem
  key_file: $TMP/certs/server.key
basic_auth_users:
  prometheus: '$hash'
YML
printf 'machine localhost login prometheus password %s\n' "$PASSWORD" >"$TMP/netrc"
printf 'machine localhost login prometheus password wrong-%s\n' "$PASSWORD" >"$TMP/netrc.bad"
chmod 600 "$TMP/netrc" "$TMP/netrc.bad"
"$BIN" --config.file="$TMP/plain.yml" --web.listen-address=127.0.40.21:9587 \
  --web.config.file="$TMP/web.yml" --log.level=debug >>"$TMP/exporter.log" 2>&1 &
EXPORTER_PID=$!
PIDS+=("$EXPORTER_PID")
TLS_URL=https://localhost:9587
TLS=(--cacert "$TMP/certs/ca.pem" --resolve localhost:9587:127.0.40.21)
deadline=$((SECONDS + 20))
until curl -s -o /dev/null "${TLS[@]}" "$TLS_URL/-/healthy"; do
  [ "$SECONDS" -lt "$deadline" ] || fail "HTTPS exporter did not come up"
  sleep 0.1
done
code=$(http_get "$TLS_URL/metrics" "$TMP/noauth.txt" "${TLS[@]}" -D "$TMP/noauth.hdr")
[ "$code" = 401 ] || fail "no credentials: HTTP $code"
grep -qi '^WWW-Authenticate: Basic realm="smtp_exporter"' "$TMP/noauth.hdr" || fail "401 without a Basic challenge"
code=$(http_get "$TLS_URL/metrics" "$TMP/bad.txt" "${TLS[@]}" --netrc-file "$TMP/netrc.bad")
[ "$code" = 401 ] || fail "wrong password: HTTP $code"
code=$(http_get "$TLS_URL/metrics" "$TMP/tls.prom" "${TLS[@]}" --netrc-file "$TMP/netrc")
[ "$code" = 200 ] || fail "right password: HTTP $code"
expect_line "$TMP/tls.prom" '^smtp_exporter_http_requests_unauthorized_total 3$' "three 401s counted (healthy poll, none, wrong)"
code=$(http_get "$TLS_URL/probe?target=127.0.40.29&module=sub" "$TMP/tls-probe.prom" "${TLS[@]}" --netrc-file "$TMP/netrc")
[ "$code" = 200 ] || fail "probe over HTTPS: HTTP $code"
expect_line "$TMP/tls-probe.prom" 'smtp_probe_success\{port="2525"\} 0' "a probe over HTTPS"
# plain HTTP on the TLS port and TLS 1.1 are refused
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 http://127.0.40.21:9587/-/healthy || true)
[ "$code" != 200 ] || fail "plain HTTP answered 200 on the TLS port"
# (openssl s_client at security level 0 offers TLS 1.1 for sure; TLS 1.2
# through the same command must work, so a refusal is the server's)
s_client() { # s_client VERSION_FLAG: exit status of a handshake
  timeout 10 openssl s_client -connect 127.0.40.21:9587 -servername localhost \
    -CAfile "$TMP/certs/ca.pem" -verify_return_error -cipher 'DEFAULT@SECLEVEL=0' \
    "$1" </dev/null >"$TMP/s_client.txt" 2>&1
}
s_client -tls1_2 || fail "TLS 1.2 handshake failed: $(tail -5 "$TMP/s_client.txt")"
if s_client -tls1_1; then
  fail "TLS 1.1 accepted: $(grep -m1 Protocol "$TMP/s_client.txt")"
fi
# an untrusted client (no CA) fails verification
if curl -s -o /dev/null --max-time 5 --resolve localhost:9587:127.0.40.21 "$TLS_URL/-/healthy"; then
  fail "certificate verified without the test CA"
fi
tr '\0' ' ' <"/proc/$EXPORTER_PID/cmdline" | grep -qF -- "$PASSWORD" && fail "password in the exporter's argv"
grep -qF -- "$PASSWORD" "$TMP/exporter.log" && fail "password in the exporter's log"
grep -qF -- "$PASSWORD" "$TMP/tls.prom" && fail "password in /metrics"
ok "HTTPS with TLS 1.2+, basic auth (401 without/with wrong password, counted), password not leaked"
kill "$EXPORTER_PID"
wait "$EXPORTER_PID" || true
# a key that does not belong to the certificate: refused at start
sed "s|$TMP/certs/server.key|$TMP/certs/ecdsa.key|" "$TMP/web.yml" >"$TMP/web-mismatch.yml"
set +e
timeout 20 "$BIN" --config.file="$TMP/plain.yml" --web.listen-address=127.0.40.23:9587 \
  --web.config.file="$TMP/web-mismatch.yml" >"$TMP/mismatch.log" 2>&1
rc=$?
set -e
[ "$rc" = 1 ] || fail "mismatched key: exit $rc, want 1"
grep -q 'cannot start HTTPS' "$TMP/mismatch.log" || fail "mismatched key: $(cat "$TMP/mismatch.log")"
ok "a key that does not match the certificate stops the start (exit 1)"

# --- 4. an idle connection is closed after --web.idle-timeout
start_exporter "$BIN" "$TMP/plain.yml" 127.0.40.22:9587 --web.idle-timeout=2
python3 - 127.0.40.22 9587 <<'PY' || fail "an idle connection was not closed"
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finishes the header
s.settimeout(1)
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    try:
        if s.recv(4096) == b"":
            sys.exit(0)  # closed by the server
    except socket.timeout:
        continue
    except ConnectionResetError:
        sys.exit(0)
sys.exit(1)
PY
curl -sf -o /dev/null "$EXPORTER_URL/-/healthy" || fail "exporter not healthy after the idle connection"
ok "an unfinished request is closed after the idle timeout"
echo PASS
