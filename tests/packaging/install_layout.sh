#!/usr/bin/env bash
# install_layout.sh BUILDDIR - `cmake --install` with prefix /usr into a
# temporary DESTDIR puts every file where the Debian packages have it
# (packaging/debian/*.install list the same paths): plugin directories,
# /etc config, unit, man pages, docs. Binaries are only checked when built.
set -euo pipefail
build=$1
dir=$(mktemp -d /tmp/sp-install.XXXXXX)
trap 'rm -rf "$dir"' EXIT
# Install with the build's own prefix; paths below are computed from its
# cache the way GNUInstallDirs does (with prefix /usr, what debhelper uses,
# they are exactly the .deb's paths: $prefix/lib/nagios/plugins, /etc/...).
cache() { sed -n "s|^$1:[A-Z]*=||p" "$build/CMakeCache.txt"; }
prefix=$(cache CMAKE_INSTALL_PREFIX)
sysconf=$(cache CMAKE_INSTALL_SYSCONFDIR)
case "$sysconf" in
  /*) ;;
  *) if [ "$prefix" = /usr ]; then sysconf=/etc; else sysconf=$prefix/${sysconf:-etc}; fi ;;
esac
unitdir=$(cache SP_SYSTEMD_UNITDIR)
echo "prefix $prefix, sysconfdir $sysconf, unit dir $unitdir"
DESTDIR=$dir/root cmake --install "$build" >"$dir/log" 2>&1 || {
  cat "$dir/log"; echo "FAIL: cmake --install"; exit 1; }
root=$dir/root
status=0
want() { if [ -e "$root$1" ]; then echo "ok: $1"; else echo "FAIL: missing $1"; status=1; fi; }
if [ -d "$build/nagios" ] && [ -x "$build/nagios/check_smtp_ports" ]; then
  want "$prefix"/lib/nagios/plugins/check_smtp_ports
  want "$prefix"/share/icinga2/include/plugins-contrib.d/smtp-probe.conf
  want "$prefix"/share/man/man1/check_smtp_ports.1
  want "$prefix"/share/doc/smtp-probe-nagios/examples/nagios/commands.cfg
fi
if [ -f "$build/collectd/smtp_probe.so" ]; then
  want "$prefix"/lib/collectd/smtp_probe.so
  want "$sysconf"/collectd/collectd.conf.d/smtp_probe.conf
  want "$prefix"/share/man/man5/smtp_probe.5
fi
if [ -x "$build/prometheus/smtp_exporter" ]; then
  want "$prefix"/bin/smtp_exporter
  want "$sysconf"/smtp-probe/smtp_exporter.yml
  want "$unitdir"/smtp-probe-exporter.service
  want "$prefix"/share/man/man1/smtp_exporter.1
  want "$prefix"/share/doc/smtp-probe-exporter/examples/grafana/smtp-probe-dashboard.json
  want "$prefix"/share/doc/smtp-probe-exporter/examples/prometheus/smtp-probe.rules.yml
fi
# Nothing may land in a multiarch directory (plugins must not follow LIBDIR).
if find "$root" -path '*-linux-gnu*' | grep .; then
  echo "FAIL: files outside the Debian layout"; status=1
fi
exit $status
