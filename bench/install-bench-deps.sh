#!/usr/bin/env bash
# Install the extra Debian 12 packages the benchmark suite needs (on top of
# scripts/install-deps.sh): check_smtp/check_ssmtp (monitoring-plugins-basic),
# blackbox_exporter, hyperfine and gnuplot. Kept apart from the build/test
# dependencies so CI stays light. Idempotent; must run as root.
# --no-install-recommends, and a policy-rc.d that blocks service starts so
# prometheus-blackbox-exporter does not start a system daemon.
set -euo pipefail

PKGS=(
  monitoring-plugins-basic     # check_smtp, check_ssmtp (2.3.3)
  prometheus-blackbox-exporter # the exporter we compare with
  hyperfine                    # process benchmarks
  gnuplot-nox                  # the scaling plot (PNG)
  procps                       # ps, for RSS
)

# The same installer as the tests (policy-rc.d, --no-install-recommends,
# waiting for the dpkg lock), with our packages added.
exec bash "$(dirname "$0")/../scripts/install-deps.sh" "${PKGS[@]}"
