#!/usr/bin/env bash
# Prove the mail environment is what the tests assume, using reference tools
# (Postfix's posttls-finger, openssl s_client, dig, Python's smtplib):
#   25    STARTTLS offered, no AUTH, verified TLS with the test CA
#   587   STARTTLS offered, AUTH only after TLS, MAIL before TLS refused (530)
#   2525  same as 587
#   465   implicit TLS: verified handshake first, then the 220 banner
#   SASL  probe@smtp-probe.test logs in with PLAIN, LOGIN and CRAM-MD5
#   10587 a PROXY v1 or v2 header gets the greeting, none gets 421 4.3.0
#         after smtpd_upstream_proxy_timeout (2 s)
#   10588 asks for a client certificate: EHLO after TLS works with and
#         without one; 10589 requires one: without, 421 4.7.1; Postfix
#         logs the verified one as "Trusted TLS connection"
#   DNS   mail.smtp-probe.test -> 127.0.10.1, other names never forwarded
#
# usage: smoke.sh DIR    (DIR as given to mailenv.sh start)
set -euo pipefail
dir=${1:?usage: smoke.sh DIR}
# shellcheck source=/dev/null
. "$dir/env.sh"
fails=0

# Report one assertion: ok/FAIL with a label.
check() {
  local label=$1
  shift
  if "$@"; then
    echo "ok   $label"
  else
    echo "FAIL $label"
    fails=$((fails + 1))
  fi
}

# Run posttls-finger (with our instance's main.cf) against one port.
finger() {
  MAIL_CONFIG="$SP_POSTFIX_CONFIG" timeout 20 posttls-finger -l secure \
    -F "$SP_CA_FILE" "[$SP_POSTFIX_ADDR]:$1" "$SP_MAIL_NAME" 2>&1
}

# True when the text (last argument) does not match the grep pattern
# (earlier arguments: options and pattern).
lacks() { ! grep -q "${@:1:$#-1}" <<<"${!#}"; }

# The EHLO reply lines posttls-finger saw before STARTTLS.
ehlo_plain() { sed -n '/> EHLO/,/> STARTTLS/p; /> STARTTLS/q' <<<"$1"; }
# The EHLO reply lines posttls-finger saw after the TLS handshake.
ehlo_tls() { sed -n '/Verified TLS connection/,$p' <<<"$1"; }

for port in 25 587 2525; do
  out=$(finger "$port" || true)
  check "$port: verified STARTTLS (posttls-finger -l secure)" \
    grep -q "Verified TLS connection established to .*:$port:" <<<"$out"
  check "$port: STARTTLS advertised" grep -q '250.STARTTLS' <<<"$(ehlo_plain "$out")"
  check "$port: no AUTH before TLS" lacks '250.AUTH' "$(ehlo_plain "$out")"
  if [ "$port" = 25 ]; then
    check "$port: no AUTH after TLS either" lacks '250.AUTH' "$(ehlo_tls "$out")"
  else
    check "$port: AUTH PLAIN LOGIN CRAM-MD5 after TLS" \
      grep -qE '250.AUTH PLAIN LOGIN CRAM-MD5$' <<<"$(ehlo_tls "$out")"
  fi
done

out=$(timeout 20 openssl s_client -connect "$SP_POSTFIX_ADDR:465" \
  -servername "$SP_MAIL_NAME" -verify_hostname "$SP_MAIL_NAME" \
  -CAfile "$SP_CA_FILE" -verify_return_error -ign_eof -crlf \
  <<<QUIT 2>&1 || true)
check "465: verified implicit TLS handshake (openssl s_client)" \
  grep -q 'Verify return code: 0 (ok)' <<<"$out"
check "465: 220 banner inside TLS" grep -q "^220 $SP_MAIL_NAME ESMTP" <<<"$out"

# Plaintext on 465 gets no banner: the connection is accepted, then the
# server waits for a TLS ClientHello (the read times out: exit 124).
rc=0
# shellcheck disable=SC2016  # $1 expands in the inner shell
banner=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/465" || exit 2; head -c 3 <&3' _ "$SP_POSTFIX_ADDR") || rc=$?
check "465: connection accepted, no plaintext banner" test "$rc" = 124 -a -z "$banner"

# SASL and the "encrypt" level, with a stdlib SMTP client; the password is
# read from its file inside the client, never passed on argv.
check "587/2525/465: SASL login and 530 before STARTTLS (smtplib)" python3 - <<'PY'
import os, smtplib, ssl, sys
ctx = ssl.create_default_context(cafile=os.environ["SP_CA_FILE"])
ctx.check_hostname = True
addr = os.environ["SP_POSTFIX_ADDR"]  # the cert has an IP SAN for it
user = os.environ["SP_SASL_USER"]
with open(os.environ["SP_SASL_PASSWORD_FILE"]) as f:
    password = f.read().strip()
ok = True
for port in (587, 2525):
    s = smtplib.SMTP(addr, port, timeout=20)
    code = s.mail("probe@smtp-probe.test")[0]
    if code != 530:
        print(f"{port}: MAIL before STARTTLS got {code}, want 530")
        ok = False
    s.quit()
for mech in ("PLAIN", "LOGIN", "CRAM-MD5"):
    for port in (587, 2525, 465):
        if port == 465:
            s = smtplib.SMTP_SSL(addr, port, context=ctx, timeout=20)
        else:
            s = smtplib.SMTP(addr, port, timeout=20)
            s.starttls(context=ctx)
        s.ehlo()
        s.user, s.password = user, password
        auth = getattr(s, "auth_" + mech.lower().replace("-", "_"))
        code = s.auth(mech, auth)[0]
        if code != 235:
            print(f"{port} {mech}: AUTH got {code}, want 235")
            ok = False
        s.quit()
sys.exit(0 if ok else 1)
PY

# The PROXY and client-certificate listeners, with a stdlib client (the
# headers carry the socket's real addresses).
check "10587: PROXY v1/v2 header -> greeting, none -> 421 4.3.0 after ~2 s; 10588/10589 client certificate (python)" python3 - <<'PY'
import os, smtplib, socket, ssl, struct, sys, time
addr = os.environ["SP_POSTFIX_ADDR"]
certs = os.environ["SP_CERT_DIR"]
ok = True
def fail(msg):
    global ok
    print(msg)
    ok = False
def first_line(version):
    s = socket.create_connection((addr, 10587), timeout=10)
    (sa, sp), (da, dp) = s.getsockname(), s.getpeername()
    if version == 1:
        s.sendall(f"PROXY TCP4 {sa} {da} {sp} {dp}\r\n".encode())
    elif version == 2:
        body = socket.inet_aton(sa) + socket.inet_aton(da) + struct.pack("!HH", sp, dp)
        s.sendall(b"\r\n\r\n\x00\r\nQUIT\n\x21\x11" + struct.pack("!H", len(body)) + body)
    t0 = time.monotonic()
    line = s.makefile("rb").readline().decode(errors="replace").rstrip()
    s.close()
    return line, time.monotonic() - t0
for v in (1, 2):
    line, _ = first_line(v)
    if not line.startswith("220 "):
        fail(f"10587 with a v{v} header: {line!r}, want a 220 greeting")
line, took = first_line(0)
if not line.startswith("421 4.3.0 ") or not 1.5 <= took <= 6:
    fail(f"10587 without a header: {line!r} after {took:.1f}s, want 421 4.3.0 after ~2s")
def ehlo_after_tls(port, with_cert):
    ctx = ssl.create_default_context(cafile=os.environ["SP_CA_FILE"])
    if with_cert:
        ctx.load_cert_chain(f"{certs}/client.pem", f"{certs}/client.key")
    s = smtplib.SMTP(addr, port, timeout=20)
    s.starttls(context=ctx)
    try:
        code, msg = s.ehlo()
    except smtplib.SMTPServerDisconnected:
        return 0, b""
    finally:
        s.close()
    return code, msg
for port, cert, want in ((10588, True, 250), (10588, False, 250), (10589, True, 250), (10589, False, 421)):
    code, msg = ehlo_after_tls(port, cert)
    if code != want or (want == 421 and b"4.7.1" not in msg):
        fail(f"{port} {'with' if cert else 'without'} a client certificate: EHLO after TLS got {code} {msg!r}, want {want}")
sys.exit(0 if ok else 1)
PY
log="${SP_POSTFIX_CONFIG%/postfix}/postfix.log"
sleep 0.5 # postlogd writes a moment later
check "postfix.log: 10588/10589 verified the client certificate (Trusted TLS)" \
  grep -qE 'postfix/ccert-(ask|req)/smtpd\[[0-9]+\]: Trusted TLS connection established' "$log"

dns_host=${SP_DNS_SERVER%:*}
dns_port=${SP_DNS_SERVER##*:}
# Ask the test resolver; prints the answer section or the status word.
ask() { dig +time=2 +tries=1 -p "$dns_port" "@$dns_host" "$@" 2>&1; }
check "dns: $SP_MAIL_NAME A $SP_POSTFIX_ADDR" \
  test "$(ask +short "$SP_MAIL_NAME" A)" = "$SP_POSTFIX_ADDR"
check "dns: nope.smtp-probe.test NXDOMAIN" \
  grep -q 'status: NXDOMAIN' <<<"$(ask nope.smtp-probe.test A)"
check "dns: names outside the test zone are not forwarded (REFUSED)" \
  grep -q 'status: REFUSED' <<<"$(ask example.com A)"

# The instance's own log: no fatal errors, no configuration warnings.
check "postfix.log: no fatal/panic" lacks -E ': (fatal|panic):' "$(cat "$log")"
check "postfix.log: no configuration warnings" \
  lacks -E 'warning: .*(main\.cf|master\.cf|unused parameter|deprecated)' "$(cat "$log")"

if [ "$fails" -ne 0 ]; then
  echo "$fails check(s) failed"
  exit 1
fi
echo "mail environment smoke test: all checks passed"
