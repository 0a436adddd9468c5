#!/usr/bin/env bash
# collectd_config.sh SRCDIR PLUGIN_SO - the collectd files load:
#  1. the conf.d snippet (packaging/collectd/smtp_probe.conf) is entirely
#     commented out, so installing the package changes nothing;
#  2. the snippet with the first "#" removed from LoadPlugin on, and the
#     example (examples/collectd/smtp_probe-example.conf), are accepted by
#     the built plugin in a private collectd run with -T (load, configure,
#     one read, exit): the plugin loads and logs no error. The example's
#     host names are replaced by 127.0.60.1 (the packaging tests' loopback
#     address, nobody listening) so nothing leaves the machine.
# (`collectd -t` of Debian 12's collectd 5.12 does not read the config at
# all, so -T is used.) The wrapper config sets Hostname (and FQDNLookup
# false) so the run does not depend on the machine's host name resolving:
# without it collectd looks its own name up and exits when that fails.
set -euo pipefail
pkg=$1/packaging
so=$2
dir=$(mktemp -d /tmp/sp-collectd.XXXXXX)
trap 'rm -rf "$dir"' EXIT
snippet=$pkg/collectd/smtp_probe.conf

bad=$(grep -v '^[[:space:]]*$' "$snippet" | grep -v '^#' || true)
if [ -n "$bad" ]; then
  echo "$bad"
  echo "FAIL: the conf.d snippet has lines that are not commented out"
  exit 1
fi
grep -q '^#LoadPlugin smtp_probe$' "$snippet" || { echo "FAIL: no #LoadPlugin smtp_probe"; exit 1; }
echo "ok: conf.d snippet is all comments"

sed '/^#LoadPlugin/,$ s/^#//' "$snippet" >"$dir/snippet.conf"
cp "$pkg/examples/collectd/smtp_probe-example.conf" "$dir/example.conf"
for f in "$dir/snippet.conf" "$dir/example.conf"; do
  sed -i 's/"[a-z0-9.-]*\.example\.org"/"127.0.60.1"/' "$f"
  if grep -q 'example\.org' "$f"; then echo "FAIL: an outside name is left in $f"; exit 1; fi
done

# A plugin directory with the plugin under test and collectd's logfile.
mkdir -p "$dir/plugins"
cp "$so" "$dir/plugins/smtp_probe.so"
cp /usr/lib/collectd/logfile.so "$dir/plugins/logfile.so"

status=0
for f in snippet example; do
  mkdir -p "$dir/base-$f"
  cat >"$dir/collectd-$f.conf" <<CFG
Hostname "smtp-probe-test"
FQDNLookup false
BaseDir "$dir/base-$f"
PIDFile "$dir/base-$f/collectd.pid"
PluginDir "$dir/plugins"
TypesDB "/usr/share/collectd/types.db"
Interval 60
LoadPlugin logfile
<Plugin logfile>
  LogLevel info
  File STDERR
</Plugin>
Include "$dir/$f.conf"
CFG
  timeout 60 collectd -T -C "$dir/collectd-$f.conf" >"$dir/out-$f" 2>&1 || {
    cat "$dir/out-$f"; echo "FAIL: collectd -T ($f) exited non-zero"; status=1; continue; }
  if ! grep -q 'plugin "smtp_probe" successfully loaded' "$dir/out-$f"; then
    cat "$dir/out-$f"; echo "FAIL: smtp_probe not loaded ($f)"; status=1; continue
  fi
  if grep -Ei 'smtp_probe.*(error|skipping|unknown|fail)|Found a configuration for the `smtp_probe' "$dir/out-$f"; then
    echo "FAIL: smtp_probe complained about the $f config"; status=1; continue
  fi
  echo "ok: $f config loads without errors"
done
exit $status
