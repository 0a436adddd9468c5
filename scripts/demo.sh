#!/usr/bin/env bash
# THE demo: install dependencies, build, bring up the private loopback mail
# environment (a real Postfix on 127.0.10.1 with ports 25, 465, 587, 2525 and
# a resolver on 127.0.10.53:5300), run check_smtp_ports against it, then the
# collectd and exporter demos when they exist, and stop everything at the end.
# Run as root from the repository. Nothing outside loopback is contacted.
#
# Environment: SP_BUILD_DIR (default: build), SP_JOBS (default: 2).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${SP_BUILD_DIR:-build}
jobs=${SP_JOBS:-2}
run=$root/demo-run
envdir=$run/testenv

# Print a section heading.
section() { printf '\n==== %s ====\n' "$*"; }

# Show a command, run it, show its exit code (non-zero is expected for the
# failure examples, so it never stops the demo).
show() {
  printf '\n$ %s\n' "$*"
  local rc=0
  "$@" || rc=$?
  printf '(exit %d)\n' "$rc"
}

section "dependencies"
bash scripts/install-deps.sh

section "build"
cmake -S . -B "$build" -DSP_WERROR=ON >/dev/null
cmake --build "$build" -j"$jobs"
check=$root/$build/nagios/check_smtp_ports
[ -x "$check" ] || {
  echo "demo: $check was not built" >&2
  exit 1
}

section "mail environment (private Postfix + dnsmasq on loopback)"
mkdir -p "$run"
# Stop the environment however the demo ends.
stop_env() { bash "$root/tests/env/mailenv.sh" stop "$envdir" || true; }
trap stop_env EXIT
bash tests/env/mailenv.sh start "$envdir"
# shellcheck source=/dev/null
. "$envdir/env.sh"

section "check_smtp_ports: all four ports by address, certificate checked for the mail name"
show "$check" -H "$SP_POSTFIX_ADDR" -p 25,465,587,2525 --cafile "$SP_CA_FILE" --sni "$SP_MAIL_NAME"

section "check_smtp_ports: by name through the test resolver, verbose"
show "$check" -H "$SP_MAIL_NAME" -p 587,465 --cafile "$SP_CA_FILE" --dns-server "$SP_DNS_SERVER" -v

section "check_smtp_ports: wrong TLS mode (STARTTLS asked on the implicit-TLS port 465)"
show "$check" -H "$SP_POSTFIX_ADDR" -p 465 --tls starttls --cafile "$SP_CA_FILE" --sni "$SP_MAIL_NAME"

section "check_smtp_ports: certificate checked for a name it does not carry (--sni other.example)"
show "$check" -H "$SP_POSTFIX_ADDR" -p 587 --cafile "$SP_CA_FILE" --sni other.example

section "check_smtp_ports: a port where nothing listens"
show "$check" -H "$SP_POSTFIX_ADDR" -p 2526 --cafile "$SP_CA_FILE"

# Teammates' demos get the build directory and the environment directory as
# arguments; env.sh's variables (SP_CA_FILE, SP_POSTFIX_ADDR, ...) are
# exported too. They must stop whatever they start.

# --- collectd demo ---
if [ -f scripts/demo-collectd.sh ]; then
  section "collectd plugin"
  bash scripts/demo-collectd.sh "$root/$build" "$envdir" || echo "(collectd demo exited $?)"
fi

# --- exporter demo ---
if [ -f scripts/demo-exporter.sh ]; then
  section "Prometheus exporter"
  bash scripts/demo-exporter.sh "$root/$build" "$envdir" || echo "(exporter demo exited $?)"
fi

section "done; stopping the mail environment"
