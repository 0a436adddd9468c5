#!/usr/bin/env bash
# The smtp-probe benchmark suite (not part of the tests' pass/fail).
#
# usage: bash bench/run.sh [--quick] [--no-install] [--worktree]
#                          [--only SECTIONS] [--out DIR]
#
#   --quick       small counts (development; results are noisy)
#   --no-install  do not run the package installers
#   --worktree    measure the working tree as it is (default: a snapshot of
#                 git HEAD, so the numbers belong to one commit)
#   --only LIST   comma-separated sections to run: floor,process,exporter,
#                 scaling,collectd (default: all)
#   --out DIR     where the table goes (default bench/results)
#
# Builds everything with CMake (Release) into build-bench/, installs the
# benchmark's packages (bench/install-bench-deps.sh), runs every section,
# prints the table and writes DIR/latest.md and DIR/scaling.png. Every
# figure is measured side by side in the same run and reported as a ratio.
# Servers: the real loopback Postfix of tests/env/mailenv.sh (127.0.10.1,
# held only while a section measures, then stopped) and our fault server in
# lean "starttls" mode with the ECDSA P-256 leaf on 127.0.20.9.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
WORK=$ROOT/build-bench
OUT=$HERE/results
QUICK=0
INSTALL=1
WORKTREE=0
ONLY=floor,process,exporter,scaling,collectd

while [ $# -gt 0 ]; do
  case $1 in
  --quick) QUICK=1 ;;
  --no-install) INSTALL=0 ;;
  --worktree) WORKTREE=1 ;;
  --only)
    ONLY=${2:?--only needs a list}
    shift
    ;;
  --out)
    OUT=${2:?--out needs a directory}
    shift
    ;;
  -h | --help)
    sed -n '2,21p' "$0"
    exit 0
    ;;
  *)
    echo "run.sh: unknown option $1 (see --help)" >&2
    exit 2
    ;;
  esac
  shift
done

# ---- Counts (full / quick) ------------------------------------------------
if [ "$QUICK" = 1 ]; then
  ROUNDS=2 N_INPROC=100 HF_ROUNDS=2 HF_RUNS=5 HF_WARM=2 N_EXP_SEQ=30 N_EXP_LOAD=120 N_EXP_FLOOR=300
  N_SCALE=1000 N_HOLD=200 COLLECTD_S=6 N_IDLE=300 N_IDLE_RUN=300
else
  ROUNDS=5 N_INPROC=600 HF_ROUNDS=6 HF_RUNS=20 HF_WARM=3 N_EXP_SEQ=150 N_EXP_LOAD=1000 N_EXP_FLOOR=1000
  N_SCALE=10000 N_HOLD=1000 COLLECTD_S=30 N_IDLE=2000 N_IDLE_RUN=3000
fi
INFLIGHT_N=10                  # row 2: probes in flight against Postfix
SCALE_LEVELS=(1 10 100 1000)   # row 5: in flight in one event loop
EXP_LEVELS=(1 16 64)           # row 4: concurrent requests

# ---- Addresses ---------------------------------------------------------------
PF=127.0.10.1                  # the test Postfix (tests/env)
MAIL_NAME=mail.smtp-probe.test
LEAN=127.0.20.9                # the lean fault server
LEAN_PORT0=29580               # its ports: one per scaling row, + exporters
EXP_ADDR=127.0.40.9            # smtp_exporter
EXP_PORT=29587
BB_ADDR=127.0.40.9             # blackbox_exporter
BB_PORT=29115
EHLO=bench.smtp-probe.test
PLUGINS=/usr/lib/nagios/plugins

mkdir -p "$WORK" "$OUT"
RUN=$WORK/run
rm -rf "$RUN"
mkdir -p "$RUN"
RAW=$RUN/raw.txt
: >"$RAW"
CLK_TCK=$(getconf CLK_TCK)
CA_PF=$WORK/mailenv/certs/ca.pem # the test Postfix's CA (tests/env/make-certs.sh)

# Print a progress line on stderr.
say() { echo "bench: $*" >&2; }

# Append one raw measurement line: TAG key=value...
record() { echo "$*" >>"$RAW"; }

# ---- Cleanup: everything this script started --------------------------------
PIDS=()
ENV_UP=0
EXEC_DIR="" # collectd exec script directory under /tmp, while it exists
ENVSH=$ROOT/tests/env/mailenv.sh # set to the measured revision's copy below
# Stop every process we started and the Postfix environment if it is up.
cleanup() {
  local p
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && wait "$p" 2>/dev/null || true
  done
  if [ "$ENV_UP" = 1 ]; then
    bash "$ENVSH" stop "$WORK/mailenv" || true
  fi
  if [ -n "$EXEC_DIR" ]; then rm -rf "$EXEC_DIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Forget a pid we stopped ourselves.
forget_pid() {
  local p keep=()
  for p in "${PIDS[@]:-}"; do [ "$p" != "$1" ] && [ -n "$p" ] && keep+=("$p"); done
  PIDS=("${keep[@]:-}")
}

# Stop one process we started (TERM, then wait).
stop_pid() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  forget_pid "$1"
}

# True when a section is selected.
want() { [[ ",$ONLY," == *",$1,"* ]]; }

# Wait until ADDR:PORT accepts connections (at most $3 seconds).
wait_port() {
  local i
  for ((i = 0; i < ${3:-30} * 10; i++)); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.1
  done
  say "nothing listens on $1:$2 after ${3:-30}s"
  return 1
}

# utime+stime of a process in clock ticks (children not included).
proc_ticks() {
  local s
  s=$(cat "/proc/$1/stat") || return 1
  s=${s##*) }
  awk '{print $12 + $13}' <<<"$s"
}

# utime+stime+cutime+cstime of a process and of all its live descendants
# (reaped children are in their parent's cutime/cstime), in clock ticks.
tree_ticks() {
  local total=0 pid s
  local -a queue=("$1")
  while [ ${#queue[@]} -gt 0 ]; do
    pid=${queue[0]}
    queue=("${queue[@]:1}")
    s=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    s=${s##*) }
    total=$((total + $(awk '{print $12 + $13 + $14 + $15}' <<<"$s")))
    for c in $(ps -o pid= --ppid "$pid" 2>/dev/null); do queue+=("$c"); done
  done
  echo "$total"
}

# A VmXXX value of a process in kB.
proc_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

# ---- Install and build ---------------------------------------------------------
if [ "$INSTALL" = 1 ]; then
  say "installing packages"
  bash "$ROOT/scripts/install-deps.sh" >"$RUN/install.log" 2>&1 ||
    { cat "$RUN/install.log" >&2; exit 1; }
  bash "$HERE/install-bench-deps.sh" >>"$RUN/install.log" 2>&1 ||
    { cat "$RUN/install.log" >&2; exit 1; }
fi

SRC=$ROOT
REV=worktree
if [ "$WORKTREE" = 0 ] && git -C "$ROOT" rev-parse --verify -q HEAD >/dev/null 2>&1; then
  REV=$(git -C "$ROOT" rev-parse --short HEAD)
  SRC=$WORK/src
  rm -rf "$SRC"
  mkdir -p "$SRC"
  git -C "$ROOT" archive HEAD | tar -x -C "$SRC"
elif [ "$WORKTREE" = 1 ] && git -C "$ROOT" rev-parse --verify -q HEAD >/dev/null 2>&1; then
  REV="$(git -C "$ROOT" rev-parse --short HEAD)+worktree"
fi
ENVSH=$SRC/tests/env/mailenv.sh
# A build directory configured from the other source tree is started afresh.
for d in "$WORK/build" "$WORK/bench"; do
  if [ -f "$d/CMakeCache.txt" ] &&
    ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$([ "$d" = "$WORK/build" ] && echo "$SRC" || echo "$HERE")" "$d/CMakeCache.txt"; then
    rm -rf "$d"
  fi
done
say "building $REV (Release) in $WORK"
{
  cmake -S "$SRC" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release -DSP_BUILD_TESTS=ON &&
    cmake --build "$WORK/build" -j2 --target smtpprobe check_smtp_ports smtp_fault_server &&
    cmake -S "$HERE" -B "$WORK/bench" -DCMAKE_BUILD_TYPE=Release -DSP_COMMON_DIR="$SRC/common" &&
    cmake --build "$WORK/bench" -j2
} >"$RUN/build.log" 2>&1 || { tail -n 40 "$RUN/build.log" >&2; exit 1; }
# The adapters that may still be in progress: build each on its own.
EXPORTER_WHY="" COLLECTD_WHY=""
cmake --build "$WORK/build" -j2 --target smtp_exporter >>"$RUN/build.log" 2>&1 ||
  EXPORTER_WHY="smtp_exporter does not build at $REV"
[ -x "$WORK/build/prometheus/smtp_exporter" ] ||
  EXPORTER_WHY=${EXPORTER_WHY:-"no smtp_exporter target at $REV"}
CD_TARGET=$(cmake --build "$WORK/build" --target help 2>/dev/null |
  sed -n 's/^\.\.\. \(smtp_probe_collectd\|smtp_probe\)\( .*\)\{0,1\}$/\1/p' | head -n 1)
if [ -n "$CD_TARGET" ]; then
  cmake --build "$WORK/build" -j2 --target "$CD_TARGET" >>"$RUN/build.log" 2>&1 ||
    COLLECTD_WHY="the collectd plugin does not build at $REV"
fi
COLLECTD_SO=$(find "$WORK/build/collectd" -name 'smtp_probe.so' 2>/dev/null | head -n 1 || true)
[ -n "$COLLECTD_SO" ] || COLLECTD_WHY=${COLLECTD_WHY:-"no collectd plugin (smtp_probe.so) at $REV"}

PB=$WORK/bench/probe_bench
HL=$WORK/bench/httpload
CHECK=$WORK/build/nagios/check_smtp_ports
FAULT=$WORK/build/fault_server/smtp_fault_server
EXPORTER=$WORK/build/prometheus/smtp_exporter
CERTS=$WORK/certs
bash "$SRC/tests/env/make-certs.sh" "$CERTS"
# mailenv.sh makes the same certificates on start (idempotent); made here so
# the exporters' configurations can name the CA before Postfix runs.
bash "$SRC/tests/env/make-certs.sh" "$WORK/mailenv/certs"

# ---- Machine and versions ------------------------------------------------------
{
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "revision=$REV"
  echo "mode=$([ "$QUICK" = 1 ] && echo quick || echo full)"
  echo "cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo) x $(nproc)"
  echo "memory=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "kernel=$(uname -sr)"
  echo "os=$(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "compiler=$(cc --version | head -n 1)"
  echo "openssl=$(openssl version)"
  echo "postfix=$(postconf -d -h mail_version 2>/dev/null || echo '?')"
  echo "monitoring_plugins=$($PLUGINS/check_smtp -V 2>&1 | head -n 1)"
  echo "blackbox_exporter=$(prometheus-blackbox-exporter --version 2>&1 | head -n 1)"
  echo "collectd=$(collectd -h 2>&1 | awk '/^collectd [0-9]/ {sub(/,$/, "", $2); print $2; exit}')"
  echo "hyperfine=$(hyperfine --version)"
  echo "gnuplot=$(gnuplot --version)"
} >"$RUN/machine.txt"

# ---- Servers ---------------------------------------------------------------------
LEAN_PID=""
# Start the lean fault server: starttls mode, ECDSA P-256 leaf, 8 ports,
# and a ninth that never speaks (the idle probes of row 5).
start_lean() {
  local args=() i
  for i in 0 1 2 3 4 5 6 7; do
    args+=(--listen "$LEAN:$((LEAN_PORT0 + i))=starttls,cert=ecdsa")
  done
  args+=(--listen "$LEAN:$((LEAN_PORT0 + 8))=silent")
  rm -f "$RUN/lean.ready"
  "$FAULT" "${args[@]}" --cert-prefix "$CERTS/server" --ready-file "$RUN/lean.ready" \
    >"$RUN/lean.log" 2>&1 &
  LEAN_PID=$!
  PIDS+=("$LEAN_PID")
  local i
  for ((i = 0; i < 100; i++)); do
    [ -s "$RUN/lean.ready" ] && return 0
    kill -0 "$LEAN_PID" 2>/dev/null || break
    sleep 0.1
  done
  say "the lean server did not start: $(cat "$RUN/lean.log")"
  return 1
}

# Start the real Postfix environment (waits while a teammate's run holds it;
# tries three times, as another environment may be releasing its addresses).
env_start() {
  local try
  for try in 1 2 3; do
    say "starting the Postfix environment (try $try)"
    if SP_ENV_WAIT=${SP_ENV_WAIT:-900} bash "$ENVSH" start "$WORK/mailenv" \
      >>"$RUN/mailenv.log" 2>&1; then
      ENV_UP=1
      # One probe of each port first, so Postfix's processes are up.
      "$CHECK" -H "$PF" -p 25,465,587,2525 --cafile "$CA_PF" --sni "$MAIL_NAME" \
        --ehlo "$EHLO" >/dev/null 2>&1 || true
      return 0
    fi
    sleep 2
  done
  tail -n 20 "$RUN/mailenv.log" >&2
  return 1
}

# Stop the Postfix environment so teammates can have it.
env_stop() {
  bash "$ENVSH" stop "$WORK/mailenv" >>"$RUN/mailenv.log" 2>&1 || true
  ENV_UP=0
  say "Postfix environment stopped"
}

# ---- 1 and 2: floor and engine in-process against Postfix --------------------------
section_floor() {
  env_start || { record "inproc.na why=the_Postfix_environment_did_not_start"; return 0; }
  local a=(--host "$PF" --port 587 --sni "$MAIL_NAME" --cafile "$CA_PF" --ehlo "$EHLO")
  local r
  for ((r = 1; r <= ROUNDS; r++)); do
    say "1-2: round $r/$ROUNDS: floor, engine sequential, engine $INFLIGHT_N in flight (Postfix 587)"
    record "inproc.floor.r$r $("$PB" floor "${a[@]}" --count "$N_INPROC")"
    record "inproc.engine1.r$r $("$PB" engine "${a[@]}" --count "$N_INPROC")"
    record "inproc.engineN.r$r $("$PB" engine "${a[@]}" --count "$N_INPROC" --inflight "$INFLIGHT_N")"
  done
  env_stop
}

# ---- 3: check_smtp_ports vs check_smtp / check_ssmtp (processes) --------------------
section_process() {
  env_start || { record "process.na why=the_Postfix_environment_did_not_start"; return 0; }
  local ours="$CHECK -H $PF --cafile $CA_PF --sni $MAIL_NAME --ehlo $EHLO"
  local -a cmds=(
    ref_587 "$PLUGINS/check_smtp -H $PF -p 587 -S -F $EHLO"
    ours_587 "$ours -p 587"
    ref_465 "$PLUGINS/check_ssmtp -H $PF -p 465"
    ours_465 "$ours -p 465"
    ours_25 "$ours -p 25"
    ours_2525 "$ours -p 2525"
    ours_4ports "$ours -p 25,465,587,2525"
  )
  # HF_ROUNDS rounds, every other one in reverse order, so that a load
  # spike from elsewhere does not fall on one command only; the report
  # takes each command's median over the rounds.
  local round i args
  for ((round = 1; round <= HF_ROUNDS; round++)); do
    args=()
    if ((round % 2 == 1)); then
      for ((i = 0; i < ${#cmds[@]}; i += 2)); do args+=(-n "${cmds[i]}" "${cmds[i + 1]}"); done
    else
      for ((i = ${#cmds[@]} - 2; i >= 0; i -= 2)); do args+=(-n "${cmds[i]}" "${cmds[i + 1]}"); done
    fi
    say "3: hyperfine round $round/$HF_ROUNDS, $HF_RUNS runs per command (Postfix)"
    if ! hyperfine -N --style basic --warmup "$HF_WARM" --runs "$HF_RUNS" \
      --export-json "$RUN/hyperfine-$round.json" "${args[@]}" \
      >>"$RUN/hyperfine.log" 2>&1; then
      tail -n 20 "$RUN/hyperfine.log" >&2
      record "process.na why=hyperfine_failed_(see_build-bench/run/hyperfine.log)"
      break
    fi
  done
  # The server's share: Postfix's CPU per run of one port and of four (the
  # 4-port run's four handshakes compete for the same two cores).
  postfix_cpu pf_cpu.ours_587 "$((HF_RUNS * 4))" "$ours -p 587"
  postfix_cpu pf_cpu.ours_4ports "$((HF_RUNS * 4))" "$ours -p 25,465,587,2525"
  env_stop
}

# Postfix's master and every process under it: utime+stime+cutime+cstime
# in ticks (children that exited are in the master's cutime/cstime).
postfix_ticks() {
  local conf qd master p total=0 s
  conf=$(. "$WORK/mailenv/env.sh" && echo "$SP_POSTFIX_CONFIG") || return 1
  qd=$(postconf -c "$conf" -h queue_directory) || return 1
  master=$(awk 'NR == 1 {print $1}' "$qd/pid/master.pid") || return 1
  for p in "$master" $(pgrep -P "$master"); do
    s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    s=${s##*) }
    total=$((total + $(awk '{print $12 + $13 + $14 + $15}' <<<"$s")))
  done
  echo "$total"
}

# Run a command N times and record Postfix's CPU for them.
# usage: postfix_cpu TAG N CMD
postfix_cpu() {
  local tag=$1 n=$2 cmd=$3 i t0 t1
  t0=$(postfix_ticks) || { record "$tag why=postfix_pid_not_found"; return 0; }
  for ((i = 0; i < n; i++)); do $cmd >/dev/null 2>&1 || true; done
  t1=$(postfix_ticks) || return 0
  record "$tag runs=$n ticks=$((t1 - t0)) clk_tck=$CLK_TCK"
}

# ---- 4: smtp_exporter vs blackbox_exporter ---------------------------------------------
EXP_PID="" BB_PID=""
# Write both exporters' configurations for the Postfix and lean targets.
write_exporter_configs() {
  local ca_lean=$CERTS/ca.pem
  cat >"$RUN/smtp_exporter.yml" <<EOF
modules:
  postfix:
    ports: [587]
    tls: starttls
    timeout: 10s
    server_name: $MAIL_NAME
    ca_file: $CA_PF
    ehlo: $EHLO
  lean:
    ports: [$((LEAN_PORT0 + 7))]
    tls: starttls
    timeout: 10s
    server_name: $MAIL_NAME
    ca_file: $ca_lean
    ehlo: $EHLO
EOF
  # blackbox: the same exchange, scripted (EHLO, STARTTLS, EHLO, QUIT) with
  # chain and name verification.
  local m
  {
    echo "modules:"
    for m in postfix lean; do
      cat <<EOF
  $m:
    prober: tcp
    timeout: 10s
    tcp:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      query_response:
        - expect: "^220 "
        - send: "EHLO $EHLO\r"
        - expect: "^250 "
        - send: "STARTTLS\r"
        - expect: "^220 "
        - starttls: true
        - send: "EHLO $EHLO\r"
        - expect: "^250 "
        - send: "QUIT\r"
        - expect: "^221 "
      tls_config:
        ca_file: $([ $m = postfix ] && echo "$CA_PF" || echo "$ca_lean")
        server_name: $MAIL_NAME
EOF
    done
  } >"$RUN/blackbox.yml"
}

# Start both exporters and wait for their ports.
start_exporters() {
  "$EXPORTER" --config.file="$RUN/smtp_exporter.yml" \
    --web.listen-address="$EXP_ADDR:$EXP_PORT" --probe.max-concurrent=64 \
    --log.level=warn >"$RUN/smtp_exporter.log" 2>&1 &
  EXP_PID=$!
  PIDS+=("$EXP_PID")
  prometheus-blackbox-exporter --config.file="$RUN/blackbox.yml" \
    --web.listen-address="$BB_ADDR:$BB_PORT" --log.level=warn \
    >"$RUN/blackbox.log" 2>&1 &
  BB_PID=$!
  PIDS+=("$BB_PID")
  wait_port "$EXP_ADDR" "$EXP_PORT" 30 && wait_port "$BB_ADDR" "$BB_PORT" 30
}

# One load run against one exporter; records httpload's line, the
# exporter's CPU ticks and RSS. usage: exporter_load TAG WHICH MODULE TARGET N C
exporter_load() {
  local tag=$1 which=$2 module=$3 target=$4 n=$5 c=$6 pid addr port path expect t0 t1 out
  local smtp_port=587
  [ "$module" = postfix ] || smtp_port=$((LEAN_PORT0 + 7))
  # Every answer must say the probe succeeded.
  if [ "$which" = ours ]; then
    pid=$EXP_PID addr=$EXP_ADDR port=$EXP_PORT
    expect="smtp_probe_success{port=\"$smtp_port\"} 1"
    path="/probe?target=$target&module=$module"
  else
    pid=$BB_PID addr=$BB_ADDR port=$BB_PORT expect="probe_success 1"
    path="/probe?target=$target:$smtp_port&module=$module"
  fi
  t0=$(proc_ticks "$pid")
  out=$("$HL" --addr "$addr" --port "$port" --path "$path" --expect "$expect" \
    --count "$n" --concurrency "$c" --timeout 30) || true
  t1=$(proc_ticks "$pid")
  record "$tag $out cpu_ticks=$((t1 - t0)) clk_tck=$CLK_TCK rss_kb=$(proc_kb "$pid" VmRSS)" \
    "hwm_kb=$(proc_kb "$pid" VmHWM) anon_kb=$(proc_kb "$pid" RssAnon)"
}

# Check that our exporter's answer says success 1 (the load's expect string
# only proves the metric is there).
check_ours_success() {
  local body
  body=$(curl -s --max-time 20 "http://$EXP_ADDR:$EXP_PORT/probe?target=$1&module=$2")
  grep -q '^smtp_probe_success{.*} 1$' <<<"$body" || {
    say "smtp_exporter probe of $1 ($2) did not succeed:"
    grep '^smtp_probe_success\|^smtp_probe_diagnosis' <<<"$body" >&2 || echo "$body" | head -n 20 >&2
    return 1
  }
}

# The exporter's CPU per probe against the floor's, side by side: ROUNDS
# alternating rounds of N_EXP_FLOOR sequential probes each, probe_bench
# floor in-process, then smtp_exporter through /probe (its CPU from /proc,
# clock ticks: hence the larger count). usage: exporter_vs_floor KEY MODULE
# HOST PORT CAFILE
exporter_vs_floor() {
  local key=$1 module=$2 host=$3 port=$4 ca=$5 r
  for ((r = 1; r <= ROUNDS; r++)); do
    say "4: exporter vs floor round $r/$ROUNDS, $N_EXP_FLOOR sequential probes each ($module)"
    record "expfloor.$key.floor.r$r $("$PB" floor --host "$host" --port "$port" --sni "$MAIL_NAME" \
      --cafile "$ca" --ehlo "$EHLO" --count "$N_EXP_FLOOR")"
    exporter_load "expfloor.$key.ours.r$r" ours "$module" "$host" "$N_EXP_FLOOR" 1
  done
}

section_exporter() {
  if [ -n "$EXPORTER_WHY" ]; then
    record "exporter.na why=${EXPORTER_WHY// /_}"
    return 0
  fi
  write_exporter_configs
  start_exporters
  # Lean server part first (no Postfix needed).
  check_ours_success "$LEAN" lean
  exporter_load exp.idle.ours ours lean "$LEAN" 5 1
  exporter_load exp.idle.bb bb lean "$LEAN" 5 1
  record "exp.idle_rss ours_kb=$(proc_kb "$EXP_PID" VmRSS) bb_kb=$(proc_kb "$BB_PID" VmRSS)" \
    "ours_anon_kb=$(proc_kb "$EXP_PID" RssAnon) bb_anon_kb=$(proc_kb "$BB_PID" RssAnon)"
  local c
  for c in "${EXP_LEVELS[@]}"; do
    say "4: exporters, $N_EXP_LOAD requests at $c concurrent (lean server)"
    exporter_load "exp.lean.c$c.ours" ours lean "$LEAN" "$N_EXP_LOAD" "$c"
    exporter_load "exp.lean.c$c.bb" bb lean "$LEAN" "$N_EXP_LOAD" "$c"
  done
  record "exp.load_rss ours_hwm_kb=$(proc_kb "$EXP_PID" VmHWM) bb_hwm_kb=$(proc_kb "$BB_PID" VmHWM)"
  exporter_vs_floor lean lean "$LEAN" "$((LEAN_PORT0 + 7))" "$CERTS/ca.pem"
  # Postfix part: sequential, alternating rounds.
  if ! env_start; then
    record "exp.pf.na why=the_Postfix_environment_did_not_start"
    stop_pid "$EXP_PID"
    stop_pid "$BB_PID"
    return 0
  fi
  check_ours_success "$PF" postfix
  local r
  for ((r = 1; r <= ROUNDS; r++)); do
    say "4: exporters round $r/$ROUNDS, $N_EXP_SEQ sequential probes each (Postfix 587)"
    exporter_load "exp.pf.ours.r$r" ours postfix "$PF" "$N_EXP_SEQ" 1
    exporter_load "exp.pf.bb.r$r" bb postfix "$PF" "$N_EXP_SEQ" 1
  done
  exporter_vs_floor pf postfix "$PF" 587 "$CA_PF"
  env_stop
  stop_pid "$EXP_PID"
  stop_pid "$BB_PID"
}

# ---- 5: scaling against the lean server ---------------------------------------------
section_scaling() {
  local a=(--host "$LEAN" --sni "$MAIL_NAME" --cafile "$CERTS/ca.pem" --ehlo "$EHLO")
  local i=0 n
  say "5: floor, $N_SCALE sequential probes (lean server)"
  record "scale.floor $("$PB" floor "${a[@]}" --port "$LEAN_PORT0" --count "$N_SCALE")"
  say "5: floor holding $N_HOLD connections (lean server)"
  record "scale.hold $("$PB" hold "${a[@]}" --port "$((LEAN_PORT0 + 1))" --count "$N_HOLD")"
  for n in "${SCALE_LEVELS[@]}"; do
    i=$((i + 1))
    say "5: engine, $N_SCALE probes, $n in flight (lean server)"
    record "scale.engine.$n $("$PB" engine "${a[@]}" --port "$((LEAN_PORT0 + 1 + i))" \
      --count "$N_SCALE" --inflight "$n")" || true
  done
  # The loop's work must follow what is ready, not what is in flight: the
  # same sequential probes in the engine's thread, alone and beside
  # N_IDLE probes waiting on the silent port all along.
  say "5: engine, $N_IDLE_RUN probes at 1 in flight, alone and beside $N_IDLE idle probes (lean server)"
  record "scale.idle0 $("$PB" engine "${a[@]}" --port "$((LEAN_PORT0 + 6))" \
    --count "$N_IDLE_RUN" --idle 0)" || true
  record "scale.idleN idle=$N_IDLE $("$PB" engine "${a[@]}" --port "$((LEAN_PORT0 + 6))" \
    --count "$N_IDLE_RUN" --idle "$N_IDLE" --idle-port "$((LEAN_PORT0 + 8))")" || true
  say "5: floor again, $N_SCALE sequential probes (lean server)"
  record "scale.floor2 $("$PB" floor "${a[@]}" --port "$LEAN_PORT0" --count "$N_SCALE")"
}

# ---- 6: collectd: our plugin vs check_smtp through the exec plugin ------------------
# Write a private collectd configuration in DIR; $2 is the plugin part.
collectd_conf() {
  local dir=$1 body=$2 p
  mkdir -p "$dir/plugins" "$dir/csv"
  for p in csv exec; do
    ln -f "/usr/lib/collectd/$p.so" "$dir/plugins/$p.so" 2>/dev/null ||
      cp "/usr/lib/collectd/$p.so" "$dir/plugins/$p.so"
  done
  cat >"$dir/collectd.conf" <<EOF
Hostname "bench"
FQDNLookup false
BaseDir "$dir"
PIDFile "$dir/collectd.pid"
PluginDir "$dir/plugins"
TypesDB "/usr/share/collectd/types.db"
Interval 1
ReadThreads 1
WriteThreads 1
LoadPlugin csv
<Plugin csv>
  DataDir "$dir/csv"
  StoreRates false
</Plugin>
$body
EOF
}

# Lines written to the csv files under DIR whose path matches PATTERN.
csv_rows() {
  find "$1/csv" -type f -path "*$2*" -exec cat {} + 2>/dev/null | grep -vc '^epoch' || true
}

# Run one collectd for COLLECTD_S seconds and record its CPU per read.
# usage: collectd_measure TAG DIR PATTERN
collectd_measure() {
  local tag=$1 dir=$2 pattern=$3 pid i t0 t1 r0 r1 last
  collectd -f -C "$dir/collectd.conf" >"$dir/stdout" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  # Warm-up: wait for the first rows, then two more seconds.
  for ((i = 0; i < 200; i++)); do
    [ "$(csv_rows "$dir" "$pattern")" -gt 0 ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  sleep 2
  t0=$(tree_ticks "$pid")
  r0=$(csv_rows "$dir" "$pattern")
  sleep "$COLLECTD_S"
  t1=$(tree_ticks "$pid")
  r1=$(csv_rows "$dir" "$pattern")
  stop_pid "$pid"
  last=$(find "$dir/csv" -type f -path "*$pattern*" -exec tail -q -n 1 {} + 2>/dev/null |
    tail -n 1 | cut -d, -f2)
  record "$tag cpu_ticks=$((t1 - t0)) clk_tck=$CLK_TCK rows=$((r1 - r0)) seconds=$COLLECTD_S last_value=${last:-none}"
}

section_collectd() {
  if [ -n "$COLLECTD_WHY" ]; then
    record "collectd.na why=${COLLECTD_WHY// /_}"
    return 0
  fi
  env_start || { record "collectd.na why=the_Postfix_environment_did_not_start"; return 0; }
  local d1=$RUN/collectd-ours d2=$RUN/collectd-exec
  mkdir -p "$d1/plugins"
  ln -f "$COLLECTD_SO" "$d1/plugins/smtp_probe.so" 2>/dev/null || cp "$COLLECTD_SO" "$d1/plugins/smtp_probe.so"
  collectd_conf "$d1" "LoadPlugin smtp_probe
<Plugin smtp_probe>
  <Target \"bench\">
    Host \"$PF\"
    Port 25 465 587 2525
    SNI \"$MAIL_NAME\"
    CAFile \"$CA_PF\"
    EHLO \"$EHLO\"
    Timeout 0.9
  </Target>
</Plugin>"
  # The exec plugin refuses to run programs as root: nobody runs the script,
  # so it lives in a directory nobody can reach (not under a private $HOME).
  mkdir -p "$d2"
  EXEC_DIR=$(mktemp -d /tmp/smtp-probe-bench.XXXXXX)
  chmod 755 "$EXEC_DIR"
  cat >"$EXEC_DIR/check.sh" <<EOF
#!/bin/sh
# One read = check_smtp (-S) on 25, 587, 2525 and check_ssmtp on 465.
I=\${COLLECTD_INTERVAL:-1}
while :; do
  for p in 25 465 587 2525; do
    if [ \$p = 465 ]; then
      $PLUGINS/check_ssmtp -H $PF -p 465 >/dev/null 2>&1
    else
      $PLUGINS/check_smtp -H $PF -p \$p -S -F $EHLO >/dev/null 2>&1
    fi
    echo "PUTVAL \\"bench/exec-smtp/gauge-\$p\\" interval=\$I N:\$?"
  done
  sleep "\$I"
done
EOF
  chmod 755 "$EXEC_DIR/check.sh"
  collectd_conf "$d2" "LoadPlugin exec
<Plugin exec>
  Exec \"nobody:nogroup\" \"$EXEC_DIR/check.sh\"
</Plugin>"
  say "6: collectd with smtp_probe.so, ${COLLECTD_S}s (Postfix, 4 ports)"
  collectd_measure collectd.ours "$d1" smtp_probe-bench-587/bool-success
  say "6: collectd exec + check_smtp, ${COLLECTD_S}s (Postfix, 4 ports)"
  collectd_measure collectd.exec "$d2" exec-smtp/gauge-587
  rm -rf "$EXEC_DIR"
  EXEC_DIR=""
  env_stop
}

# ---- Run --------------------------------------------------------------------------
start_lean
want scaling && section_scaling
want exporter && section_exporter
want floor && section_floor
want process && section_process
want collectd && section_collectd
stop_pid "$LEAN_PID"

echo "load_at_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RUN/machine.txt"
echo "duration=$((SECONDS / 60)) min $((SECONDS % 60)) s" >>"$RUN/machine.txt"
say "writing the report"
python3 "$HERE/report.py" --run "$RUN" --out "$OUT" --gnuplot-script "$HERE/scaling.gp"
