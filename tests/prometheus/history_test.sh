#!/usr/bin/env bash
# history_test.sh - the landing page's recent probes in a real browser
# (issue 17): headless Chromium loads / after a few probes; its DOM must
# list them newest first with each port's code, bounded by
# --history.limit; each row's /logs?id= serves that probe's log (dialogue
# included, no probe again); an entry pushed out of the ring is gone (404).
# A screenshot of the page is kept as a test artefact.
#
# usage: history_test.sh EXPORTER FAULT_SERVER MAKE_CERTS ARTEFACT_DIR
#
# Everything runs inside a private network namespace (unshare -n) that has
# only its own loopback: the browser cannot reach anything else. The fault
# server listens on 127.0.40.51:2525 (STARTTLS), the exporter on
# 127.0.40.50:9595; port 1 there is closed (the failing probe).
set -euo pipefail
exporter=${1:?usage: history_test.sh EXPORTER FAULT_SERVER MAKE_CERTS ARTEFACT_DIR}
server=${2:?}
make_certs=${3:?}
artefacts=${4:?}

# Print a message and fail.
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

browser=$(command -v chromium || true)
[ -n "$browser" ] || fail "chromium is not installed (scripts/install-deps.sh installs it)"
[ -x "$exporter" ] || fail "no $exporter"
[ -x "$server" ] || fail "no $server"

if [ "${SP_IN_NETNS:-}" != 1 ]; then
  # Re-run this script in a new network namespace with its loopback up.
  # shellcheck disable=SC2016 # $0 and $@ expand in the inner bash
  exec unshare --net -- env SP_IN_NETNS=1 bash -c \
    'ip link set lo up && exec bash "$0" "$@"' "$0" "$@"
fi

tmp=$(mktemp -d /tmp/sp-history.XXXXXX)
pids=()
# Stop what this test started and remove its directory.
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

bash "$make_certs" "$tmp/certs" >"$tmp/certs.log" 2>&1 || fail "make-certs.sh failed"
"$server" --listen 127.0.40.51:2525=starttls --cert-prefix "$tmp/certs/server" \
  --ready-file "$tmp/server.ready" --log "$tmp/server.log" 2>"$tmp/server.err" &
pids+=($!)
cat >"$tmp/modules.yml" <<EOF
modules:
  good:
    ports: [2525]
    timeout: 5s
    server_name: mail.smtp-probe.test
    ca_file: $tmp/certs/ca.pem
  closed:
    ports: [1]
    timeout: 2s
EOF
"$exporter" --config.file="$tmp/modules.yml" --web.listen-address=127.0.40.50:9595 \
  --history.limit=3 2>"$tmp/exporter.log" &
pids+=($!)
URL=http://127.0.40.50:9595
for _ in $(seq 1 100); do
  [ -e "$tmp/server.ready" ] && curl -sf --max-time 2 "$URL/-/healthy" >/dev/null && break
  sleep 0.1
done
[ -e "$tmp/server.ready" ] || fail "the fault server did not get ready: $(cat "$tmp/server.err")"
curl -sf --max-time 2 "$URL/-/healthy" >/dev/null || fail "the exporter did not come up"

# Four probes: good, good, closed, good. The ring keeps the last three.
for m in good good closed good; do
  curl -s --max-time 20 -o /dev/null "$URL/probe?target=127.0.40.51&module=$m"
done

# The browser's DOM of the landing page.
flags=(--headless --no-sandbox --disable-gpu --no-first-run --disable-sync
  --disable-background-networking --disable-component-update
  --disable-default-apps --disable-extensions --user-data-dir="$tmp/profile")
timeout 60 "$browser" "${flags[@]}" --dump-dom "$URL/" >"$tmp/dom.html" 2>"$tmp/browser.err" ||
  fail "chromium --dump-dom failed: $(tail -n 5 "$tmp/browser.err")"
grep -q 'id="history"' "$tmp/dom.html" || fail "no recent-probes table in the DOM"
rows=$(grep -c '<a href="logs?id=' "$tmp/dom.html" || true)
[ "$rows" = 3 ] || fail "the DOM lists $rows recent probes, want 3 (--history.limit=3)"
echo "ok: the DOM lists 3 recent probes"
# Newest first: ids 4, 3, 2; the closed one shows its code.
order=$(grep -o 'logs?id=[0-9]*' "$tmp/dom.html" | tr '\n' ' ')
[ "$order" = "logs?id=4 logs?id=3 logs?id=2 " ] || fail "rows not newest first: $order"
grep -q '<td>2525 ok OK</td>' "$tmp/dom.html" || fail "no '2525 ok OK' row"
grep -q '<td>1 connect_refused CRITICAL</td>' "$tmp/dom.html" || fail "the failed port's code is not shown"
echo "ok: newest first, codes shown"

# The stored log of the failed probe, without probing again.
before=$(grep -c 'accepted on' "$tmp/server.log" || true)
code=$(curl -s --max-time 5 -o "$tmp/log3.txt" -w '%{http_code}' "$URL/logs?id=3")
[ "$code" = 200 ] || fail "/logs?id=3: HTTP $code"
grep -q 'connect_refused' "$tmp/log3.txt" || fail "the log of probe 3 lacks its code"
code=$(curl -s --max-time 5 -o "$tmp/log4.txt" -w '%{http_code}' "$URL/logs?id=4")
[ "$code" = 200 ] || fail "/logs?id=4: HTTP $code"
grep -q 'S: 220 ' "$tmp/log4.txt" || fail "the log of probe 4 lacks the dialogue"
after=$(grep -c 'accepted on' "$tmp/server.log" || true)
[ "$before" = "$after" ] || fail "reading a log probed again ($before -> $after connections)"
code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "$URL/logs?id=1")
[ "$code" = 404 ] || fail "/logs?id=1 (pushed out of the ring): HTTP $code, want 404"
echo "ok: /logs?id= serves stored logs; an entry out of the ring is gone"

# A screenshot of the page, kept as a test artefact.
mkdir -p "$artefacts"
timeout 60 "$browser" "${flags[@]}" --window-size=1200,900 \
  --screenshot="$artefacts/landing.png" "$URL/" >/dev/null 2>>"$tmp/browser.err" ||
  fail "chromium --screenshot failed"
[ "$(head -c 8 "$artefacts/landing.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
  fail "the screenshot is not a PNG"
echo "ok: screenshot saved to $artefacts/landing.png"
echo PASS
