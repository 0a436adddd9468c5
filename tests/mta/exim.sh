#!/usr/bin/env bash
# A private, real Exim 4.96 (Debian 12's exim4-daemon-light, GnuTLS) probed
# by check_smtp_ports.
#
# usage: exim.sh CHECK_SMTP_PORTS MAKE_CERTS_SH all|slow_greeting
#
# exim4-daemon-light conflicts with postfix, so it is never installed:
# scripts/install-deps.sh fetches its .deb (tests/mta/fetch-exim.sh) into
# /var/cache/smtp-probe (SP_EXIM_DEB overrides), and this script unpacks it
# into its own temporary directory (dpkg-deb -x). The binary looks up its
# compiled-in user Debian-exim before reading any configuration, and only
# the exim4-base package would create that user, so the daemon runs in a
# private mount namespace (unshare -m) where copies of /etc/passwd and
# /etc/group with a Debian-exim entry (a free uid) are bind-mounted over the
# originals; the host's /etc is never written. Its configuration (-C; Exim
# trusts -C from root), spool, log and pid file are all in the temporary
# directory; it listens only on loopback, does no DNS (no host_lookup, IP
# literal listeners, explicit primary_hostname) and delivers nothing
# (queue_only, no queue runner).
#
# all: one daemon, two addresses:
#   127.0.70.25  the good server: 25 (STARTTLS offered), 465 (implicit TLS,
#                tls_on_connect_ports), 587 and 2525 (STARTTLS); AUTH PLAIN
#                and LOGIN (plaintext authenticators, password from a mode
#                600 file) advertised only inside TLS; certificate
#                mail.smtp-probe.test from the test CA. Every port ok with
#                every phase in the perfdata; AUTH, MAIL FROM, RCPT TO and a
#                test message on 465/587/2525; LOGIN; a wrong password
#                -> auth_failed.
#   127.0.70.27  misconfigured: 587 without STARTTLS -> starttls_unavailable;
#                465 with an expired certificate -> cert_expired; 2525 with
#                AUTH advertised before TLS -> auth_before_tls.
# slow_greeting: 127.0.70.28:587, a connect ACL delays the greeting 4 s; with
#   -t 10 (banner wait 2 s, then an implicit-TLS trial beside the first
#   connection) the check must say ok, with connect + banner >= 4 s (the
#   banner phase alone >= 3.9 s, see below).
set -uo pipefail
CHECK=${1:?usage: exim.sh CHECK MAKE_CERTS all|slow_greeting}
MAKE_CERTS=${2:?}
CASES=${3:-all}
DEB=${SP_EXIM_DEB:-/var/cache/smtp-probe/exim4-daemon-light.deb}
MTA_NAME=exim
# shellcheck source=tests/mta/lib.sh
. "$(dirname "$0")/lib.sh"

NAME=mail.smtp-probe.test
USER_ID=probe@smtp-probe.test
GOOD=127.0.70.25
BAD=127.0.70.27
SLOW=127.0.70.28

[ -x "$CHECK" ] || fail "no check_smtp_ports at $CHECK"
[ "$(id -u)" -eq 0 ] || skip "must run as root (Exim's daemon, mount namespace)"
[ -r "$DEB" ] || fail "no $DEB: run scripts/install-deps.sh (it calls tests/mta/fetch-exim.sh)"
command -v unshare >/dev/null || fail "unshare (util-linux) is not installed"
unshare -m --propagation private true 2>/dev/null ||
  skip "this machine cannot make a mount namespace (unshare -m)"

mta_init
mta_certs "$MAKE_CERTS"

# The Exim binary, unpacked from the cached package.
dpkg-deb -x "$DEB" "$tmp/root" || fail "dpkg-deb -x $DEB failed"
EXIM=$tmp/root/usr/sbin/exim4
[ -x "$EXIM" ] || fail "$DEB has no usr/sbin/exim4"
if ldd "$EXIM" | grep 'not found'; then
  fail "Exim's shared libraries are missing: run scripts/install-deps.sh"
fi

# A uid/gid that names nobody on this machine becomes Debian-exim inside
# the namespace (Exim's receiving processes run as it).
EXIM_UID=
for u in $(seq 64900 64999); do
  if ! getent passwd "$u" >/dev/null && ! getent group "$u" >/dev/null; then
    EXIM_UID=$u
    break
  fi
done
[ -n "$EXIM_UID" ] || fail "no free uid in 64900-64999 for Debian-exim"
mkdir -p "$tmp/ns"
cp /etc/passwd "$tmp/ns/passwd"
cp /etc/group "$tmp/ns/group"
echo "Debian-exim:x:$EXIM_UID:$EXIM_UID:smtp-probe test Exim:$tmp/spool:/usr/sbin/nologin" >>"$tmp/ns/passwd"
echo "Debian-exim:x:$EXIM_UID:" >>"$tmp/ns/group"
chmod 644 "$tmp/ns/passwd" "$tmp/ns/group"

# Files the Exim user reads or writes: spool, log, TLS keys, the password.
mkdir -p "$tmp/spool" "$tmp/log"
chown "$EXIM_UID:$EXIM_UID" "$tmp/spool" "$tmp/log"
chmod 750 "$tmp/spool" "$tmp/log"
chgrp "$EXIM_UID" "$tmp"/certs/*.key
chmod 640 "$tmp"/certs/*.key
PW=$tmp/password
WRONG=$tmp/wrong-password
mta_password "$PW"
mta_password "$WRONG"
chown "$EXIM_UID" "$PW"
MTA_LOGS+=("$tmp/exim.out" "$tmp/log/mainlog" "$tmp/log/paniclog" "$tmp/log/rejectlog")

case $CASES in
all) listeners="$GOOD.25 ; $GOOD.465 ; $GOOD.587 ; $GOOD.2525 ; $BAD.465 ; $BAD.587 ; $BAD.2525" ;;
slow_greeting) listeners="$SLOW.587" ;;
*) fail "unknown case set '$CASES' (all, slow_greeting)" ;;
esac

# The whole configuration; per-listener behaviour keys on
# $received_ip_address.$received_port (e.g. 127.0.70.27.587).
cat >"$tmp/exim.conf" <<EOF
# Private Exim of smtp-probe's tests/mta/exim.sh (nothing outside $tmp).
keep_environment =
primary_hostname = $NAME
exim_path = $EXIM
spool_directory = $tmp/spool
log_file_path = $tmp/log/%slog
pid_file_path = $tmp/exim.pid
local_interfaces = <; $listeners
tls_on_connect_ports = 465
# Misconfigured on purpose: no STARTTLS on $BAD:587.
tls_advertise_hosts = \${if eq{\$received_ip_address.\$received_port}{$BAD.587}{}{*}}
# Misconfigured on purpose: an expired certificate on $BAD:465.
tls_certificate = \${if eq{\$received_ip_address.\$received_port}{$BAD.465}\\
  {$tmp/certs/expired-chain.pem}{$tmp/certs/server-chain.pem}}
tls_privatekey = \${if eq{\$received_ip_address.\$received_port}{$BAD.465}\\
  {$tmp/certs/expired.key}{$tmp/certs/server.key}}
# AUTH only inside TLS, except (misconfigured on purpose) on $BAD:2525.
auth_advertise_hosts = \${if or{{!eq{\$tls_in_cipher}{}}\\
  {eq{\$received_ip_address.\$received_port}{$BAD.2525}}}{*}{}}
host_lookup =
rfc1413_hosts =
queue_only = true
acl_smtp_connect = acl_check_connect
acl_smtp_rcpt = acl_check_rcpt

begin acl

acl_check_connect:
  # The slow greeting: a server busy with DNS, say.
  accept condition = \${if eq{\$received_ip_address}{$SLOW}}
         delay = 4s
  accept

acl_check_rcpt:
  accept authenticated = *
  accept domains = smtp-probe.test
  deny   message = relay not permitted

begin authenticators

plain:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = \${if and{{eq{\$auth2}{$USER_ID}}{eq{\$auth3}{\${readfile{$PW}{}}}}}}
  server_set_id = \$auth2

login:
  driver = plaintext
  public_name = LOGIN
  server_prompts = <| Username: | Password:
  server_condition = \${if and{{eq{\$auth1}{$USER_ID}}{eq{\$auth2}{\${readfile{$PW}{}}}}}}
  server_set_id = \$auth1
EOF
chmod 600 "$tmp/exim.conf"

# Run Exim ($@) inside the private mount namespace.
# A running nscd would answer for the host's passwd, without Debian-exim:
# its socket directory is hidden behind an empty one.
mkdir -p "$tmp/ns/empty"
in_ns() {
  # shellcheck disable=SC2016 # expanded by that sh, not here
  unshare -m --propagation private sh -c \
    'mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group &&
     { [ ! -d /run/nscd ] || mount --bind "$3" /run/nscd; } && shift 3 && exec "$@"' \
    sh "$tmp/ns/passwd" "$tmp/ns/group" "$tmp/ns/empty" "$EXIM" -C "$tmp/exim.conf" "$@"
}

# Stop the daemon and any connection process it left (found by binary path).
exim_stop() {
  local p i
  if [ -n "${exim_pid:-}" ]; then
    kill -TERM "$exim_pid" 2>/dev/null
    for ((i = 0; i < 50; i++)); do
      kill -0 "$exim_pid" 2>/dev/null || break
      sleep 0.1
    done
  fi
  for p in /proc/[0-9]*; do
    if [ "$(readlink "$p/exe" 2>/dev/null)" = "$EXIM" ]; then
      kill -KILL "${p#/proc/}" 2>/dev/null
    fi
  done
}

in_ns -bV >"$tmp/exim-bV.out" 2>&1 || {
  cat "$tmp/exim-bV.out" >&2
  fail "exim -bV (configuration check) failed"
}
head -n 1 "$tmp/exim-bV.out"
in_ns -bdf >"$tmp/exim.out" 2>&1 &
exim_pid=$!
MTA_STOP+=(exim_stop)

case $CASES in
all)
  mta_wait_ready 30 "$GOOD:25" "$GOOD:465:tls" "$GOOD:587" "$GOOD:2525" \
    "$BAD:465:tls" "$BAD:587" "$BAD:2525"
  ;;
slow_greeting)
  # It greets only after 4 s: ready means accepting.
  mta_wait_ready 30 "$SLOW:587:accept"
  ;;
esac
kill -0 "$exim_pid" 2>/dev/null || fail "the Exim daemon exited"
grep 'daemon started' "$tmp/log/mainlog" || true

# --ehlo: never this machine's name (the tests must not depend on it).
common=(--cafile "$CA" --sni "$NAME" --ehlo client.smtp-probe.test -v)
auth=(--auth-user "$USER_ID" --auth-password-file "$PW")
starttls_phases=(connect banner ehlo starttls tls_handshake ehlo_tls)

case $CASES in
all)
  echo "=== $GOOD: every port ok, every phase ==="
  expect_check 0 "25 ok" -- -H "$GOOD" -p 25 "${common[@]}"
  expect_phases 25 "${starttls_phases[@]}" total
  expect_output '^25 relay: OK ok$'
  expect_output 'capabilities before TLS: .*STARTTLS'

  expect_good_submission_ports 587 587

  echo "=== $BAD: misconfigured ports ==="
  expect_check 2 "587 starttls_unavailable" "465 cert_expired" "2525 auth_before_tls" -- \
    -H "$BAD" -p 465,587,2525 "${common[@]}"
  # The hint names Exim's own setting: its greeting says it is Exim.
  expect_check 2 "2525 auth_before_tls" -- -H "$BAD" -p 2525 "${common[@]}" -v
  expect_output 'hint: Exim offers AUTH before TLS: set auth_advertise_hosts'
  ;;
slow_greeting)
  echo "=== $SLOW:587: greeting after 4 s, -t 10 ==="
  expect_check 0 "587 ok" -- -H "$SLOW" -p 587 "${common[@]}" "${auth[@]}" -t 10
  expect_phases 587 "${starttls_phases[@]}" auth total
  # Exim's 4 s start at its accept(), after the client's connect began:
  # connect + banner >= 4 s always holds. The banner phase alone starts when
  # the engine sees the connection complete, which a loaded machine can
  # notice some milliseconds late, so it gets 0.1 s of slack.
  expect_phase_min 587 connect+banner 4
  expect_phase_min 587 banner 3.9
  ;;
esac

kill -0 "$exim_pid" 2>/dev/null || fail "the Exim daemon died during the test"
if [ -s "$tmp/log/paniclog" ]; then
  cat "$tmp/log/paniclog" >&2
  fail "Exim wrote to its panic log"
fi
echo "PASS: exim $CASES"
