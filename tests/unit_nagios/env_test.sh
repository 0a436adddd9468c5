#!/bin/bash
# env_test.sh PLUGIN ENV_SH - check_smtp_ports against the shared private
# Postfix (tests/env, fixture mailenv): every port by name through the test
# resolver, TLS verification outcomes, certificate days, thresholds and the
# verbose levels. Talks only to 127.0.10.x.
set -u
PLUGIN=$1
ENV_SH=$2
fails=0
passes=0

if [ ! -r "$ENV_SH" ]; then
  echo "FAIL: $ENV_SH missing: is the mailenv fixture (env.setup) up?"
  exit 1
fi
# shellcheck disable=SC1090
. "$ENV_SH"
H=$SP_MAIL_NAME
A=$SP_POSTFIX_ADDR
COMMON=(--dns-server "$SP_DNS_SERVER" --cafile "$SP_CA_FILE" -t 20)
# A private directory for the wrong-password file, removed at exit.
wrongdir=$(mktemp -d /tmp/sp-nagios-env.XXXXXX)
trap 'rm -rf "$wrongdir"' EXIT

# check NAME WANT_RC REGEX -- ARGS...: the first line must match REGEX.
check() {
  local name=$1 want_rc=$2 regex=$3
  shift 4
  local out rc first
  out=$(timeout 60 "$PLUGIN" "$@")
  rc=$?
  first=${out%%$'\n'*}
  if [ "$rc" -eq "$want_rc" ] && [[ $first =~ $regex ]]; then
    passes=$((passes + 1))
    echo "ok: $name"
  else
    fails=$((fails + 1))
    echo "FAIL: $name: rc=$rc (want $want_rc), output:"
    printf '%s\n' "$out"
  fi
  LAST_OUT=$out
}

# expect NAME PATTERN: the last output contains PATTERN (glob).
expect() {
  if [[ $LAST_OUT == *$2* ]]; then
    passes=$((passes + 1))
  else
    fails=$((fails + 1))
    echo "FAIL: $1: output lacks '$2'"
  fi
}

check "all four ports by name" 0 "^SMTP OK - " -- -H "$H" -p 25,465,587,2525 "${COMMON[@]}"
for p in 25 465 587 2525; do expect "port $p ok" "$p ok "; done
expect "starttls handshake perfdata" "'587_tls_handshake'="
expect "implicit handshake perfdata" "'465_tls_handshake'="
expect "cert days perfdata" "'465_cert_days'="
expect "dns perfdata" "'587_dns'="

# The recommendation against the real Postfix (issue 15): every port works,
# only 465 works, nothing works (the TLS mode is wrong on the only port).
check "recommend: all four work" 0 "; recommend: 587 starttls \\| " -- -H "$H" -p 25,465,587,2525 -v "${COMMON[@]}"
expect "recommend: the sentence" "recommendation: use 587 starttls (works); 465 implicit TLS also works"
check "recommend: only 465 probed" 0 "^SMTP OK - 465 ok [0-9.]+s; recommend: 465 implicit \\| " -- -H "$H" -p 465 -v "${COMMON[@]}"
expect "recommend: 465 sentence" "recommendation: use 465 implicit TLS (works)"
check "recommend: only 465 works" 2 "; recommend: 465 implicit \\| " -- -H "$H" -p 587,465 --tls implicit -v "${COMMON[@]}"
expect "recommend: 587 named" "use 465 implicit TLS (works) (587: tls_mode_mismatch)"
check "recommend: nothing works" 2 "^SMTP CRITICAL - 587 tls_mode_mismatch: .*; recommend: none \\| " -- -H "$H" -p 587 --tls implicit -v "${COMMON[@]}"
expect "recommend: what to check first" "recommendation: no port works for an app: check the pairing of port and TLS mode first (587 tls_mode_mismatch)"

check "default ports 587,465" 0 "^SMTP OK - 587 ok [0-9.]+s; 465 ok [0-9.]+s; recommend: 587 starttls \| " -- -H "$H" "${COMMON[@]}"

check "system trust store does not know the test CA" 2 "^SMTP CRITICAL - 465 cert_untrusted" -- -H "$A" -p 465 -t 20
check "--no-verify" 0 "^SMTP OK - 465 ok" -- -H "$A" -p 465 --no-verify -t 20
check "SNI name not in the certificate" 2 "^SMTP CRITICAL - 587 cert_hostname_mismatch" -- -H "$A" -p 587 --sni other.example "${COMMON[@]}"
check "STARTTLS asked on the implicit port" 2 "^SMTP CRITICAL - 465 tls_mode_mismatch: " -- -H "$H" -p 465 --tls starttls "${COMMON[@]}"
check "implicit TLS asked on the submission port" 2 "^SMTP CRITICAL - 587 tls_mode_mismatch: " -- -H "$H" -p 587 --tls implicit "${COMMON[@]}"

check "cert days warning" 1 "^SMTP WARNING - 587 cert_expiring" -- -H "$H" -p 587 -D 36500,0 "${COMMON[@]}"
expect "cert days thresholds echoed" ";36500:;0:"
check "cert days critical" 2 "^SMTP CRITICAL - 587 cert_expiring" -- -H "$H" -p 587 --cert-days 36500,36000 "${COMMON[@]}"

check "response time warning" 1 "^SMTP WARNING - 587 ok, response time [0-9.]+s > 0; recommend: 587 starttls \| " -- -H "$H" -p 587 -w 0 "${COMMON[@]}"
expect "threshold echoed" "s;0;;0"
check "response time critical (inside range)" 2 "^SMTP CRITICAL - 587 ok, response time" -- -H "$H" -p 587 -w 0 -c @0:3600 "${COMMON[@]}"

check "-v long output" 0 "^SMTP OK - " -- -H "$H" -p 587 -v "${COMMON[@]}"
expect "block header" $'\n'"587 submission: OK ok"
check "-vvv dialogue" 0 "^SMTP OK - " -- -H "$H" -p 587 -vvv "${COMMON[@]}"
expect "dialogue shown" "dialogue:"
expect "EHLO in dialogue" "EHLO"

check "--all-addresses" 0 "^SMTP OK - 587@$A ok" -- -H "$H" -p 587 --all-addresses -4 "${COMMON[@]}"
expect "address in label" "'587_${A}_total'="

# ---- AUTH against the real Postfix (Cyrus sasldb: PLAIN LOGIN CRAM-MD5) ----
# Every mechanism Postfix offers works on every port that offers AUTH.
AUTH=(--auth-user "$SP_SASL_USER" --auth-password-file "$SP_SASL_PASSWORD_FILE")
AUTH_TLS=(--cafile "$SP_CA_FILE" --sni "$H" -t 20)
auth_outputs=""
for p in 587 465 2525; do
  for m in PLAIN LOGIN CRAM-MD5; do
    check "AUTH $m on $p" 0 "^SMTP OK - $p ok [0-9.]+s; recommend: $p [a-z]+ \\| " -- -H "$A" -p "$p" "${AUTH[@]}" --auth-mech "$m" -vvv "${AUTH_TLS[@]}"
    expect "AUTH $m on $p: auth perfdata" "'${p}_auth'="
    expect "AUTH $m on $p: mechanism used" "AUTH: $m accepted"
    auth_outputs+=$LAST_OUT
  done
done

# A wrong password (a fresh random file, mode 600): auth_failed.
(umask 077 && printf 'wrong-%s\n' "$(head -c 9 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$wrongdir/wrong")
check "wrong password on 587" 2 "^SMTP CRITICAL - 587 auth_failed: " -- -H "$A" -p 587 --auth-user "$SP_SASL_USER" --auth-password-file "$wrongdir/wrong" -vvv "${AUTH_TLS[@]}"
auth_outputs+=$LAST_OUT
check "wrong password on 465" 2 "^SMTP CRITICAL - 465 auth_failed: " -- -H "$A" -p 465 --auth-user "$SP_SASL_USER" --auth-password-file "$wrongdir/wrong" "${AUTH_TLS[@]}"

# Port 25 (relay) offers no AUTH: the core says auth_unavailable, which the
# relay role rates WARNING.
check "AUTH asked on 25" 1 "^SMTP WARNING - 25 auth_unavailable: " -- -H "$A" -p 25 "${AUTH[@]}" "${AUTH_TLS[@]}"

# The password appears in none of the -vvv outputs above, which do show
# the AUTH exchange.
secret=$(head -n 1 "$SP_SASL_PASSWORD_FILE")
wrong_secret=$(head -n 1 "$wrongdir/wrong")
if [ -n "$secret" ] && [[ $auth_outputs != *"$secret"* ]] && [[ $auth_outputs != *"$wrong_secret"* ]] &&
  [[ $auth_outputs == *"C: AUTH "* ]]; then
  passes=$((passes + 1))
  echo "ok: no password in the -vvv AUTH outputs"
else
  fails=$((fails + 1))
  echo "FAIL: a password shows in the -vvv output (or no AUTH exchange was shown)"
fi

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
