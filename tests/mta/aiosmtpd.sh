#!/usr/bin/env bash
# A private aiosmtpd server (Debian 12's python3-aiosmtpd 1.4, its own
# STARTTLS and AUTH code; tests/mta/aiosmtpd_server.py) probed by
# check_smtp_ports.
#
# usage: aiosmtpd.sh CHECK_SMTP_PORTS MAKE_CERTS_SH
#
#   127.0.70.26  the good server: 25 (STARTTLS offered), 465 (implicit TLS),
#                587 and 2525 (require_starttls); AUTH PLAIN and LOGIN with
#                auth_require_tls (on 465 the connection is TLS already);
#                certificate mail.smtp-probe.test from the test CA. Every
#                port ok with every phase in the perfdata; AUTH, MAIL FROM,
#                RCPT TO and a test message on 465/587/2525; LOGIN; a wrong
#                password -> auth_failed.
#   127.0.70.29  misconfigured: 587 with auth_require_tls=False ->
#                auth_before_tls; 465 with a certificate for other.example
#                -> cert_hostname_mismatch; 2525 without a tls_context ->
#                starttls_unavailable.
# Everything in a temporary directory; loopback only, no name lookups (the
# server's hostname is given, so aiosmtpd never calls getfqdn()).
set -uo pipefail
CHECK=${1:?usage: aiosmtpd.sh CHECK MAKE_CERTS}
MAKE_CERTS=${2:?}
MTA_NAME=aiosmtpd
# shellcheck source=tests/mta/lib.sh
. "$(dirname "$0")/lib.sh"

NAME=mail.smtp-probe.test
USER_ID=probe@smtp-probe.test
GOOD=127.0.70.26
BAD=127.0.70.29

[ -x "$CHECK" ] || fail "no check_smtp_ports at $CHECK"
[ -x "$PY" ] || fail "no $PY (python3): run scripts/install-deps.sh"
"$PY" -c 'import aiosmtpd' 2>/dev/null ||
  fail "python3-aiosmtpd is not installed: run scripts/install-deps.sh"

mta_init
mta_certs "$MAKE_CERTS"
PW=$tmp/password
WRONG=$tmp/wrong-password
mta_password "$PW"
mta_password "$WRONG"
MTA_LOGS+=("$tmp/server.err" "$tmp/server.log")

"$PY" "$MTA_HERE/aiosmtpd_server.py" --certs "$tmp/certs" --user "$USER_ID" \
  --password-file "$PW" --ready "$tmp/ready" --log "$tmp/server.log" \
  "$GOOD:25=relay" "$GOOD:465=implicit" "$GOOD:587=submission" "$GOOD:2525=submission" \
  "$BAD:587=auth-before-tls" "$BAD:465=implicit-wrongname" "$BAD:2525=no-tls" \
  2>"$tmp/server.err" &
server_pid=$!
MTA_PIDS+=("$server_pid")
for ((i = 0; i < 300; i++)); do
  [ -s "$tmp/ready" ] && break
  kill -0 "$server_pid" 2>/dev/null || fail "aiosmtpd_server.py exited"
  sleep 0.1
done
[ -s "$tmp/ready" ] || fail "aiosmtpd_server.py did not bind its listeners within 30 s"
mta_wait_ready 30 "$GOOD:25" "$GOOD:465:tls" "$GOOD:587" "$GOOD:2525" \
  "$BAD:465:tls" "$BAD:587" "$BAD:2525"
"$PY" -c 'import aiosmtpd; print("aiosmtpd", aiosmtpd.__version__)'

# --ehlo: never this machine's name (the tests must not depend on it).
common=(--cafile "$CA" --sni "$NAME" --ehlo client.smtp-probe.test -v)
auth=(--auth-user "$USER_ID" --auth-password-file "$PW")
starttls_phases=(connect banner ehlo starttls tls_handshake ehlo_tls)

echo "=== $GOOD: every port ok, every phase ==="
expect_check 0 "25 ok" -- -H "$GOOD" -p 25 "${common[@]}"
expect_phases 25 "${starttls_phases[@]}" total
expect_output '^25 relay: OK ok$'

expect_good_submission_ports 2525 465

echo "=== $BAD: misconfigured ports ==="
expect_check 2 "587 auth_before_tls" "465 cert_hostname_mismatch" "2525 starttls_unavailable" -- \
  -H "$BAD" -p 465,587,2525 "${common[@]}"
# aiosmtpd does not name itself as Postfix, Exim or Haraka: the hint names
# the setting of all three.
expect_check 2 "587 auth_before_tls" -- -H "$BAD" -p 587 "${common[@]}" -v
expect_output 'hint: .*smtpd_tls_auth_only.*auth_advertise_hosts.*Haraka'

kill -0 "$server_pid" 2>/dev/null || fail "aiosmtpd_server.py died during the test"
if grep -E 'Traceback|ERROR' "$tmp/server.log" "$tmp/server.err"; then
  fail "aiosmtpd logged an error"
fi
echo "PASS: aiosmtpd"
