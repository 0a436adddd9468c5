#!/usr/bin/env bash
# soak.sh - many reads of smtp_probe.so inside a real collectd under
# valgrind: no memory errors or leaks from our code, and collectd's file
# descriptors do not grow.
#
# usage: soak.sh ENV_SH PLUGIN_SO [ROUNDS]
#
# ROUNDS (default 15) is how many probe rounds of the mail target to wait
# for after the first few; every round also probes a refused port, a
# silent server (timeout path), and a posture target (AUTH, MAIL FROM,
# injection test, a port policy with one deviation). The CTest variant (collectd.valgrind) uses
# the default; a longer soak, e.g. an hour at one round a second:
#   bash tests/collectd/soak.sh build/testenv/env.sh \
#        build/collectd/smtp_probe.so 3600
# SPC_SOAK_TOOL=asan runs collectd with the ASan runtime preloaded, for a
# plugin built with -DSP_SANITIZE=ON (then valgrind cannot be used);
# SPC_SOAK_TOOL=none runs it bare (fd check only).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$HERE/collectd-lib.sh"

env_sh=$1
plugin_so=$2
rounds=${3:-15}
tool=${SPC_SOAK_TOOL:-valgrind}
[ -r "$env_sh" ] || spc_fail "no $env_sh (is the mailenv fixture up?)"
[ -r "$plugin_so" ] || spc_fail "no $plugin_so"
# shellcheck disable=SC1090
. "$env_sh"

dir=$(mktemp -d /tmp/spc-soak.XXXXXX)
listener_pid=
cleanup() { spc_cleanup $? "$dir" 15 120 "$listener_pid"; }
trap cleanup EXIT

python3 "$HERE/silent_listener.py" 127.0.30.3 "$dir/silent.port" "$dir/silent.events" &
listener_pid=$!
spc_wait_until 20 "silent listener ready" test -s "$dir/silent.port"
silent_port=$(cat "$dir/silent.port")

# The posture target: AUTH with the mailenv's SASL user, a MAIL FROM
# trial, the injection test, and a policy with one deviation (2525 answers,
# the policy says closed), so that the password and policy paths run under
# the tool too.
cat >"$dir/policy.yml" <<'YAML'
ports:
  587:
    tls: starttls
    auth: after_tls
    min_tls: "1.2"
  2525:
    state: closed
YAML

# Timeouts are generous: valgrind slows the TLS handshakes a lot.
spc_write_conf "$dir" "$plugin_so" 1 2 <<EOF
  <Target "mail">
    Host "$SP_MAIL_NAME"
    Port 25 465 587 2525
    CAFile "$SP_CA_FILE"
    DNSServer "$SP_DNS_SERVER"
    Timeout 4
    Interval 5
  </Target>
  <Target "refused">
    Host "127.0.30.1"
    Port 9
    Timeout 0.5
  </Target>
  <Target "silent">
    Host "127.0.30.3"
    Port $silent_port
    Timeout 2
    Interval 3
  </Target>
  <Target "posture">
    Host "$SP_MAIL_NAME"
    PolicyFile "$dir/policy.yml"
    CAFile "$SP_CA_FILE"
    DNSServer "$SP_DNS_SERVER"
    AuthUser "$SP_SASL_USER"
    AuthPasswordFile "$SP_SASL_PASSWORD_FILE"
    MailFrom "$SP_SASL_USER"
    CheckInjection true
    Timeout 4
    Interval 5
  </Target>
EOF

wrapper=()
if [ "$tool" = valgrind ]; then
  wrapper=(valgrind --log-file="$dir/valgrind.log" --leak-check=full
    "--show-leak-kinds=definite,indirect" "--errors-for-leak-kinds=definite,indirect"
    --num-callers=40 --error-limit=no)
fi
if [ "$tool" = asan ]; then
  # collectd is not built with ASan: its runtime must be loaded first.
  # Leak checking runs at exit; reports go to asan.log.PID.
  asan_rt=$(gcc -print-file-name=libasan.so)
  [ -e "$asan_rt" ] || spc_fail "no libasan.so for SPC_SOAK_TOOL=asan"
  wrapper=(env LD_PRELOAD="$asan_rt"
    ASAN_OPTIONS="detect_leaks=1:log_path=$dir/asan.log:abort_on_error=0"
    UBSAN_OPTIONS="print_stacktrace=1:log_path=$dir/ubsan.log")
fi
spc_start "$dir" "${wrapper[@]}"
pid=$SPC_PID

# Warm up: the first rounds open what stays open (resolver, TLS contexts).
spc_wait_until 120 "3 mail rounds" spc_rows_at_least "$dir" mail-587 bool-success 3
fd_start=$(spc_fd_min "$pid")
start_rows=$(spc_csv_rows "$dir" refused-9 bool-success)
spc_say "fds after warm-up: $fd_start; waiting for $rounds rounds"
spc_wait_until $((rounds * 10 + 60)) "$rounds more refused rounds" \
  spc_rows_at_least "$dir" refused-9 bool-success $((start_rows + rounds))
fd_end=$(spc_fd_min "$pid")
# Slack 2 for probes in flight at the sample; a leak grows by the round.
[ "$fd_end" -le $((fd_start + 2)) ] || spc_fail "collectd fds grew from $fd_start to $fd_end"
echo "ok: collectd fds $fd_start after warm-up, $fd_end after $rounds rounds"

# The values kept flowing for every target.
s=$(spc_getval "$dir" mail-465 bool-success) || spc_fail "no mail-465 success"
echo "ok: mail-465 success = $s after the soak"
s=$(spc_getval "$dir" posture-587 bool-success) || spc_fail "no posture-587 success"
spc_getval "$dir" posture-587 latency-auth >/dev/null || spc_fail "no posture-587 latency-auth"
echo "ok: posture-587 success = $s, with latency-auth"
n=$(grep -c 'plugin_instance = posture-2525, type = bool, type_instance = policy, message = .*rule state' "$dir/collectd.log" || true)
[ "$n" -eq 1 ] || spc_fail "posture-2525 policy deviation notified $n times, want once"
echo "ok: posture-2525 policy deviation notified once"

stop_rc=0
spc_stop "$dir" 120 || stop_rc=$?
if [ "$tool" = valgrind ]; then
  # Errors and leaks whose stack passes through our plugin (the core library
  # is linked into it) or names its functions.
  ours=$(awk '
    /^==[0-9]+== $/ { if (blk ~ /smtp_probe\.so|: spc?_[a-z_]+ /) print blk; blk = ""; next }
    { blk = blk "\n" $0 }
    END { if (blk ~ /smtp_probe\.so|: spc?_[a-z_]+ /) print blk }
  ' "$dir/valgrind.log" | grep -v '^$' || true)
  summary=$(grep -E "ERROR SUMMARY|definitely lost|indirectly lost" "$dir/valgrind.log" || true)
  echo "$summary"
  if [ -n "$ours" ]; then
    echo "$ours" | head -80 >&2
    spc_fail "valgrind reports errors or leaks in smtp_probe.so"
  fi
  grep -q "ERROR SUMMARY" "$dir/valgrind.log" || spc_fail "valgrind wrote no summary"
  echo "ok: valgrind: nothing from smtp_probe.so"
fi
if [ "$tool" = asan ]; then
  # Any report whose stack passes through our plugin fails the soak.
  reports=$(cat "$dir"/asan.log.* "$dir"/ubsan.log.* 2>/dev/null || true)
  if echo "$reports" | grep -qE 'smtp_probe\.so|: spc?_[a-z_]+ |in spc?_[a-z_]+ '; then
    echo "$reports" | head -80 >&2
    spc_fail "ASan/UBSan report errors or leaks in smtp_probe.so"
  fi
  [ -z "$reports" ] || spc_say "sanitizer reports outside our code: $(echo "$reports" | grep -c ERROR) (see kept dir with SPC_KEEP=1)"
  echo "ok: ASan/UBSan: nothing from smtp_probe.so"
fi
if grep -rqF -- "$(head -n 1 "$SP_SASL_PASSWORD_FILE")" "$dir/collectd.log" "$dir/collectd.stdout" "$dir/csv"; then
  spc_fail "the SASL password appears in collectd's output"
fi
echo "ok: no password in collectd's log or output"
# Checked last so that a sanitizer's exit status comes with its report.
[ "$stop_rc" -eq 0 ] || spc_fail "collectd exited with status $stop_rc"
echo "PASS"
