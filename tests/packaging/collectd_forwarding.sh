#!/usr/bin/env bash
# collectd_forwarding.sh SRCDIR PLUGIN_SO - the collectd scale-out recipe
# works: a probing collectd built from examples/collectd/forward-client.conf
# (smtp_probe + network <Server>, SecurityLevel Encrypt) sends its values to
# a central collectd built from forward-server.conf's <Plugin network>
# (<Listen> + AuthFile), which writes them with the csv plugin.
# Everything on loopback: the collector listens on 127.0.60.2:25826, the
# probed "mail server" is 127.0.60.1:587 where nobody listens (values are
# dispatched all the same: success 0, total latency). Both daemons are
# private instances in a temporary directory, stopped on exit.
set -euo pipefail
ex=$1/packaging/examples/collectd
so=$2
dir=$(mktemp -d /tmp/sp-cdfwd.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

mkdir -p "$dir/plugins" "$dir/server" "$dir/client" "$dir/csv"
cp "$so" "$dir/plugins/smtp_probe.so"
for p in network csv logfile; do cp "/usr/lib/collectd/$p.so" "$dir/plugins/"; done

globals() { # NAME
  cat <<CFG
Hostname "$1"
FQDNLookup false
BaseDir "$dir/$1"
PIDFile "$dir/$1/collectd.pid"
PluginDir "$dir/plugins"
TypesDB "/usr/share/collectd/types.db"
Interval 1
LoadPlugin logfile
<Plugin logfile>
  LogLevel info
  File "$dir/$1.log"
</Plugin>
CFG
}

# Central side: the example's <Plugin network> block, its credentials file,
# and csv instead of rrdtool (librrd is not installed here).
{
  globals server
  echo 'LoadPlugin network'
  sed -n '/^<Plugin network>/,/^<\/Plugin>/p' "$ex/forward-server.conf" |
    sed "s|\"0.0.0.0\"|\"127.0.60.2\"|; s|\"/etc/collectd/network-passwords\"|\"$dir/network-passwords\"|"
  printf 'LoadPlugin csv\n<Plugin csv>\n  DataDir "%s"\n  StoreRates false\n</Plugin>\n' "$dir/csv"
} >"$dir/server.conf"
if ! grep -q '127.0.60.2' "$dir/server.conf" || ! grep -q "$dir/network-passwords" "$dir/server.conf"; then
  cat "$dir/server.conf"; echo "FAIL: could not adapt forward-server.conf"; exit 1
fi
# The client example's user and password.
user=$(sed -n 's/^ *Username "\(.*\)"/\1/p' "$ex/forward-client.conf")
pass=$(sed -n 's/^ *Password "\(.*\)"/\1/p' "$ex/forward-client.conf")
printf '%s: %s\n' "$user" "$pass" >"$dir/network-passwords"
chmod 600 "$dir/network-passwords"

# Probing side: the whole client example with loopback addresses.
{
  globals client
  sed 's/"collector.example.org"/"127.0.60.2"/; s/"mail.example.org"/"127.0.60.1"/' "$ex/forward-client.conf"
} >"$dir/client.conf"
if grep -q 'example\.org' "$dir/client.conf"; then echo "FAIL: outside name left"; exit 1; fi

collectd -f -C "$dir/server.conf" >/dev/null 2>&1 &
pids+=($!)
# The collector is ready when its UDP socket is bound.
for _ in $(seq 1 100); do
  [[ $(ss -Huln 'sport = :25826') == *127.0.60.2* ]] && break
  sleep 0.1
done
[[ $(ss -Huln 'sport = :25826') == *127.0.60.2* ]] || { cat "$dir/server.log"; echo "FAIL: collector not listening"; exit 1; }

collectd -f -C "$dir/client.conf" >/dev/null 2>&1 &
pids+=($!)

# Wait (at most 30 s) for the client's smtp_probe values to arrive.
want=$dir/csv/client/smtp_probe-mail-587
for _ in $(seq 1 300); do
  if ls "$want"/bool-success-* >/dev/null 2>&1; then break; fi
  sleep 0.1
done
if ! ls "$want"/bool-success-* >/dev/null 2>&1; then
  echo "--- client log"; cat "$dir/client.log"; echo "--- server log"; cat "$dir/server.log"
  find "$dir/csv" -type f
  echo "FAIL: no smtp_probe values from the client at the collector"
  exit 1
fi
# success is 0: nobody listens on 127.0.60.1:587.
first=$(sed -n 2p "$want"/bool-success-*)
grep -q ',0\(\.0*\)\?\(e+00\)\?$' <<<"$first" ||
  { tail -n 3 "$want"/bool-success-*; echo "FAIL: success should be 0"; exit 1; }
ls -1 "$want"
if grep -qi 'smtp_probe.*error\|network.*error' "$dir/client.log" "$dir/server.log"; then
  grep -i 'error' "$dir/client.log" "$dir/server.log"; echo "FAIL: errors logged"; exit 1
fi
echo "ok: smtp_probe values forwarded (encrypted) from the probing collectd to the collector"
