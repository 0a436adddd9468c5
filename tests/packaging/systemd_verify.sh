#!/usr/bin/env bash
# systemd_verify.sh SRCDIR [EXPORTER] - `systemd-analyze verify` accepts the
# exporter's unit without a single message (unknown keys only warn, so any
# output fails the test), and the hardening the packaging promises is in it.
# systemd does not need to be running. ExecStart must name an existing
# executable: a copy of the unit is pointed at the built exporter (or
# /bin/true when there is none); nothing else changes. Man page references
# are not resolved here (--man=no; the pages are checked by packaging.man).
set -euo pipefail
unit=$1/packaging/systemd/smtp-probe-exporter.service
exe=${2:-/bin/true}
command -v systemd-analyze >/dev/null || { echo "systemd-analyze not installed (package systemd)"; exit 1; }
dir=$(mktemp -d /tmp/sp-systemd.XXXXXX)
trap 'rm -rf "$dir"' EXIT
sed "s|^ExecStart=/usr/bin/smtp_exporter|ExecStart=$exe|" "$unit" >"$dir/smtp-probe-exporter.service"
grep -q "^ExecStart=$exe " "$dir/smtp-probe-exporter.service"
out=$(systemd-analyze verify --man=no "$dir/smtp-probe-exporter.service" 2>&1) || {
  echo "$out"; echo "FAIL: systemd-analyze verify"; exit 1; }
[ -z "$out" ] || { echo "$out"; echo "FAIL: systemd-analyze verify printed messages"; exit 1; }
for want in DynamicUser=yes NoNewPrivileges=yes ProtectSystem=strict PrivateTmp=yes \
  'CapabilityBoundingSet=$' 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX$'; do
  grep -q "^$want" "$unit" || { echo "FAIL: unit lacks $want"; exit 1; }
done
echo "ok: unit verifies and is hardened"
# Informational: the exposure score (lower is better).
systemd-analyze security --offline=true "$dir/smtp-probe-exporter.service" 2>/dev/null | tail -1 || true
