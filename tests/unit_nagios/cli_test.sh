#!/bin/bash
# cli_test.sh PLUGIN - command-line behaviour of check_smtp_ports on
# loopback only: usage errors (probe option values refused with the core's
# sentence), --help/--version, a refused port, and a silent listener
# (banner_timeout) remapped by -t SECONDS:STATE; --tls before or after -p.
set -u
PLUGIN=$1
TMP=$(mktemp -d)
LISTENER_PID=
fails=0
passes=0

cleanup() {
  if [ -n "$LISTENER_PID" ]; then kill "$LISTENER_PID" 2>/dev/null; wait "$LISTENER_PID" 2>/dev/null; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

# check NAME WANT_RC REGEX_FIRST_LINE -- ARGS...: run the plugin, compare.
check() {
  local name=$1 want_rc=$2 regex=$3
  shift 4
  local out rc
  out=$(timeout 60 "$PLUGIN" "$@")
  rc=$?
  local first=${out%%$'\n'*}
  if [ "$rc" -eq "$want_rc" ] && [[ $first =~ $regex ]]; then
    passes=$((passes + 1))
    echo "ok: $name"
  else
    fails=$((fails + 1))
    echo "FAIL: $name: rc=$rc (want $want_rc), output:"
    printf '%s\n' "$out"
  fi
  LAST_OUT=$out
}

# A loopback port nobody listens on: bind port 0, note it, close it.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

check "bad option" 3 "^SMTP UNKNOWN - unknown option '--bogus'$" -- -H 127.0.0.1 --bogus
[[ $LAST_OUT == *$'\n'"Usage: check_smtp_ports"* ]] || { fails=$((fails + 1)); echo "FAIL: no usage line"; }
check "missing -H" 3 "^SMTP UNKNOWN - -H/--hostname is required$" -- -p 25
check "bad -t state" 3 "^SMTP UNKNOWN - -t/--timeout: state 'SOON'" -- -H 127.0.0.1 -t 3:SOON
check "too many ports" 3 "^SMTP UNKNOWN - -p/--port: more than 16 ports$" -- -H 127.0.0.1 -p 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17
check "bad --min-tls: the core's sentence" 3 "^SMTP UNKNOWN - --min-tls: '1\.4' is not 1\.0, 1\.1, 1\.2 or 1\.3$" -- -H 127.0.0.1 --min-tls 1.4
[[ $LAST_OUT == *$'\n'"Usage: check_smtp_ports"* ]] || { fails=$((fails + 1)); echo "FAIL: no usage line after a bad value"; }
check "bad -t seconds" 3 "^SMTP UNKNOWN - -t/--timeout: 'soon' is not a number of seconds 0-3600" -- -H 127.0.0.1 -t soon
check "bad --tls" 3 "^SMTP UNKNOWN - --tls: 'tls' is not auto, none, starttls or implicit$" -- -H 127.0.0.1 --tls tls
check "help" 3 "^check_smtp_ports v" -- --help
[[ $LAST_OUT == *"--cert-days"* ]] || { fails=$((fails + 1)); echo "FAIL: help lacks --cert-days"; }
check "version" 3 "^check_smtp_ports v[0-9]+\.[0-9]+\.[0-9]+$" -- -V

P=$(free_port)
check "refused port" 2 "^SMTP CRITICAL - $P connect_refused: .* \| .*'${P}_total'=[0-9]+\.[0-9]{6}s;;;0" -- -H 127.0.0.1 -p "$P" -t 5
check "refused is not a timeout" 2 "^SMTP CRITICAL - $P connect_refused" -- -H 127.0.0.1 -p "$P" -t 5:OK
check "-t 1m is a duration" 2 "^SMTP CRITICAL - $P connect_refused" -- -H 127.0.0.1 -p "$P" -t 1m
check "refused -v" 2 "^SMTP CRITICAL - $P connect_refused" -- -H 127.0.0.1 -p "$P" -v
[[ $LAST_OUT == *$'\n'"$P submission: CRITICAL connect_refused"* ]] || { fails=$((fails + 1)); echo "FAIL: no long output block"; }

# A listener that accepts but never greets: banner_timeout, a timeout code.
python3 - "$TMP/port" <<'PY' &
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(8)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(s.getsockname()[1]))
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
deadline = time.time() + 90
while time.time() < deadline:
    time.sleep(0.5)
PY
LISTENER_PID=$!
for _ in $(seq 1 100); do [ -s "$TMP/port" ] && break; sleep 0.1; done
if [ -s "$TMP/port" ]; then
  SP=$(cat "$TMP/port")
  check "silent server, default CRITICAL" 2 "^SMTP CRITICAL - $SP banner_timeout" -- -H 127.0.0.1 -p "$SP" -t 2
  check "silent server, -t 2:WARNING" 1 "^SMTP WARNING - $SP banner_timeout" -- -H 127.0.0.1 -p "$SP" -t 2:WARNING
  # --tls is request-wide: before or after -p, the same probe and summary.
  check "--tls implicit -p" 2 "^SMTP CRITICAL - $SP read_timeout: the TLS handshake stalled" -- -H 127.0.0.1 --tls implicit -p "$SP" -t 2
  before=${LAST_OUT%% | *}
  check "-p --tls implicit" 2 "^SMTP CRITICAL - $SP read_timeout: the TLS handshake stalled" -- -H 127.0.0.1 -p "$SP" --tls implicit -t 2
  if [ "$before" != "${LAST_OUT%% | *}" ]; then
    fails=$((fails + 1))
    echo "FAIL: --tls before and after -p differ: '$before' vs '${LAST_OUT%% | *}'"
  fi
else
  fails=$((fails + 1))
  echo "FAIL: silent listener did not start"
fi

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
