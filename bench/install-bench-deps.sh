#!/usr/bin/env bash
# Install the extra Debian 12 packages the benchmark suite needs (on top of
# scripts/install-deps.sh): check_smtp/check_ssmtp (monitoring-plugins-basic),
# blackbox_exporter, hyperfine and gnuplot. Kept apart from the build/test
# dependencies so CI stays light. Idempotent; must run as root.
# --no-install-recommends, and a policy-rc.d that blocks service starts so
# prometheus-blackbox-exporter does not start a system daemon.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "install-bench-deps.sh: must run as root (apt-get install)" >&2
  exit 1
fi

PKGS=(
  monitoring-plugins-basic     # check_smtp, check_ssmtp (2.3.3)
  prometheus-blackbox-exporter # the exporter we compare with
  hyperfine                    # process benchmarks
  gnuplot-nox                  # the scaling plot (PNG)
  procps                       # ps, for RSS
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-bench-deps.sh: all packages present"
  exit 0
fi

policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  created_policy=1
fi
# Remove only the policy file this script created.
cleanup() { if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
