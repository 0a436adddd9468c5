#!/usr/bin/env bash
# Install every Debian 12 package smtp-probe needs to build, test and demo,
# plus any package names given as arguments (bench/install-bench-deps.sh
# passes its own). Idempotent; safe to run repeatedly. Blocks service auto-start while installing
# so packages (postfix, collectd, nagios4, prometheus, dnsmasq) do not start
# system daemons that take ports and CPU. Must run as root.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: must run as root (apt-get install)" >&2
  exit 1
fi

PKGS=(
  # build
  build-essential cmake pkg-config clang-format
  libssl-dev libc-ares-dev libcmocka-dev libmicrohttpd-dev libyaml-dev collectd-dev
  # real daemons used by the tests and the demo
  postfix sasl2-bin libsasl2-modules dnsmasq-base
  collectd-core collectd-utils nagios4-core prometheus
  # test tooling
  openssl iproute2 nftables procps curl ca-certificates python3 bind9-dnsutils valgrind
  # exporter tests: bcrypt hashes (mkpasswd) for basic auth, HTTP load (wrk)
  whois wrk
  # packaging checks (tests/packaging) and packaging/build-deb.sh
  icinga2-bin icinga2-common systemd groff-base man-db debhelper dpkg-dev lintian fakeroot python3-yaml shellcheck
  # fuzzing (tests/fuzz, SP_FUZZ=ON): clang with libFuzzer and the sanitizer runtimes
  clang libclang-rt-14-dev
  # tests/mta: aiosmtpd, and the shared libraries of Exim's daemon binary
  # (exim4-daemon-light conflicts with postfix, so only its .deb is fetched
  # below, by tests/mta/fetch-exim.sh, never installed)
  python3-aiosmtpd
  # tests/prometheus/history_test.sh: the landing page in a real browser
  chromium
  libc6 libcrypt1 libdb5.3 libgnutls-dane0 libgnutls30 libidn12 libidn2-0 libnsl2 libpcre2-8-0
)

PKGS+=("$@")

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps.sh: all packages present"
  # tests/mta: Exim's .deb in /var/cache/smtp-probe (idempotent)
  bash "$(dirname "$0")/../tests/mta/fetch-exim.sh"
  exit 0
fi

policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  created_policy=1
fi
cleanup() { if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
echo "postfix postfix/mailname string smtp-probe.test" | debconf-set-selections
apt-get -o DPkg::Lock::Timeout=600 update -q
apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
# tests/mta: Exim's .deb in /var/cache/smtp-probe (idempotent)
bash "$(dirname "$0")/../tests/mta/fetch-exim.sh"
