# shellcheck shell=bash
# shellcheck disable=SC2154 # dir, ADDR, TLS_NAME, CA, USER_ID, CASES: the caller's
# lib.sh - run the three adapters (the Nagios check, the exporter, a real
# collectd with smtp_probe.so) over one list of cases and compare the
# diagnosis code and state each reports. Sourced by tests/crosscheck/*.sh
# after tests/collectd/collectd-lib.sh (its spc_* helpers run collectd).
#
# The caller sets:
#   dir       a private temporary directory (everything is written there)
#   ADDR      the server address; TLS_NAME the TLS name (SNI); CA the CA file
#   USER_ID   the AUTH user (also the MAIL FROM address)
#   CASES     lines "NAME PORT MODE WANT OPTIONS..."; MODE is the caller's
#             (the fault server's mode, or -), WANT the expected code,
#             OPTIONS words turned into every adapter's syntax:
#               -             nothing
#               auth=FILE     AUTH as USER_ID with the password in FILE
#               mech=M        AUTH mechanism
#               seen_mech=M   (for the caller's own checks; ignored here)
#               from / rcpt   MAIL FROM USER_ID / RCPT TO nobody@smtp-probe.test
#               inject        STARTTLS injection test
#               policy=FILE   port policy (the port then comes from it)
# and may define xc_phase_done ARRAY_NAME, called after each adapter's
# phase with the name of its result array (GOT_NAGIOS, GOT_EXPORTER,
# GOT_COLLECTD) to add checks of its own.
#
# Each adapter's answer per case is "CODE STATE" (state OK, WARNING,
# CRITICAL or UNKNOWN; collectd's severity OKAY, WARNING or FAILURE) or
# "?(what went wrong)".

declare -A WANT NAGIOS_ARGS GOT_NAGIOS GOT_EXPORTER GOT_COLLECTD
STATES=(OK WARNING CRITICAL UNKNOWN)
XC_BAD=0
XC_PIDS=()

# Stop collectd, the exporter and every helper in XC_PIDS; remove $dir
# (kept with SPC_KEEP=1). Meant for the caller's EXIT trap.
xc_cleanup() {
  local rc=$? f pid
  if [ "$rc" -ne 0 ]; then
    for f in collectd.log exporter.log server.err; do
      if [ -s "$dir/$f" ]; then
        spc_say "last lines of $f:"
        tail -n 20 "$dir/$f" >&2
      fi
    done
  fi
  spc_stop "$dir" 10 || true
  for pid in "${XC_PIDS[@]}"; do spc_kill_helper "$pid"; done
  if [ "${SPC_KEEP:-0}" = 1 ]; then spc_say "kept $dir"; else rm -rf "$dir"; fi
}

# Write the exporter's modules file, the collectd <Target> blocks and the
# check's arguments for every case.
xc_configure() {
  local c name port want opts nargs o
  {
    echo "modules:"
  } >"$dir/exporter.yml"
  : >"$dir/collectd-targets"
  for c in "${CASES[@]}"; do
    read -r name port _ want opts <<<"$c"
    WANT[$name]=$want
    # With a policy every adapter probes the ports the policy names (the
    # check and collectd refuse an explicit port next to it).
    case $opts in
    *policy=*) nargs="-H $ADDR --cafile $CA --sni $TLS_NAME -t 20" ;;
    *) nargs="-H $ADDR -p $port --cafile $CA --sni $TLS_NAME -t 20" ;;
    esac
    {
      echo "  $name:"
      echo "    timeout: 20s"
      echo "    server_name: $TLS_NAME"
      echo "    ca_file: $CA"
    } >>"$dir/exporter.yml"
    {
      echo "  <Target \"$name\">"
      echo "    Host \"$ADDR\""
      # With a PolicyFile the policy names the ports (Port is refused).
      case $opts in *policy=*) ;; *) echo "    Port $port" ;; esac
      echo "    SNI \"$TLS_NAME\""
      echo "    CAFile \"$CA\""
      echo "    Timeout 0.9"
    } >>"$dir/collectd-targets"
    for o in $opts; do
      case $o in
      - | seen_mech=*) ;;
      auth=*)
        nargs+=" --auth-user $USER_ID --auth-password-file ${o#auth=}"
        printf '    auth_user: %s\n    auth_password_file: %s\n' "$USER_ID" "${o#auth=}" >>"$dir/exporter.yml"
        printf '    AuthUser "%s"\n    AuthPasswordFile "%s"\n' "$USER_ID" "${o#auth=}" >>"$dir/collectd-targets"
        ;;
      mech=*)
        nargs+=" --auth-mech ${o#mech=}"
        printf '    auth_mechanism: %s\n' "${o#mech=}" >>"$dir/exporter.yml"
        printf '    AuthMechanism "%s"\n' "${o#mech=}" >>"$dir/collectd-targets"
        ;;
      from)
        nargs+=" --mail-from $USER_ID"
        printf '    mail_from: %s\n' "$USER_ID" >>"$dir/exporter.yml"
        printf '    MailFrom "%s"\n' "$USER_ID" >>"$dir/collectd-targets"
        ;;
      rcpt)
        nargs+=" --rcpt-to nobody@smtp-probe.test"
        printf '    rcpt_to: nobody@smtp-probe.test\n' >>"$dir/exporter.yml"
        printf '    RcptTo "nobody@smtp-probe.test"\n' >>"$dir/collectd-targets"
        ;;
      inject)
        nargs+=" --check-injection"
        printf '    check_injection: true\n' >>"$dir/exporter.yml"
        printf '    CheckInjection true\n' >>"$dir/collectd-targets"
        ;;
      policy=*)
        nargs+=" --policy ${o#policy=}"
        printf '    policy_file: %s\n' "${o#policy=}" >>"$dir/exporter.yml"
        printf '    PolicyFile "%s"\n' "${o#policy=}" >>"$dir/collectd-targets"
        ;;
      *) spc_fail "unknown case option $o" ;;
      esac
    done
    echo "  </Target>" >>"$dir/collectd-targets"
    NAGIOS_ARGS[$name]=$nargs
  done
}

# Run the check (with -vvv) once per case; fills GOT_NAGIOS.
# usage: xc_run_nagios CHECK_SMTP_PORTS
xc_run_nagios() {
  local check=$1 c name port rc first got
  for c in "${CASES[@]}"; do
    read -r name port _ <<<"$c"
    rc=0
    # shellcheck disable=SC2086 # the words are built above, no spaces inside
    timeout 60 "$check" ${NAGIOS_ARGS[$name]} -vvv >"$dir/nagios-$name.out" 2>"$dir/nagios-$name.err" || rc=$?
    first=$(head -n 1 "$dir/nagios-$name.out")
    # "SMTP STATE - PORT CODE..." -> "CODE STATE"; the exit code must match.
    got=$(printf '%s\n' "$first" | sed -nE "s/^SMTP ([A-Z]+) - $port ([a-z_]+).*/\2 \1/p")
    if [ -n "$got" ] && [ "$rc" -le 3 ] && [ "${got#* }" = "${STATES[$rc]}" ]; then
      GOT_NAGIOS[$name]=$got
    else
      GOT_NAGIOS[$name]="?(rc $rc: ${first:0:60})"
    fi
  done
  if declare -F xc_phase_done >/dev/null; then xc_phase_done GOT_NAGIOS; fi
}

# Start the exporter on LISTEN (it stays up until xc_cleanup) and probe
# every case, with and without debug=true; fills GOT_EXPORTER.
# usage: xc_run_exporter SMTP_EXPORTER ADDR:PORT
xc_run_exporter() {
  local exporter=$1 listen=$2 c name port opts target url http code state
  "$exporter" --config.file="$dir/exporter.yml" --web.listen-address="$listen" \
    --log.level=debug >"$dir/exporter.log" 2>&1 &
  XC_EXPORTER_PID=$!
  XC_PIDS+=("$XC_EXPORTER_PID")
  XC_LISTEN=$listen
  spc_wait_until 30 "exporter healthy" xc_exporter_ready
  for c in "${CASES[@]}"; do
    read -r name port _ _ opts <<<"$c"
    target=$ADDR:$port
    case $opts in *policy=*) target=$ADDR ;; esac
    url="http://$listen/probe?target=$target&module=$name"
    http=$(curl -s --max-time 40 -o "$dir/exporter-$name.prom" -w '%{http_code}' "$url") || http=000
    curl -s --max-time 40 -o "$dir/exporter-$name.debug" "$url&debug=true" || true
    code=$(sed -nE "s/^smtp_probe_diagnosis_info\{port=\"$port\",code=\"([a-z_]+)\"\} 1$/\1/p" \
      "$dir/exporter-$name.prom" | head -n 1)
    state=$(sed -nE "s/^smtp_probe_state\{port=\"$port\"\} ([0-3])$/\1/p" "$dir/exporter-$name.prom" | head -n 1)
    if [ -n "$code" ] && [ -n "$state" ]; then
      GOT_EXPORTER[$name]="$code ${STATES[$state]}"
    else
      GOT_EXPORTER[$name]="?(HTTP $http)"
    fi
  done
  if declare -F xc_phase_done >/dev/null; then xc_phase_done GOT_EXPORTER; fi
}

# True once the exporter answers /-/healthy; fails when it died.
xc_exporter_ready() {
  kill -0 "$XC_EXPORTER_PID" 2>/dev/null || spc_fail "exporter exited: $(tail -n 5 "$dir/exporter.log")"
  curl -sf -o /dev/null --max-time 2 "http://$XC_LISTEN/-/healthy"
}

# "CODE SEVERITY" of the latest success notification of a target, or "".
# usage: xc_notified NAME PORT
xc_notified() {
  grep -E "Notification: severity = [A-Z]+, .*plugin_instance = $1-$2, type = bool, type_instance = success, message = " \
    "$dir/collectd.log" | tail -n 1 |
    sed -nE "s/.*severity = ([A-Z]+), .*message = $1 port $2: [A-Z]+ ([a-z_]+):.*/\2 \1/p" || true
}

# True once a target's latest notification carries the expected code, or,
# for ok, once it has success 1 and no notification (a port that starts OK
# is not notified). A round lost to a slow moment (Timeout 0.9 s on a busy
# machine) is followed by a notification of the next round's code, so the
# latest one counts; a code that stays wrong is reported after the deadline.
# usage: xc_collectd_has_code NAME PORT WANT
xc_collectd_has_code() {
  local n v
  n=$(xc_notified "$1" "$2")
  [ "${n%% *}" = "$3" ] && return 0
  [ "$3" = ok ] && [ -z "$n" ] || return 1
  v=$(spc_getval "$dir" "$1-$2" bool-success 2>/dev/null) || return 1
  awk -v v="$v" 'BEGIN { exit !(v == 1) }'
}

# Run one private collectd (Interval 1, one <Target> per case) until every
# target reported (or 30 s per target passed), then stop it; fills
# GOT_COLLECTD. A case with auth= that wants ok must have an auth latency.
# usage: xc_run_collectd PLUGIN_SO
xc_run_collectd() {
  local so=$1 c name port opts got v
  spc_write_conf "$dir" "$so" 1 2 <"$dir/collectd-targets"
  spc_start "$dir"
  for c in "${CASES[@]}"; do
    read -r name port _ _ opts <<<"$c"
    (spc_wait_until 30 "collectd code for $name" xc_collectd_has_code "$name" "$port" "${WANT[$name]}") || true
    got=$(xc_notified "$name" "$port")
    if [ -z "$got" ]; then
      # No notification: OK when the port has success 1.
      v=$(spc_getval "$dir" "$name-$port" bool-success 2>/dev/null) || v=none
      if awk -v v="$v" 'BEGIN { exit !(v == 1) }'; then got="ok OKAY"; else got="?(success $v)"; fi
    fi
    # An authenticated ok really authenticated: the auth phase has a latency.
    if [ "${WANT[$name]}" = ok ] && [[ " $opts " == *" auth="* ]] &&
      ! spc_getval "$dir" "$name-$port" latency-auth >/dev/null; then
      got="?(no latency-auth)"
    fi
    GOT_COLLECTD[$name]=$got
  done
  spc_stop "$dir" 30 || spc_fail "collectd exited with an error"
  if declare -F xc_phase_done >/dev/null; then xc_phase_done GOT_COLLECTD; fi
}

# True when collectd's severity is the one for a check state.
xc_severity_fits() {
  case "$1:$2" in
  OKAY:OK | WARNING:WARNING | FAILURE:CRITICAL | FAILURE:UNKNOWN) return 0 ;;
  *) return 1 ;;
  esac
}

# Print the table case x adapter -> "code state"; count every case whose
# code is not the expected one in all three, or whose states disagree, in
# XC_BAD.
xc_table() {
  local c name port w n e d mark
  printf '%-15s %-5s %-18s %-27s %-27s %-27s\n' case port expected nagios exporter collectd
  for c in "${CASES[@]}"; do
    read -r name port _ <<<"$c"
    w=${WANT[$name]}
    n=${GOT_NAGIOS[$name]} e=${GOT_EXPORTER[$name]} d=${GOT_COLLECTD[$name]}
    mark=""
    if [ "${n%% *}" != "$w" ] || [ "${e%% *}" != "$w" ] || [ "${d%% *}" != "$w" ]; then
      mark="  <-- CODE MISMATCH"
      XC_BAD=$((XC_BAD + 1))
    elif [ "${n#* }" != "${e#* }" ] || ! xc_severity_fits "${d#* }" "${n#* }"; then
      mark="  <-- STATE MISMATCH"
      XC_BAD=$((XC_BAD + 1))
    fi
    printf '%-15s %-5s %-18s %-27s %-27s %-27s%s\n' "$name" "$port" "$w" "$n" "$e" "$d" "$mark"
  done
}

# Count in XC_BAD every secret found in anything an adapter wrote: the
# check's -vvv output and stderr, the exporter's pages (debug too) and log,
# collectd's log (with every notification), output and csv files; and a
# missing debug page (the search must have read something).
# usage: xc_no_secrets SECRET...
xc_no_secrets() {
  local secret c name
  for secret in "$@"; do
    [ -n "$secret" ] || spc_fail "an empty secret"
    # The list of files, not grep's status: a missing file makes it 2.
    grep -rlF -- "$secret" "$dir"/nagios-* "$dir"/exporter-* "$dir/exporter.log" \
      "$dir/collectd.log" "$dir/collectd.stdout" "$dir/csv" >"$dir/leaks" 2>/dev/null || true
    if [ -s "$dir/leaks" ]; then
      spc_say "FAIL: a password appears in: $(tr '\n' ' ' <"$dir/leaks")"
      XC_BAD=$((XC_BAD + 1))
    fi
  done
  for c in "${CASES[@]}"; do
    read -r name _ <<<"$c"
    [ -s "$dir/exporter-$name.debug" ] || {
      spc_say "FAIL: no exporter debug page for $name"
      XC_BAD=$((XC_BAD + 1))
    }
  done
}

# The arguments of a test against the shared mailenv Postfix (postfix.sh,
# proxy_ccert.sh): CHECK EXPORTER PLUGIN_SO ENV_SH. Checks them and the
# tools, sources ENV_SH, and sets check, exporter, plugin_so and ADDR,
# TLS_NAME, CA, USER_ID, PW from the environment.
# shellcheck disable=SC2034 # the variables are the caller's
xc_postfix_args() {
  check=${1:?usage: $(basename "$0") CHECK EXPORTER PLUGIN_SO ENV_SH}
  exporter=${2:?}
  plugin_so=${3:?}
  local env_sh=${4:?}
  [ -x "$check" ] || spc_fail "no $check"
  [ -x "$exporter" ] || spc_fail "no $exporter"
  [ -r "$plugin_so" ] || spc_fail "no $plugin_so"
  [ -r "$env_sh" ] || spc_fail "no $env_sh: is the mailenv fixture (env.setup) up?"
  command -v collectd >/dev/null || spc_fail "collectd is not installed"
  command -v curl >/dev/null || spc_fail "curl is not installed"
  # shellcheck disable=SC1090
  . "$env_sh"
  ADDR=$SP_POSTFIX_ADDR
  TLS_NAME=$SP_MAIL_NAME
  CA=$SP_CA_FILE
  USER_ID=$SP_SASL_USER
  PW=$SP_SASL_PASSWORD_FILE
}
