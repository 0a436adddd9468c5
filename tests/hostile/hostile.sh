#!/usr/bin/env bash
# One memory-bounds scenario: start the fault server (a well-behaved
# starttls listener plus, unless the driver serves the hostile side
# itself, a hostile listener), run hostile_rss against both, stop the
# server.
#
# usage: hostile.sh --driver BIN --server BIN --certs DIR SCENARIO
#        hostile.sh --certs DIR make-certs
#        hostile.sh --list
#
# Addresses: 127.0.20.5 only (inside the fault server's 127.0.20.x range;
# no other test uses .5), one port pair per scenario so scenarios can run
# in parallel.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ADDR=127.0.20.5
driver="" server="" certs=""
while [ $# -gt 1 ]; do
  case $1 in
  --driver) driver=$2; shift 2 ;;
  --server) server=$2; shift 2 ;;
  --certs) certs=$2; shift 2 ;;
  *) break ;;
  esac
done
scenario=${1:?usage: hostile.sh --driver BIN --server BIN --certs DIR SCENARIO}

# SCENARIO -> "OKPORT HOSTILEPORT SERVERMODE|serve:KIND TLS EXPECT TIMEOUT"
table() {
  case $1 in
  endless_multiline) echo "25100 25101 endless-multiline starttls protocol_error 10" ;;
  endless_line) echo "25110 25111 endless-line starttls protocol_error 10" ;;
  huge_reply) echo "25120 25121 huge-reply starttls protocol_error 10" ;;
  garbage) echo "25130 25131 garbage starttls protocol_error 10" ;;
  garbage_flood) echo "25140 25141 serve:flood-binary starttls protocol_error 10" ;;
  flood_after_banner) echo "25150 25151 serve:flood-after-banner starttls protocol_error 10" ;;
  starttls_stall) echo "25160 25161 starttls-stall starttls read_timeout 3" ;;
  implicit_stall) echo "25170 25171 silent implicit read_timeout 3" ;;
  bound_selftest) echo "25180 25181 endless-line starttls protocol_error 10" ;;
  *) return 1 ;;
  esac
}
all="endless_multiline endless_line huge_reply garbage garbage_flood flood_after_banner starttls_stall implicit_stall bound_selftest"

if [ "$scenario" = --list ]; then
  printf '%s\n' $all
  exit 0
fi
if [ "$scenario" = make-certs ]; then
  exec bash "$here/../env/make-certs.sh" "${certs:?--certs DIR}"
fi
row=$(table "$scenario") || { echo "hostile.sh: unknown scenario $scenario" >&2; exit 2; }
read -r okport badport mode tls expect timeout <<<"$row"
[ -x "$driver" ] && [ -x "$server" ] && [ -f "$certs/ca.pem" ] || {
  echo "hostile.sh: need --driver, --server and --certs (with ca.pem)" >&2
  exit 2
}

tmp=$(mktemp -d /tmp/hostile.XXXXXX)
spid=""
cleanup() {
  if [ -n "$spid" ]; then
    kill "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

listen=(--listen "$ADDR:$okport=starttls")
serve=()
case $mode in
serve:*) serve=(--serve "${mode#serve:}") ;;
*) listen+=(--listen "$ADDR:$badport=$mode") ;;
esac
"$server" --cert-prefix "$certs/server" --ready-file "$tmp/ready" \
  "${listen[@]}" 2>"$tmp/server.err" &
spid=$!
# Wait (bounded) for the server's ready file.
for _ in $(seq 1 200); do
  [ -e "$tmp/ready" ] && break
  kill -0 "$spid" 2>/dev/null || { cat "$tmp/server.err" >&2; exit 1; }
  sleep 0.05
done
[ -e "$tmp/ready" ] || { echo "hostile.sh: fault server not ready" >&2; exit 1; }

args=(--ok "$ADDR:$okport" --hostile "$ADDR:$badport" --tls "$tls"
  --expect "$expect" --timeout "$timeout" --probes "${HOSTILE_PROBES:-50}"
  --cafile "$certs/ca.pem" --label "$scenario" ${serve[@]+"${serve[@]}"})
if [ "$scenario" != bound_selftest ]; then
  "$driver" "${args[@]}"
  exit $?
fi

# The bound's self-test: hold 300 KiB more per hostile probe (what a leak
# would do); the driver must notice and fail, naming the RSS bound.
set +e
out=$("$driver" "${args[@]}" --rounds 1 --self-test-inflate 300)
rc=$?
set -e
printf '%s\n' "$out"
if grep -q "not judged under AddressSanitizer" <<<"$out"; then
  echo "bound_selftest: RSS is not judged in ASan builds: skipped"
  exit 77
fi
if [ "$rc" -eq 1 ] && grep -q "FAIL: RSS excess" <<<"$out"; then
  echo "bound_selftest: the bound check caught the inflated probes: ok"
  exit 0
fi
echo "bound_selftest: FAIL: the driver did not flag 300 KiB extra per probe (exit $rc)"
exit 1
