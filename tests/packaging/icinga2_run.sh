#!/usr/bin/env bash
# icinga2_run.sh SRCDIR CHECK - the CheckCommand really runs the plugin with
# the right arguments: a private Icinga 2 daemon (config, state, logs in a
# temporary directory; never /etc/icinga2, never the system service; no API
# listener) checks two hosts with the built check_smtp_ports, on ports where
# nobody listens:
#   v6only  address6 ::1 only               -> -H ::1 ($check_address$)
#   dual    address 127.0.60.1, address6 ::1 -> -H 127.0.60.1, and with
#           smtp_ports_ipv6 = true -> -H ::1 and -6 (set_if)
# Each service must end CRITICAL with connect_refused in its output (read
# from a PerfdataWriter file) and the command lines (notice log) must carry
# the expected -H, -p, -t and -6 arguments. Stopped by SIGTERM on exit.
set -euo pipefail
src=$1
check=$2
command -v icinga2 >/dev/null || { echo "icinga2 not installed (icinga2-bin)"; exit 1; }
d=$(mktemp -d /tmp/sp-icinga2run.XXXXXX)
pid=
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$d"
}
trap cleanup EXIT
mkdir -p "$d"/{data,log,cache,spool/tmp,run,perf}

cat >"$d/icinga2.conf" <<CFG
const PluginDir = "/usr/lib/nagios/plugins"
const PluginContribDir = "$(dirname "$check")"
const NodeName = "localhost"
include <itl>
include <plugins>
include "$src/packaging/icinga2/smtp-probe.conf"
object IcingaApplication "app" { }
object CheckerComponent "checker" { }
object FileLogger "notice" { path = "$d/log/notice.log"; severity = "notice" }
object PerfdataWriter "perf" {
  service_perfdata_path = "$d/perf/service-perfdata"
  host_perfdata_path = "$d/perf/host-perfdata"
  service_format_template = "SERVICE::\$host.name\$!\$service.name\$\tSTATE::\$service.state\$\tOUTPUT::\$service.output\$"
  rotation_interval = 1s
}
template Service "fast" {
  check_command = "smtp_ports"
  check_interval = 2s
  retry_interval = 2s
  max_check_attempts = 1
  vars.smtp_ports_ports = "1"
  vars.smtp_ports_timeout = "5"
}
object Host "v6only" { address6 = "::1"; check_command = "dummy"; enable_active_checks = false }
object Host "dual" { address = "127.0.60.1"; address6 = "::1"; check_command = "dummy"; enable_active_checks = false }
object Service "smtp" { host_name = "v6only"; import "fast" }
object Service "smtp" { host_name = "dual"; import "fast" }
object Service "smtp-v6" { host_name = "dual"; import "fast"; vars.smtp_ports_ipv6 = true }
CFG

icinga2 daemon -c "$d/icinga2.conf" -DDataDir="$d/data" -DLogDir="$d/log" \
  -DCacheDir="$d/cache" -DSpoolDir="$d/spool" -DInitRunDir="$d/run" \
  -DRunAsUser="$(id -un)" -DRunAsGroup="$(id -gn)" >"$d/out" 2>&1 &
pid=$!

# Wait (at most 60 s) for a result of each of the three services.
services="v6only!smtp dual!smtp dual!smtp-v6"
done_=0
for _ in $(seq 1 300); do
  cat "$d"/perf/service-perfdata.* >"$d/results" 2>/dev/null || true
  n=0
  for s in $services; do grep -qF "SERVICE::$s	" "$d/results" && n=$((n + 1)); done
  if [ "$n" = 3 ]; then done_=1; break; fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.2
done
if [ "$done_" != 1 ]; then
  grep -E 'critical/|warning/' "$d/out" | head -20
  cat "$d/results"
  echo "FAIL: no check results from the private icinga2 within 60 s"
  exit 1
fi

status=0
for s in $services; do
  line=$(grep -F "SERVICE::$s	" "$d/results" | tail -1)
  echo "$line"
  if ! grep -q 'STATE::CRITICAL	OUTPUT::SMTP CRITICAL - 1 connect_refused' <<<"$line"; then
    echo "FAIL: $s is not CRITICAL with connect_refused"; status=1
  fi
done

# The command lines Icinga ran ('Running command' at notice level).
cmds=$(grep -F "Running command '$check'" "$d/log/notice.log" || true)
expect() { # DESCRIPTION PATTERN
  if grep -qF -- "$2" <<<"$cmds"; then echo "ok: $1"; else echo "FAIL: $1: no command line with $2"; status=1; fi
}
expect "IPv6-only host probed at its address6" "'$check' '-H' '::1' '-p' '1' '-t' '5'"
expect "dual-stack host probed at its address" "'$check' '-H' '127.0.60.1' '-p' '1' '-t' '5'"
expect "smtp_ports_ipv6 selects address6 and adds -6" "'$check' '-6' '-H' '::1' '-p' '1' '-t' '5'"
if [ "$status" != 0 ]; then grep -F 'Running command' "$d/log/notice.log" | head -5; fi
exit $status
