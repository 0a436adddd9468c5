#!/usr/bin/env bash
# proxy_ccert.sh - the PROXY protocol and TLS client certificate options of
# the three adapters (the Nagios check, the exporter, the collectd plugin in
# a real collectd) against the shared real Postfix (fixture mailenv, see
# tests/env/mailenv.sh for the listeners):
#
#   a. 10587 requires a PROXY header (smtpd_upstream_proxy_protocol=haproxy,
#      smtpd_upstream_proxy_timeout=2s), else 587-like:
#        v1 header (and AUTH) -> ok; v2 header -> ok;
#        no header -> $WANT_NO_PROXY with a hint naming the PROXY protocol
#        (Postfix waits 2 s, answers "421 4.3.0 ... Server local error"
#        instead of its greeting and closes; its log: "haproxy read:
#        timeout error")
#   b. 587 (no PROXY expected) with a v1 header -> protocol_error, the detail
#      or hint naming the PROXY protocol (Postfix greets, then answers the
#      header line "500 5.5.2 Error: command not recognized")
#   c. 10588 asks for a client certificate (smtpd_tls_ask_ccert=yes):
#        with one (and AUTH) -> ok, "client certificate: requested by the
#        server and sent", Postfix logs "Trusted TLS connection" (verified
#        against the test CA: the certificate really went over);
#        without -> ok, "client certificate: requested by the server, none
#        sent", Postfix logs "Anonymous TLS connection";
#      587 (never asks) with one -> ok and no "client certificate:" line
#   d. 10589 requires one (smtpd_tls_req_ccert=yes):
#        without -> deferred: the handshake succeeds, then EHLO gets "421
#        4.7.1 mail.smtp-probe.test Error: No client certificate presented";
#        the output quotes 4.7.1, the hint names the client certificate;
#        with one -> ok, Postfix logs "Trusted TLS connection"
#
# The check runs every case (-v long output checked), the exporter every
# case (debug page: the client certificate lines), collectd every case but
# the header-less one (its 2 s wait does not fit collectd's Timeout 0.9).
# Every code must be the expected one and the states must agree. Neither
# the SASL password nor the client key shows in any output. An adapter
# without the options fails the test, naming what is missing. The exporter
# listens on 127.0.70.1:9872.
#
# usage: proxy_ccert.sh CHECK_SMTP_PORTS SMTP_EXPORTER PLUGIN_SO ENV_SH
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/collectd/collectd-lib.sh
. "$HERE/../collectd/collectd-lib.sh"
# shellcheck source=tests/crosscheck/lib.sh
. "$HERE/lib.sh"

xc_postfix_args "$@"
CERT=$SP_CERT_DIR/client.pem
KEY=$SP_CERT_DIR/client.key
PFLOG=${SP_POSTFIX_CONFIG%/postfix}/postfix.log
LISTEN=127.0.70.1:9872
{ [ -r "$CERT" ] && [ -r "$KEY" ]; } || spc_fail "no client certificate $CERT / $KEY (tests/env/make-certs.sh)"
[ -r "$PFLOG" ] || spc_fail "no Postfix log $PFLOG"
for p in 10587 10588 10589; do
  (exec 3<>"/dev/tcp/$ADDR/$p") 2>/dev/null ||
    spc_fail "nothing listens on $ADDR:$p: the mail environment predates tests/env/mailenv.sh's PROXY/client-certificate listeners (restart env.setup)"
done

# The code for a probe without a header to the PROXY-only port. Postfix 3.7
# does not just close: after smtpd_upstream_proxy_timeout it sends
# "421 4.3.0 <name> Server local error" in place of the greeting: deferred,
# with a hint that names the PROXY protocol as the likely cause.
WANT_NO_PROXY=deferred

dir=$(mktemp -d /tmp/sp-crosscheck-pc.XXXXXX)
trap xc_cleanup EXIT

password=$(head -n 1 "$PW")
# A line of the key's base64 body, and the PEM label: neither may show.
keyline=$(sed -n 2p "$KEY")
[ "${#keyline}" -ge 40 ] || spc_fail "unexpected key file layout in $KEY"

# NAME PORT - EXPECTED-CODE OPTIONS (as in lib.sh; own options here:
# proxy=v1|v2 the PROXY header, ccert the client certificate + key).
ALL_CASES=(
  "a_v1 10587 - ok proxy=v1 auth=$PW"
  "a_v2 10587 - ok proxy=v2"
  "a_none 10587 - $WANT_NO_PROXY -"
  "b_v1 587 - protocol_error proxy=v1"
  "c_cert 10588 - ok ccert auth=$PW"
  "c_nocert 10588 - ok -"
  "c_noask 587 - ok ccert"
  "d_nocert 10589 - deferred -"
  "d_cert 10589 - ok ccert"
)
# What each case's output must show (checked for the check and the exporter):
#   sent / none / noline   the client certificate line (or its absence)
#   proxyhint              the detail or hint names the PROXY protocol
#   ccerthint              the hint names the client certificate; 4.7.1 quoted
declare -A SHOWS=(
  [a_v1]=noline [a_v2]=noline [a_none]="noline proxyhint" [b_v1]="noline proxyhint"
  [c_cert]=sent [c_nocert]=none [c_noask]=noline [d_nocert]="none ccerthint" [d_cert]=sent
)
# What Postfix's log must show for a case (an extended regex after
# "postfix/TAG/smtpd[PID]: "), as "TAG REGEX".
declare -A PFLOG_WANT=(
  [a_none]="proxy warning: haproxy read: timeout error"
  [c_cert]="ccert-ask Trusted TLS connection established from "
  [c_nocert]="ccert-ask Anonymous TLS connection established from "
  [d_cert]="ccert-req Trusted TLS connection established from "
  [d_nocert]="ccert-req NOQUEUE: abort: TLS from [^ ]*: No client certificate presented"
)
# And never, for a case ("TAG REGEX"): a good header is not refused.
declare -A PFLOG_NEVER=(
  [a_v1]="proxy warning: haproxy read"
  [a_v2]="proxy warning: haproxy read"
)
CD_SKIP=" a_none " # not in collectd (see the head)

MISSING=()
HAVE_NAGIOS=1 HAVE_EXPORTER=1 HAVE_COLLECTD=1

# True when a case uses one of the new options.
uses_new() { [[ " $1 " == *" proxy="* || " $1 " == *" ccert "* ]]; }

# Does each adapter know the options? The check's --help, the exporter's
# --config.check, a throwaway collectd's log.
preflight() {
  local help f
  help=$("$check" --help 2>&1 || true)
  for f in --proxy-protocol --client-cert --client-key; do
    grep -q -- "$f" <<<"$help" || {
      MISSING+=("check_smtp_ports: no $f in --help")
      HAVE_NAGIOS=0
    }
  done
  printf 'modules:\n  pre:\n    proxy_protocol: v1\n    client_cert: %s\n    client_key: %s\n' \
    "$CERT" "$KEY" >"$dir/pre.yml"
  if ! "$exporter" --config.check --config.file="$dir/pre.yml" >"$dir/pre.out" 2>&1; then
    MISSING+=("smtp_exporter: proxy_protocol/client_cert/client_key refused: $(tail -n 1 "$dir/pre.out")")
    HAVE_EXPORTER=0
  fi
  mkdir -p "$dir/pre"
  printf '  <Target "pre">\n    Host "%s"\n    Port 10588\n    SNI "%s"\n    CAFile "%s"\n    ProxyProtocol "v1"\n    ClientCert "%s"\n    ClientKey "%s"\n  </Target>\n' \
    "$ADDR" "$TLS_NAME" "$CA" "$CERT" "$KEY" | spc_write_conf "$dir/pre" "$plugin_so" 60 1
  spc_start "$dir/pre"
  sleep 1
  spc_stop "$dir/pre" 10 || true
  if grep -E 'smtp_probe: .*(unknown option|not started|ClientCert|ClientKey|ProxyProtocol)' \
    "$dir/pre/collectd.log" >"$dir/pre.err"; then
    MISSING+=("collectd plugin: $(head -n 1 "$dir/pre.err" | sed 's/^\[[^]]*\] //')")
    HAVE_COLLECTD=0
  fi
}

# Write the exporter modules (cases EXPORTER_CASES), the collectd <Target>
# blocks (COLLECTD_CASES) and the check's arguments (every case).
pc_configure() {
  local c name port want opts nargs o exp cd
  echo "modules:" >"$dir/exporter.yml"
  : >"$dir/collectd-targets"
  for c in "${ALL_CASES[@]}"; do
    read -r name port _ want opts <<<"$c"
    WANT[$name]=$want
    exp=0 cd=0
    [[ " ${EXPORTER_CASES[*]} " == *" $name "* ]] && exp=1
    [[ " ${COLLECTD_CASES[*]} " == *" $name "* ]] && cd=1
    nargs="-H $ADDR -p $port --cafile $CA --sni $TLS_NAME -t 10"
    [ "$exp" = 0 ] || printf '  %s:\n    timeout: 10s\n    server_name: %s\n    ca_file: %s\n' \
      "$name" "$TLS_NAME" "$CA" >>"$dir/exporter.yml"
    [ "$cd" = 0 ] || printf '  <Target "%s">\n    Host "%s"\n    Port %s\n    SNI "%s"\n    CAFile "%s"\n    Timeout 0.9\n' \
      "$name" "$ADDR" "$port" "$TLS_NAME" "$CA" >>"$dir/collectd-targets"
    for o in $opts; do
      case $o in
      -) ;;
      auth=*)
        nargs+=" --auth-user $USER_ID --auth-password-file ${o#auth=}"
        [ "$exp" = 0 ] || printf '    auth_user: %s\n    auth_password_file: %s\n' "$USER_ID" "${o#auth=}" >>"$dir/exporter.yml"
        [ "$cd" = 0 ] || printf '    AuthUser "%s"\n    AuthPasswordFile "%s"\n' "$USER_ID" "${o#auth=}" >>"$dir/collectd-targets"
        ;;
      proxy=*)
        nargs+=" --proxy-protocol ${o#proxy=}"
        [ "$exp" = 0 ] || printf '    proxy_protocol: %s\n' "${o#proxy=}" >>"$dir/exporter.yml"
        [ "$cd" = 0 ] || printf '    ProxyProtocol "%s"\n' "${o#proxy=}" >>"$dir/collectd-targets"
        ;;
      ccert)
        nargs+=" --client-cert $CERT --client-key $KEY"
        [ "$exp" = 0 ] || printf '    client_cert: %s\n    client_key: %s\n' "$CERT" "$KEY" >>"$dir/exporter.yml"
        [ "$cd" = 0 ] || printf '    ClientCert "%s"\n    ClientKey "%s"\n' "$CERT" "$KEY" >>"$dir/collectd-targets"
        ;;
      *) spc_fail "unknown case option $o" ;;
      esac
    done
    [ "$cd" = 0 ] || echo "  </Target>" >>"$dir/collectd-targets"
    NAGIOS_ARGS[$name]=$nargs
  done
}

# The number of lines in Postfix's log.
pflog_lines() { wc -l <"$PFLOG"; }

# Postfix's log from line $1+1 on, into file $2, once it holds the lines
# PFLOG_WANT expects of the cases named after $2 (postlogd writes a moment
# after the session ends), at most 3 s.
pflog_slice() {
  local from=$1 out=$2 tries=30 name tag re ok
  shift 2
  while :; do
    tail -n "+$((from + 1))" "$PFLOG" >"$out"
    ok=1
    for name in "$@"; do
      [ -n "${PFLOG_WANT[$name]:-}" ] || continue
      read -r tag re <<<"${PFLOG_WANT[$name]}"
      grep -qE "postfix/$tag/smtpd\[[0-9]+\]: $re" "$out" || ok=0
    done
    if [ "$ok" = 1 ] || [ "$tries" -le 0 ]; then return 0; fi
    sleep 0.1
    tries=$((tries - 1))
  done
}

# Why a case's Postfix log slice FILE is wrong, or nothing.
pflog_problem() {
  local name=$1 file=$2 tag re
  if [ -n "${PFLOG_WANT[$name]:-}" ]; then
    read -r tag re <<<"${PFLOG_WANT[$name]}"
    grep -qE "postfix/$tag/smtpd\[[0-9]+\]: $re" "$file" || {
      echo "no Postfix log '$tag: $re'"
      return
    }
  fi
  if [ -n "${PFLOG_NEVER[$name]:-}" ]; then
    read -r tag re <<<"${PFLOG_NEVER[$name]}"
    ! grep -qE "postfix/$tag/smtpd\[[0-9]+\]: $re" "$file" || echo "Postfix logged '$tag: $re'"
  fi
}

# Why a case's output FILE lacks what SHOWS says, or nothing. For the check
# (KIND nagios) the PROXY / certificate hints count on the status line and
# the hint lines only (-vvv also prints the dialogue, PROXY header included).
shows_problem() {
  local name=$1 file=$2 kind=$3 s summary why
  summary=$(grep -E '^SMTP |^ *hint:' "$file" || true)
  why=$(shows_problems "$name" "$file" "$kind" "$summary")
  echo "${why%%$'\n'*}"
}

# Every problem shows_problem reports the first of, one a line.
shows_problems() {
  local name=$1 file=$2 kind=$3 summary=$4 s
  for s in ${SHOWS[$name]}; do
    case $s in
    sent) grep -qF 'client certificate: requested by the server and sent' "$file" ||
      echo "no 'client certificate: requested by the server and sent'" ;;
    none) grep -qF 'client certificate: requested by the server, none sent' "$file" ||
      echo "no 'client certificate: requested by the server, none sent'" ;;
    noline) ! grep -qF 'client certificate:' "$file" || echo "a 'client certificate:' line" ;;
    proxyhint)
      [ "$kind" = nagios ] || continue
      grep -qE 'PROXY|proxy.protocol' <<<"$summary" || echo "no PROXY protocol in the detail/hint"
      ;;
    ccerthint)
      [ "$kind" = nagios ] || continue
      grep -qF '4.7.1' <<<"$summary" || echo "4.7.1 not quoted"
      grep -E '^ *hint:' <<<"$summary" | grep -qiE 'client.cert' || echo "no client certificate in the hint"
      ;;
    esac
  done
}

# lib.sh's hook after each adapter's phase: the output checks above.
xc_phase_done() {
  local -n _res=$1
  local c name why
  for c in "${CASES[@]}"; do
    read -r name _ <<<"$c"
    case ${_res[$name]} in \?*) continue ;; esac
    why=
    case $1 in
    GOT_NAGIOS)
      # One case per run of the check: its own slice of Postfix's log.
      pflog_slice "$PF_FROM" "$dir/pflog-nagios-$name" "$name"
      why=$(shows_problem "$name" "$dir/nagios-$name.out" nagios)
      [ -n "$why" ] || why=$(pflog_problem "$name" "$dir/pflog-nagios-$name")
      ;;
    GOT_EXPORTER) why=$(shows_problem "$name" "$dir/exporter-$name.debug" exporter) ;;
    esac
    [ -z "$why" ] || _res["$name"]="?(${_res[$name]}: $why)"
  done
}

# A phase-wide Postfix log check for the exporter / collectd: a certificate
# sent to 10588 and 10589 was verified. Sets _res of c_cert / d_cert. (The
# PFLOG_NEVER checks stay per case, in the check's phase: a phase's log
# holds a_none's "haproxy read: timeout error" too.)
# usage: phase_pflog RESULT_ARRAY LOGFILE
phase_pflog() {
  local -n _r=$1
  local name why
  for name in c_cert d_cert; do
    [ -n "${_r[$name]:-}" ] || continue
    case ${_r[$name]} in \?*) continue ;; esac
    why=$(pflog_problem "$name" "$2")
    [ -z "$why" ] || _r["$name"]="?(${_r[$name]}: $why)"
  done
}

preflight
EXPORTER_CASES=() COLLECTD_CASES=()
for c in "${ALL_CASES[@]}"; do
  read -r name _ _ _ opts <<<"$c"
  if [ "$HAVE_EXPORTER" = 1 ] || ! uses_new "$opts"; then EXPORTER_CASES+=("$name"); fi
  if [[ $CD_SKIP != *" $name "* ]] && { [ "$HAVE_COLLECTD" = 1 ] || ! uses_new "$opts"; }; then
    COLLECTD_CASES+=("$name")
  fi
done
pc_configure

# The check, one case at a time, each with its own slice of Postfix's log.
for c in "${ALL_CASES[@]}"; do
  read -r name _ _ _ opts <<<"$c"
  if [ "$HAVE_NAGIOS" = 0 ] && uses_new "$opts"; then
    GOT_NAGIOS[$name]="?(not wired)"
    continue
  fi
  PF_FROM=$(pflog_lines)
  CASES=("$c")
  start=$SECONDS
  xc_run_nagios "$check"
  printf 'check %-9s %3ss  %s\n' "$name" "$((SECONDS - start))" "$(head -n 1 "$dir/nagios-$name.out" | cut -d'|' -f1)"
done

# For the record (not asserted): a v2 header to 587. Postfix answers its
# signature's lines "500 5.5.2 Error: bad syntax" three times, then the
# "QUIT\n" inside the signature: "221 2.0.0 Bye".
if [ "$HAVE_NAGIOS" = 1 ]; then
  # shellcheck disable=SC2086 # no spaces inside the words
  timeout 30 "$check" ${NAGIOS_ARGS[b_v1]/--proxy-protocol v1/--proxy-protocol v2} -v \
    >"$dir/nagios-info_b_v2.out" 2>&1 || true
  echo "info: 587 with a v2 header: $(head -n 1 "$dir/nagios-info_b_v2.out" | cut -d'|' -f1)"
fi

# The exporter, then collectd, on their case lists, each with the Postfix
# log of its whole phase.
if [ "${#EXPORTER_CASES[@]}" -gt 0 ]; then
  CASES=()
  for c in "${ALL_CASES[@]}"; do
    read -r name _ <<<"$c"
    [[ " ${EXPORTER_CASES[*]} " == *" $name "* ]] && CASES+=("$c")
  done
  from=$(pflog_lines)
  xc_run_exporter "$exporter" "$LISTEN"
  pflog_slice "$from" "$dir/pflog-exporter" "${EXPORTER_CASES[@]}"
  phase_pflog GOT_EXPORTER "$dir/pflog-exporter"
fi
if [ "${#COLLECTD_CASES[@]}" -gt 0 ]; then
  CASES=()
  for c in "${ALL_CASES[@]}"; do
    read -r name _ <<<"$c"
    [[ " ${COLLECTD_CASES[*]} " == *" $name "* ]] && CASES+=("$c")
  done
  from=$(pflog_lines)
  xc_run_collectd "$plugin_so"
  pflog_slice "$from" "$dir/pflog-collectd" "${COLLECTD_CASES[@]}"
  phase_pflog GOT_COLLECTD "$dir/pflog-collectd"
fi

# The table: every adapter that ran a case has the expected code, the
# states agree.
BAD=0
printf '%-9s %-5s %-17s %-30s %-30s %-30s\n' case port expected nagios exporter collectd
for c in "${ALL_CASES[@]}"; do
  read -r name port _ w opts <<<"$c"
  n=${GOT_NAGIOS[$name]:-?(not run)}
  e=${GOT_EXPORTER[$name]:-}
  d=${GOT_COLLECTD[$name]:-}
  if [ -z "$e" ]; then
    if uses_new "$opts" && [ "$HAVE_EXPORTER" = 0 ]; then e="?(not wired)"; else e="?(not run)"; fi
  fi
  if [ -z "$d" ]; then
    if [[ $CD_SKIP == *" $name "* ]]; then
      d="-"
    elif uses_new "$opts" && [ "$HAVE_COLLECTD" = 0 ]; then d="?(not wired)"; else d="?(not run)"; fi
  fi
  mark=""
  if [ "${n%% *}" != "$w" ] || [ "${e%% *}" != "$w" ] || { [ "$d" != - ] && [ "${d%% *}" != "$w" ]; }; then
    mark="  <-- CODE MISMATCH"
    BAD=$((BAD + 1))
  elif [ "${n#* }" != "${e#* }" ] || { [ "$d" != - ] && ! xc_severity_fits "${d#* }" "${n#* }"; }; then
    mark="  <-- STATE MISMATCH"
    BAD=$((BAD + 1))
  fi
  printf '%-9s %-5s %-17s %-30s %-30s %-30s%s\n' "$name" "$port" "$w" "$n" "$e" "$d" "$mark"
done

CASES=()
for c in "${ALL_CASES[@]}"; do
  read -r name _ <<<"$c"
  [[ " ${EXPORTER_CASES[*]} " == *" $name "* ]] && CASES+=("$c")
done
xc_no_secrets "$password" "$keyline" "PRIVATE KEY"
BAD=$((BAD + XC_BAD))

if [ "${#MISSING[@]}" -gt 0 ]; then
  spc_say "the adapters do not have the options yet (expected until they are wired):"
  for m in "${MISSING[@]}"; do spc_say "  $m"; done
  spc_fail "PROXY protocol / client certificate options not wired in every adapter; $BAD problem(s)"
fi
[ "$BAD" -eq 0 ] || spc_fail "$BAD problem(s)"
echo "PASS: ${#ALL_CASES[@]} PROXY / client certificate cases against Postfix, three adapters agree, no secret in any output"
