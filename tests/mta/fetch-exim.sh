#!/usr/bin/env bash
# Fetch Debian 12's Exim daemon package into a cache, without installing it:
# exim4-daemon-light conflicts with postfix (both are mail-transport-agent),
# and the tests only need its binary, which tests/mta/exim.sh unpacks into
# its own temporary directory (dpkg-deb -x). The binary's shared libraries
# are ordinary packages in scripts/install-deps.sh.
#
# usage: fetch-exim.sh [CACHE_DIR]   (default /var/cache/smtp-probe)
# Writes CACHE_DIR/exim4-daemon-light.deb. Idempotent: does nothing when a
# valid package is already there. Called by scripts/install-deps.sh (root).
set -euo pipefail
cache=${1:-${SP_CACHE_DIR:-/var/cache/smtp-probe}}
deb=$cache/exim4-daemon-light.deb
pkg=exim4-daemon-light

# True when $1 is a readable exim4-daemon-light 4.x package.
valid_deb() {
  [ -s "$1" ] && [ "$(dpkg-deb -f "$1" Package 2>/dev/null)" = "$pkg" ] &&
    dpkg-deb -c "$1" 2>/dev/null | grep ' \./usr/sbin/exim4$' >/dev/null
}

if valid_deb "$deb"; then
  echo "fetch-exim.sh: $deb present ($(dpkg-deb -f "$deb" Version))"
  exit 0
fi

mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# apt's download sandbox user must be able to write there.
if getent passwd _apt >/dev/null; then chown _apt "$tmp"; fi

# Fresh machines (containers) may have no package lists yet.
if ! (cd "$tmp" && apt-get -q download "$pkg"); then
  apt-get -o DPkg::Lock::Timeout=600 update -q
  (cd "$tmp" && apt-get -q download "$pkg")
fi
got=$(find "$tmp" -maxdepth 1 -name "${pkg}_*.deb" | head -n 1)
if [ -z "$got" ] || ! valid_deb "$got"; then
  echo "fetch-exim.sh: apt-get download $pkg gave no usable package" >&2
  exit 1
fi
mv -f "$got" "$deb"
echo "fetch-exim.sh: $deb ($(dpkg-deb -f "$deb" Version))"
