#!/usr/bin/env bash
# test-package.sh - build, lint, install, run and remove the smtp-probe
# Debian packages on this machine. Not part of the CTest/CI tier (it installs
# packages system-wide); run it by hand as root:
#
#   bash packaging/test-package.sh [OUTDIR]
#
#  1. packaging/build-deb.sh --lintian OUTDIR (default: a temporary
#     directory): dpkg-buildpackage -us -uc -b, lintian without errors or
#     warnings;
#  2. dpkg -i the three packages, with a policy-rc.d that forbids starting
#     services (the exporter's unit is enabled by the package, never started);
#  3. runs each installed binary once, on loopback 127.0.60.1 only:
#     - check_smtp_ports against 127.0.60.1:587, where nobody listens: exit
#       2 (CRITICAL) with connect_refused; and when SP_ENV_SH names the env.sh
#       of a running mail environment (tests/env, e.g.
#       build/testenv/env.sh), against its Postfix on all four ports: exit 0;
#     - collectd -T with a private config that includes the installed conf.d
#       snippet and loads the installed plugin with one loopback target (Debian
#       12's `collectd -t` does not read the config, so -T: load, configure,
#       one read, exit);
#     - smtp_exporter started directly with the installed
#       /etc/smtp-probe/smtp_exporter.yml on 127.0.60.1:19588, as nobody with
#       no new privileges and no capabilities (setpriv: what the unit's
#       DynamicUser/NoNewPrivileges/CapabilityBoundingSet= amount to);
#       /metrics and one /probe fetched; the installed unit passes systemd-analyze verify
#       (including its man: reference);
#     - icinga2 daemon -C (private config dir) loads the installed CheckCommand
#       through `include <plugins-contrib>`; man finds all three pages;
#  4. dpkg --purge the packages and checks nothing is left behind.
# Refuses to run when any smtp-probe package is already installed, so it never
# removes an installation it did not make.
set -euo pipefail

[ "$(id -u)" -eq 0 ] || { echo "test-package.sh: must run as root (dpkg -i)"; exit 1; }
top=$(cd "$(dirname "$0")/.." && pwd)
pkgs=(smtp-probe-nagios smtp-probe-collectd smtp-probe-exporter)
addr=127.0.60.1

for p in "${pkgs[@]}"; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'installed'; then
    echo "test-package.sh: $p is already installed; remove it first"
    exit 1
  fi
done

tmp=$(mktemp -d /tmp/smtp-probe-pkgtest.XXXXXX)
out=${1:-$tmp/debs}
policy=/usr/sbin/policy-rc.d
created_policy=0
installed=0
exporter_pid=
failures=0

cleanup() {
  if [ -n "$exporter_pid" ]; then
    kill "$exporter_pid" 2>/dev/null || true
    wait "$exporter_pid" 2>/dev/null || true
  fi
  if [ "$installed" = 1 ]; then
    dpkg --purge "${pkgs[@]}" >/dev/null 2>&1 || true
  fi
  if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# ---- 1. build and lint ------------------------------------------------------
bash "$top/packaging/build-deb.sh" --lintian "$out" >"$tmp/build.log" 2>&1 || {
  tail -60 "$tmp/build.log"; echo "FAIL: build-deb.sh"; exit 1; }
built=()
for f in "$out"/*.deb; do case "$f" in *dbgsym*) ;; *) built+=("$(basename "$f")") ;; esac; done
ok "built and linted: ${built[*]}"

# ---- 2. install with service starts blocked ---------------------------------
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  created_policy=1
fi
debs=()
for p in "${pkgs[@]}"; do debs+=("$(ls "$out/${p}"_*.deb)"); done
installed=1
dpkg -i "${debs[@]}" >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; echo "FAIL: dpkg -i"; exit 1; }
for p in "${pkgs[@]}"; do
  if dpkg-query -W -f='${Status}\n' "$p" | grep -q 'install ok installed'; then
    ok "$p installed"
  else
    fail "$p not installed"
  fi
done

# ---- 3a. the Nagios plugin ----------------------------------------------------
plugin=/usr/lib/nagios/plugins/check_smtp_ports
set +e
line=$("$plugin" -H "$addr" -p 587 -t 5)
rc=$?
set -e
echo "  $line"
if [ "$rc" = 2 ] && grep -q 'SMTP CRITICAL - 587 connect_refused' <<<"$line"; then
  ok "check_smtp_ports: exit 2, connect_refused"
else
  fail "check_smtp_ports: exit $rc, expected 2 with connect_refused"
fi

if [ -n "${SP_ENV_SH:-}" ]; then
  # shellcheck disable=SC1090
  . "$SP_ENV_SH"
  set +e
  line=$("$plugin" -H "$SP_POSTFIX_ADDR" -p 25,465,587,2525 --cafile "$SP_CA_FILE" \
    --sni "$SP_MAIL_NAME" -t 20)
  rc=$?
  set -e
  echo "  $line"
  if [ "$rc" = 0 ] && grep -q '^SMTP OK' <<<"$line"; then
    ok "check_smtp_ports against the mail environment's Postfix: OK on 25,465,587,2525"
  else
    fail "check_smtp_ports against $SP_POSTFIX_ADDR: exit $rc, expected 0"
  fi
fi

# ---- 3b. the collectd plugin ----------------------------------------------------
[ -f /usr/lib/collectd/smtp_probe.so ] || fail "no /usr/lib/collectd/smtp_probe.so"
mkdir -p "$tmp/collectd"
# Hostname and FQDNLookup false: the test must not depend on the machine's
# own name resolving.
cat >"$tmp/collectd.conf" <<EOF
Hostname "smtp-probe-test"
FQDNLookup false
BaseDir "$tmp/collectd"
PIDFile "$tmp/collectd/collectd.pid"
TypesDB "/usr/share/collectd/types.db"
Interval 10
LoadPlugin logfile
<Plugin logfile>
  LogLevel info
  File STDERR
</Plugin>
# The installed snippet (all comments) must parse.
Include "/etc/collectd/collectd.conf.d/smtp_probe.conf"
LoadPlugin smtp_probe
<Plugin smtp_probe>
  <Target "pkgtest">
    Host "$addr"
    Port 587
    Timeout 5
  </Target>
</Plugin>
EOF
if timeout 60 collectd -T -C "$tmp/collectd.conf" >"$tmp/collectd.log" 2>&1 &&
  grep -q 'plugin "smtp_probe" successfully loaded' "$tmp/collectd.log" &&
  ! grep -qi 'smtp_probe.*\(error\|skipping\|fail\)' "$tmp/collectd.log"; then
  ok "collectd -T loaded /usr/lib/collectd/smtp_probe.so with a target, no errors"
else
  cat "$tmp/collectd.log"
  fail "collectd -T with the installed plugin"
fi

# ---- 3c. the exporter -------------------------------------------------------
cfg=/etc/smtp-probe/smtp_exporter.yml
dpkg-query --control-show smtp-probe-exporter conffiles 2>/dev/null | grep -q "^$cfg\$" ||
  grep -q "^$cfg\$" /var/lib/dpkg/info/smtp-probe-exporter.conffiles ||
  fail "$cfg is not a conffile"
if /usr/bin/smtp_exporter --config.file="$cfg" --config.check >"$tmp/check.log" 2>&1; then
  ok "smtp_exporter --config.check accepts $cfg"
else
  cat "$tmp/check.log"; fail "config.check"
fi
# As the unit runs it, as far as can be without systemd: an unprivileged
# user, no new privileges, an empty capability bounding set.
setpriv --reuid=nobody --regid=nogroup --clear-groups --no-new-privs --bounding-set=-all \
  /usr/bin/smtp_exporter --config.file="$cfg" --web.listen-address="$addr:19588" \
  --log.level=warn >"$tmp/exporter.log" 2>&1 &
exporter_pid=$!
ready=0
for _ in $(seq 1 100); do
  if curl -fsS -o /dev/null "http://$addr:19588/-/ready" 2>/dev/null; then ready=1; break; fi
  kill -0 "$exporter_pid" 2>/dev/null || break
  sleep 0.1
done
if [ "$ready" = 1 ]; then
  curl -fsS "http://$addr:19588/metrics" >"$tmp/metrics" || true
  if grep -q '^smtp_exporter_build_info{' "$tmp/metrics"; then
    ok "exporter (as nobody, no privileges) /metrics has smtp_exporter_build_info"
  else
    fail "exporter /metrics lacks smtp_exporter_build_info"
  fi
  curl -fsS "http://$addr:19588/probe?target=$addr:1&module=submission" >"$tmp/probe" || true
  if grep -q 'smtp_probe_diagnosis_info{.*code="connect_refused"' "$tmp/probe"; then
    ok "exporter /probe of $addr:1: connect_refused"
  else
    cat "$tmp/probe"; fail "exporter /probe"
  fi
else
  cat "$tmp/exporter.log"
  fail "installed exporter not ready on $addr:19588"
fi
kill "$exporter_pid" 2>/dev/null || true
wait "$exporter_pid" 2>/dev/null || true
exporter_pid=

unit=/lib/systemd/system/smtp-probe-exporter.service
if msg=$(systemd-analyze verify "$unit" 2>&1) && [ -z "$msg" ]; then
  ok "systemd-analyze verify $unit (installed binary, man page)"
else
  echo "$msg"; fail "systemd-analyze verify $unit"
fi
[ -L /etc/systemd/system/multi-user.target.wants/smtp-probe-exporter.service ] &&
  ok "unit enabled by the package (not started: policy-rc.d, no running systemd)" ||
  echo "note: unit not enabled (deb-systemd-helper did not link it)"

# ---- 3d. Icinga 2 and man pages ----------------------------------------------------
if command -v icinga2 >/dev/null; then
  mkdir -p "$tmp/icinga2"/{data,log,cache,spool,run}
  cat >"$tmp/icinga2/icinga2.conf" <<'EOF'
const PluginDir = "/usr/lib/nagios/plugins"
const PluginContribDir = "/usr/lib/nagios/plugins"
const ManubulonPluginDir = "/usr/lib/nagios/plugins"
const NodeName = "localhost"
include <itl>
include <plugins>
include <plugins-contrib>
object Host "pkgtest" { address6 = "::1"; check_command = "dummy" }
object Service "smtp" { host_name = "pkgtest"; check_command = "smtp_ports" }
EOF
  d=$tmp/icinga2
  if icinga2 daemon -C -c "$d/icinga2.conf" -DDataDir="$d/data" -DLogDir="$d/log" \
    -DCacheDir="$d/cache" -DSpoolDir="$d/spool" -DInitRunDir="$d/run" \
    -DRunAsUser=root -DRunAsGroup=root >"$d/out" 2>&1; then
    ok "icinga2 -C: the installed CheckCommand loads via include <plugins-contrib>"
  else
    grep -E 'critical|smtp' "$d/out" | head -20
    fail "icinga2 -C with the installed CheckCommand"
  fi
fi
for page in "1 check_smtp_ports" "1 smtp_exporter" "5 smtp_probe"; do
  # shellcheck disable=SC2086
  if ! man -w $page >/dev/null 2>&1; then
    fail "man $page not found"
  elif warn=$(MANWIDTH=80 man $page 2>&1 >/dev/null) && [ -z "$warn" ]; then
    ok "man $page"
  else
    echo "$warn"; fail "man $page printed warnings"
  fi
done

# ---- 4. remove ------------------------------------------------------------------
dpkg --purge "${pkgs[@]}" >"$tmp/purge.log" 2>&1 || { cat "$tmp/purge.log"; fail "dpkg --purge"; }
installed=0
for f in /usr/lib/nagios/plugins/check_smtp_ports /usr/lib/collectd/smtp_probe.so \
  /usr/bin/smtp_exporter /etc/smtp-probe /etc/collectd/collectd.conf.d/smtp_probe.conf \
  "$unit" /etc/systemd/system/multi-user.target.wants/smtp-probe-exporter.service \
  /usr/share/icinga2/include/plugins-contrib.d/smtp-probe.conf; do
  if [ -e "$f" ] || [ -L "$f" ]; then fail "$f left after purge"; fi
done
ok "purged; nothing left behind"

if [ "$failures" -gt 0 ]; then
  echo "test-package.sh: $failures failure(s)"
  exit 1
fi
if [ $# -ge 1 ]; then
  echo "test-package.sh: all checks passed (packages kept in $out)"
else
  echo "test-package.sh: all checks passed (pass OUTDIR to keep the packages)"
fi
