#!/usr/bin/env bash
# icinga2_validate.sh SRCDIR CASE [CHECK] - validate smtp-probe's Icinga 2 files with
# `icinga2 daemon -C` against a private config directory (never /etc/icinga2;
# no daemon is started: -C exits after validation).
#   CASE command:   the CheckCommand + examples/icinga2/services.conf
#   CASE scale-out: the CheckCommand + examples/icinga2/scale-out/*.conf
# Then reads the validated objects file and checks what the files promise:
# the command exists with its arguments, the address defaults to
# $check_address$, and the apply rules produced the expected services.
# With CHECK (the built check_smtp_ports), every long option of its --help
# must be an argument of the CheckCommand (or its short form).
set -euo pipefail
src=$1
case_=$2
check=${3:-}
pkg=$src/packaging

command -v icinga2 >/dev/null || { echo "icinga2 not installed (icinga2-bin)"; exit 1; }

dir=$(mktemp -d /tmp/sp-icinga2.XXXXXX)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir"/{data,log,cache,spool,run}

{
  echo 'const PluginDir = "/usr/lib/nagios/plugins"'
  echo 'const PluginContribDir = "/usr/lib/nagios/plugins"'
  echo 'const NodeName = "master1.example.org"'
  echo 'const ZoneName = "master"'
  # Only the ITL core and the standard plugins: an installed copy of our
  # file in plugins-contrib.d must not be loaded twice.
  echo 'include <itl>'
  echo 'include <plugins>'
  echo "include \"$pkg/icinga2/smtp-probe.conf\""
  echo 'template Host "generic-host" { check_command = "dummy" }'
  echo 'template Service "generic-service" { max_check_attempts = 3 }'
  case "$case_" in
    command) echo "include \"$pkg/examples/icinga2/services.conf\"" ;;
    scale-out)
      echo "include \"$pkg/examples/icinga2/scale-out/zones.conf\""
      echo "include \"$pkg/examples/icinga2/scale-out/hosts.conf\""
      ;;
    *) echo "unknown case $case_"; exit 1 ;;
  esac
} >"$dir/icinga2.conf"

if ! icinga2 daemon -C -c "$dir/icinga2.conf" \
  -DDataDir="$dir/data" -DLogDir="$dir/log" -DCacheDir="$dir/cache" \
  -DSpoolDir="$dir/spool" -DInitRunDir="$dir/run" \
  -DRunAsUser="$(id -un)" -DRunAsGroup="$(id -gn)" >"$dir/out" 2>&1; then
  cat "$dir/out"
  echo "FAIL: icinga2 daemon -C rejected the configuration"
  exit 1
fi
grep -E 'warning/|critical/' "$dir/out" && { echo "FAIL: icinga2 warnings"; exit 1; }
grep 'Finished validating' "$dir/out"

# The objects file holds one netstring per object: LEN:JSON,
help=
if [ -n "$check" ]; then help=$("$check" --help || true); fi
python3 - "$dir/cache/icinga2.debug" "$case_" "$help" <<'PY'
import json, re, sys
path, case, helptext = sys.argv[1], sys.argv[2], sys.argv[3]
data = open(path, encoding="utf-8").read()
objs, i = [], 0
while i < len(data):
    colon = data.index(":", i)
    n = int(data[i:colon])
    objs.append(json.loads(data[colon + 1:colon + 1 + n]))
    i = colon + 1 + n + 1
by = {}
for o in objs:
    props = o["properties"]
    by.setdefault(o["type"], {})[props.get("__name", o["name"])] = props

def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)

cmd = by.get("CheckCommand", {}).get("smtp_ports")
if cmd is None:
    fail("no CheckCommand smtp_ports")
if not cmd["command"][0].endswith("/check_smtp_ports"):
    fail("command is %r" % cmd["command"])
args = cmd["arguments"]
if args["-H"].get("value") != "$smtp_ports_address$":
    fail("-H does not take $smtp_ports_address$")
if cmd["vars"]["smtp_ports_address"] != "$check_address$":
    fail("smtp_ports_address does not default to $check_address$")
for a in args.values():
    if isinstance(a, dict) and not a.get("description"):
        fail("argument without description: %r" % a)
flags = [k for k, a in args.items() if "set_if" in a]
if sorted(flags) != sorted(["-4", "-6", "--no-verify", "--all-addresses", "-v", "--send", "--check-injection", "--no-tls-trial"]):
    fail("set_if arguments are %r" % flags)
# Secrets never on the command line: only a file name or a variable name.
for k, a in args.items():
    if "password" in k and k not in ("--auth-password-file", "--auth-password-env"):
        fail("argument %s would put a secret in argv" % k)
if cmd.get("env", {}).get("SMTP_PROBE_PASSWORD") != "$smtp_ports_auth_password$":
    fail("the password does not reach the plugin through SMTP_PROBE_PASSWORD")
if helptext:
    short = {"--hostname": "-H", "--port": "-p", "--ipv4": "-4", "--ipv6": "-6",
             "--warning": "-w", "--critical": "-c", "--cert-days": "-D",
             "--timeout": "-t", "--verbose": "-v"}
    longs = set(re.findall(r"(--[a-z][a-z0-9-]*[a-z0-9])", helptext)) - {"--help", "--version"}
    missing = sorted(o for o in longs if o not in args and short.get(o) not in args)
    if missing:
        fail("options of check_smtp_ports --help missing from the CheckCommand: %s" % " ".join(missing))
    print("ok: all %d long options of --help are CheckCommand arguments" % len(longs))
print("ok: CheckCommand smtp_ports with %d arguments (%d set_if)" % (len(args), len(flags)))

services = by.get("Service", {})
want = {
    "command": {"mail.example.org!smtp-submission", "mail.example.org!smtp-relay",
                "mail.example.org!smtp-auth",
                "mail6.example.org!smtp-submission"},
    "scale-out": {"mail-a.example.org!smtp-submission", "mail-b.example.org!smtp-submission",
                  "mail-c.example.org!smtp-submission"},
}[case]
if set(services) != want:
    fail("services %r, expected %r" % (sorted(services), sorted(want)))
for name, s in services.items():
    if s["check_command"] != "smtp_ports":
        fail("%s check_command %r" % (name, s["check_command"]))
if case == "scale-out":
    zones = {n: p["zone"] for n, p in services.items()}
    if zones["mail-a.example.org!smtp-submission"] != "site-a" or \
       zones["mail-b.example.org!smtp-submission"] != "site-b":
        fail("services not in their host's satellite zone: %r" % zones)
    c = services["mail-c.example.org!smtp-submission"]
    if c.get("command_endpoint") != "mail-c.example.org":
        fail("agent service has no command_endpoint: %r" % c.get("command_endpoint"))
print("ok: services %s" % ", ".join(sorted(services)))
PY
