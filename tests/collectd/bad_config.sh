#!/usr/bin/env bash
# bad_config.sh - a real collectd with only bad <Target> blocks: each is
# reported naming its block and key (and the core's sentence for a bad
# value), the plugin fails to initialise (and is unloaded), and collectd
# itself keeps running with its other plugins.
#
# usage: bad_config.sh PLUGIN_SO
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$HERE/collectd-lib.sh"

plugin_so=$1
[ -r "$plugin_so" ] || spc_fail "no $plugin_so"
dir=$(mktemp -d /tmp/spc-bad.XXXXXX)
cleanup() { spc_cleanup $? "$dir" 15 30; }
trap cleanup EXIT

spc_write_conf "$dir" "$plugin_so" 1 1 <<'EOF2'
  <Target "slow">
    Host "127.0.30.1"
    Timeout 5
    Interval 5
  </Target>
  <Target "typo">
    Host "127.0.30.1"
    Prot 25
  </Target>
  <Target "tls">
    Host "127.0.30.1"
    TLS "sometimes"
  </Target>
  <Target "port">
    Host "127.0.30.1"
    Port 25 70000
  </Target>
  <Target "nohost">
    Port 25
  </Target>
  <Target "bad/name">
    Host "127.0.30.1"
  </Target>
  <Target "mintls">
    Host "127.0.30.1"
    MinTLS "1.4"
  </Target>
  <Target "policyport">
    Host "127.0.30.1"
    Port 587
    PolicyFile "/nonexistent/policy.yml"
  </Target>
  <Target "nopw">
    Host "127.0.30.1"
    AuthUser "probe@smtp-probe.test"
  </Target>
  <Target "send">
    Host "127.0.30.1"
    Send true
  </Target>
  Verbose true
EOF2

spc_start "$dir"
initialised() { grep -q "Initialization complete" "$dir/collectd.log"; }
spc_wait_until 30 "collectd's read loop" initialised

expect() {
  grep -qF "$1" "$dir/collectd.log" || spc_fail "log lacks: $1"
  echo "ok: logged: $1"
}
expect 'Target "slow": Timeout: 5 s must be below Interval (5 s); skipping this block'
expect 'Target "typo": Prot: unknown option; skipping this block'
expect "Target \"tls\": TLS: 'sometimes' is not auto, none, starttls or implicit; skipping this block"
expect "Target \"port\": Port: '25,70000' is not a list of ports 1-65535; skipping this block"
expect 'Target "nohost": Host: missing or not a valid host name or address; skipping this block'
expect 'Target "bad/name": the name may only hold letters'
expect "Target \"mintls\": MinTLS: '1.4' is not 1.0, 1.1, 1.2 or 1.3; skipping this block"
expect 'Target "policyport": Port: not with PolicyFile (the policy names the ports); skipping this block'
expect 'Target "nopw": AuthUser: needs AuthPasswordFile'
expect 'Target "send": Send: not offered'
expect '"Verbose" is not a known option'
expect 'no usable <Target> block (10 configured)'
grep -q 'Initialization of plugin `smtp_probe. failed' "$dir/collectd.log" ||
  grep -qi 'smtp_probe.*fail' "$dir/collectd.log" ||
  spc_fail "collectd did not report the failed initialisation"
echo "ok: the plugin failed to initialise"

# collectd itself is alive and answers on its socket.
kill -0 "$SPC_PID" || spc_fail "collectd died"
collectdctl -s "$dir/collectd.sock" listval >/dev/null || spc_fail "unixsock does not answer"
if collectdctl -s "$dir/collectd.sock" listval | grep -q smtp_probe; then
  spc_fail "values from a plugin that did not initialise"
fi
echo "ok: collectd keeps running without the plugin"
# collectd exits non-zero when a plugin's init failed; that is its report.
spc_stop "$dir" || true
echo "PASS"
