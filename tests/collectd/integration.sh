#!/usr/bin/env bash
# integration.sh - a real collectd loads smtp_probe.so and probes the
# loopback Postfix of the mailenv fixture.
#
# usage: integration.sh ENV_SH PLUGIN_SO
#
# Checks, against a private collectd (Interval 1, ReadThreads 1 so that a
# read callback that blocked would starve every other target):
#  - a bad <Target> block is reported naming block and key, and skipped;
#  - every phase the probe performed has a latency value, for each of the
#    four Postfix ports (and no reserved phase shows up);
#  - success is 1 and the certificate's time left is positive on all four;
#  - AllAddresses puts the address into the plugin instance;
#  - a refused port has success 0 and its FAILURE notification is logged
#    with its diagnosis code;
#  - a silent server (accepts, never answers; timeout 10 s) does not delay
#    the other targets: the mail target completes 3 more rounds while the
#    silent probe is still in flight; it then ends as banner_timeout;
#  - the file descriptors of collectd do not grow over the run.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$HERE/collectd-lib.sh"

env_sh=$1
plugin_so=$2
[ -r "$env_sh" ] || spc_fail "no $env_sh (is the mailenv fixture up?)"
[ -r "$plugin_so" ] || spc_fail "no $plugin_so"
# shellcheck disable=SC1090
. "$env_sh"

dir=$(mktemp -d /tmp/spc-it.XXXXXX)
listener_pid=
cleanup() { spc_cleanup $? "$dir" 15 30 "$listener_pid"; }
trap cleanup EXIT

# The silent server on 127.0.30.2 (collectd's loopback range).
python3 "$HERE/silent_listener.py" 127.0.30.2 "$dir/silent.port" "$dir/silent.events" &
listener_pid=$!
spc_wait_until 20 "silent listener ready" test -s "$dir/silent.port"
silent_port=$(cat "$dir/silent.port")

spc_write_conf "$dir" "$plugin_so" 1 1 <<EOF
  <Target "mail">
    Host "$SP_MAIL_NAME"
    Port 25 465 587 2525
    CAFile "$SP_CA_FILE"
    DNSServer "$SP_DNS_SERVER"
    EHLO "probe.smtp-probe.test"
    Timeout 0.9
  </Target>
  <Target "each">
    Host "$SP_POSTFIX_ADDR"
    Port 587
    AllAddresses true
    SNI "$SP_MAIL_NAME"
    CAFile "$SP_CA_FILE"
    Timeout 0.9
  </Target>
  <Target "refused">
    Host "127.0.30.1"
    Port 9
    Timeout 0.5
  </Target>
  <Target "silent">
    Host "127.0.30.2"
    Port $silent_port
    Role "relay"
    Timeout 10
    Interval 12
  </Target>
  <Target "broken">
    Host "127.0.30.1"
    Timeout 5
    Interval 2
  </Target>
EOF

spc_start "$dir"
pid=$SPC_PID

# The bad block is reported with block and key, the others run.
grep -q 'Target "broken": Timeout' "$dir/collectd.log" ||
  spc_fail "bad block not reported: $(grep smtp_probe "$dir/collectd.log")"

# Every port of the mail target: the phases the probe performed.
declare -A want
want[25]="latency-banner latency-connect latency-dns latency-ehlo latency-ehlo_tls latency-starttls latency-tls_handshake latency-total"
want[587]=${want[25]}
want[2525]=${want[25]}
want[465]="latency-banner latency-connect latency-dns latency-ehlo_tls latency-tls_handshake latency-total"

# File descriptors (the fewest over a few samples) must not grow.
have_success() { spc_getval "$dir" "$1" bool-success >/dev/null; }
for port in 25 465 587 2525; do
  spc_wait_until 30 "mail-$port success value" have_success "mail-$port"
done
fd_start=$(spc_fd_min "$pid")

for port in 25 465 587 2525; do
  got=$(spc_listval "$dir" "mail-$port" | grep '^latency-' | tr '\n' ' ' | sed 's/ $//')
  [ "$got" = "${want[$port]}" ] ||
    spc_fail "port $port latencies: got [$got], want [${want[$port]}]"
  for id in ${want[$port]}; do
    v=$(spc_getval "$dir" "mail-$port" "$id") || spc_fail "getval mail-$port/$id"
    awk -v v="$v" 'BEGIN { exit !(v >= 0 && v < 10) }' ||
      spc_fail "mail-$port/$id = $v is not a latency in seconds"
  done
  s=$(spc_getval "$dir" "mail-$port" bool-success)
  awk -v v="$s" 'BEGIN { exit !(v == 1) }' ||
    spc_fail "mail-$port success = $s: $(grep "mail port $port" "$dir/collectd.log" | tail -1)"
  for c in timeleft-cert timeleft-cert_chain; do
    v=$(spc_getval "$dir" "mail-$port" "$c") || spc_fail "getval mail-$port/$c"
    awk -v v="$v" 'BEGIN { exit !(v > 86400) }' || spc_fail "mail-$port/$c = $v"
  done
  echo "ok: mail-$port: $(echo "${want[$port]}" | wc -w) phases, success 1, cert time left"
done

# AllAddresses: the address is part of the plugin instance.
each="each-587-$SP_POSTFIX_ADDR"
spc_wait_until 30 "$each success value" have_success "$each"
s=$(spc_getval "$dir" "$each" bool-success)
awk -v v="$s" 'BEGIN { exit !(v == 1) }' || spc_fail "$each success = $s"
spc_getval "$dir" "$each" latency-tls_handshake >/dev/null || spc_fail "no $each tls_handshake"
if spc_getval "$dir" "each-587" bool-success >/dev/null; then
  spc_fail "AllAddresses target also reported without its address"
fi
echo "ok: $each: success 1 (AllAddresses instance name)"

# The refused port: success 0 and a FAILURE notification with its code.
spc_wait_until 30 "refused-9 success value" have_success refused-9
s=$(spc_getval "$dir" refused-9 bool-success)
awk -v v="$s" 'BEGIN { exit !(v == 0) }' || spc_fail "refused-9 success = $s"
notified() {
  grep -q 'Notification: severity = FAILURE.*plugin_instance = refused-9.*connect_refused' \
    "$dir/collectd.log"
}
spc_wait_until 30 "FAILURE notification for refused-9" notified
echo "ok: refused-9: success 0, FAILURE notification with connect_refused"
# Only once: the state does not change, so no repeat.
rows=$(spc_csv_rows "$dir" refused-9 bool-success)
spc_wait_until 30 "3 more refused-9 rounds" \
  spc_rows_at_least "$dir" refused-9 bool-success $((rows + 3))
n=$(grep -c 'Notification: severity = FAILURE.*plugin_instance = refused-9' "$dir/collectd.log")
[ "$n" -eq 1 ] || spc_fail "refused-9 notified $n times, want once"
echo "ok: refused-9 notified once over further unchanged rounds"

# The silent target (role relay: no implicit-TLS retry after the banner
# wait, so one connection per probe, held until the deadline): from the
# moment the silent server accepts a new connection (a probe with 10 s to
# go), the mail target completes 3 rounds before that probe ends.
accepts() { awk '$1 == "accept" { n = $2 } END { print n + 0 }' "$dir/silent.events"; }
seen=$(accepts)
new_accept() { [ "$(accepts)" -gt "$seen" ]; }
spc_wait_until 30 "a new silent probe" new_accept
conn=$(accepts)
rows=$(spc_csv_rows "$dir" mail-587 bool-success)
spc_wait_until 9 "3 mail rounds while the silent probe is pending" \
  spc_rows_at_least "$dir" mail-587 bool-success $((rows + 3))
if grep -q "^close $conn " "$dir/silent.events"; then
  spc_fail "the silent probe ended before the mail target's 3 rounds"
fi
echo "ok: mail target completed 3 rounds while silent probe $conn was pending"
silent_notified() {
  grep -q "Notification: severity = FAILURE.*plugin_instance = silent-$silent_port.*banner_timeout" \
    "$dir/collectd.log"
}
spc_wait_until 40 "banner_timeout notification for the silent target" silent_notified
s=$(spc_getval "$dir" "silent-$silent_port" bool-success)
awk -v v="$s" 'BEGIN { exit !(v == 0) }' || spc_fail "silent success = $s"
echo "ok: silent-$silent_port: banner_timeout, success 0"

fd_end=$(spc_fd_min "$pid")
# Slack 2: the silent target's socket, a resolver socket. A leak would show
# as dozens (5 probes a second).
[ "$fd_end" -le $((fd_start + 2)) ] || spc_fail "collectd fds grew from $fd_start to $fd_end"
echo "ok: collectd fds $fd_start at start, $fd_end at end"

spc_stop "$dir" || spc_fail "collectd exited with an error"
grep -q 'smtp_probe.*cannot' "$dir/collectd.log" && spc_fail "plugin errors in the log"
echo "PASS"
