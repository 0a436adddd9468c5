# shellcheck shell=bash
# collectd-lib.sh - helpers to run a private collectd with smtp_probe.so.
# Sourced by tests/collectd/*.sh and scripts/demo-collectd.sh (bash).
#
# Everything lives in one directory DIR: collectd.conf, plugins/ (our .so
# plus hard links or copies of the stock unixsock, csv and logfile
# plugins: collectd skips symlinks in PluginDir), base/,
# csv/, collectd.log, collectd.sock, collectd.pid. Nothing in /etc is used.

SPC_HOST=spc-test                 # the fixed Hostname of the private collectd
SPC_STOCK_PLUGINS=/usr/lib/collectd
SPC_TYPES_DB=/usr/share/collectd/types.db

# Print a message on stderr.
spc_say() { echo "collectd-test: $*" >&2; }

# Fail the test with a message.
spc_fail() {
  spc_say "FAIL: $*"
  exit 1
}

# Put a plugin into the private PluginDir: a hard link, else a copy.
spc_link() {
  rm -f "$2"
  ln "$1" "$2" 2>/dev/null || cp "$1" "$2"
}

# Write DIR/collectd.conf: globals, logfile, unixsock, csv, smtp_probe with
# the <Plugin smtp_probe> body given on stdin.
# usage: spc_write_conf DIR PLUGIN_SO INTERVAL READ_THREADS < body
spc_write_conf() {
  local dir=$1 so=$2 interval=$3 threads=$4 p
  mkdir -p "$dir/plugins" "$dir/base" "$dir/csv"
  # collectd's plugin_load lstat()s each file and skips symlinks ("is not
  # a regular file"), so the plugins are hard-linked, or copied when the
  # directory is on another file system.
  spc_link "$so" "$dir/plugins/smtp_probe.so"
  for p in unixsock csv logfile; do
    [ -e "$SPC_STOCK_PLUGINS/$p.so" ] || spc_fail "missing $SPC_STOCK_PLUGINS/$p.so"
    spc_link "$SPC_STOCK_PLUGINS/$p.so" "$dir/plugins/$p.so"
  done
  {
    cat <<EOF
Hostname "$SPC_HOST"
FQDNLookup false
BaseDir "$dir/base"
PIDFile "$dir/collectd.pid"
PluginDir "$dir/plugins"
TypesDB "$SPC_TYPES_DB"
Interval $interval
ReadThreads $threads
WriteThreads 1

LoadPlugin logfile
<Plugin logfile>
  LogLevel "info"
  File "$dir/collectd.log"
  Timestamp true
  PrintSeverity true
</Plugin>

LoadPlugin unixsock
<Plugin unixsock>
  SocketFile "$dir/collectd.sock"
  SocketGroup "$(id -gn)"
  SocketPerms "0600"
</Plugin>

LoadPlugin csv
<Plugin csv>
  DataDir "$dir/csv"
  StoreRates false
</Plugin>

LoadPlugin smtp_probe
<Plugin smtp_probe>
EOF
    cat
    echo "</Plugin>"
  } >"$dir/collectd.conf"
}

# Start collectd in the foreground mode, in the background of this shell,
# optionally under a wrapper command (valgrind ...). Sets SPC_PID and waits
# (at most 60 s) until the unixsock socket answers.
# usage: spc_start DIR [WRAPPER ARGS...]
spc_start() {
  local dir=$1
  shift
  "$@" collectd -f -C "$dir/collectd.conf" >"$dir/collectd.stdout" 2>&1 &
  SPC_PID=$!
  local tries=600
  while [ "$tries" -gt 0 ]; do
    if ! kill -0 "$SPC_PID" 2>/dev/null; then
      cat "$dir/collectd.stdout" "$dir/collectd.log" >&2 2>/dev/null || true
      spc_fail "collectd exited during start-up"
    fi
    if [ -S "$dir/collectd.sock" ] &&
      collectdctl -s "$dir/collectd.sock" listval >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
    tries=$((tries - 1))
  done
  spc_fail "collectd's socket did not answer within 60 s"
}

# Stop the collectd started by spc_start: SIGTERM, wait up to $2 seconds
# (default 30), then SIGKILL. Returns collectd's exit status.
spc_stop() {
  local pid=${SPC_PID:-} wait_s=${2:-30} tries rc=0
  [ -n "$pid" ] || return 0
  SPC_PID=
  kill -TERM "$pid" 2>/dev/null || return 0
  tries=$((wait_s * 10))
  while [ "$tries" -gt 0 ] && kill -0 "$pid" 2>/dev/null; do
    sleep 0.1
    tries=$((tries - 1))
  done
  if kill -0 "$pid" 2>/dev/null; then
    spc_say "collectd did not stop within ${wait_s}s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || rc=$?
  return "$rc"
}

# Read one value with collectdctl; prints the number, fails when absent.
# usage: spc_getval DIR PLUGIN_INSTANCE TYPE-TYPE_INSTANCE
spc_getval() {
  local out
  out=$(collectdctl -s "$1/collectd.sock" getval "$SPC_HOST/smtp_probe-$2/$3" 2>&1) || return 1
  case $out in
  value=*) echo "${out#value=}" ;;
  *) return 1 ;;
  esac
}

# Identifiers collectd holds for one plugin instance (one per line, sorted).
spc_listval() {
  collectdctl -s "$1/collectd.sock" listval 2>/dev/null |
    grep "^$SPC_HOST/smtp_probe-$2/" | sed "s|^$SPC_HOST/smtp_probe-$2/||" | sort
}

# Rows written by the csv plugin for one value (0 when none yet). Each
# dispatch of that value is one row: it counts completed probe rounds.
spc_csv_rows() {
  local f n=0
  for f in "$1/csv/$SPC_HOST/smtp_probe-$2/$3"-*; do
    [ -f "$f" ] || continue
    n=$((n + $(grep -c '^[0-9]' "$f")))
  done
  echo "$n"
}

# True when the csv plugin holds at least N rows of one value.
# usage: spc_rows_at_least DIR PLUGIN_INSTANCE TYPE-TYPE_INSTANCE N
spc_rows_at_least() {
  [ "$(spc_csv_rows "$1" "$2" "$3")" -ge "$4" ]
}

# Poll a command until it succeeds or DEADLINE seconds pass.
# usage: spc_wait_until DEADLINE_S DESCRIPTION CMD [ARGS...]
spc_wait_until() {
  local deadline=$1 what=$2 tries
  shift 2
  tries=$((deadline * 10))
  while [ "$tries" -gt 0 ]; do
    if "$@"; then
      return 0
    fi
    sleep 0.1
    tries=$((tries - 1))
  done
  spc_fail "timed out after ${deadline}s waiting for: $what"
}

# Open file descriptors of a process.
spc_fd_count() {
  find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l
}

# The fewest open descriptors of a process over 5 samples 0.2 s apart: a
# sample may catch probes in flight, the fewest does not.
spc_fd_min() {
  local n min=1000000
  for _ in 1 2 3 4 5; do
    n=$(spc_fd_count "$1")
    [ "$n" -lt "$min" ] && min=$n
    sleep 0.2
  done
  echo "$min"
}

# Stop a helper process started by a test (by its pid).
spc_kill_helper() {
  if [ -n "${1:-}" ]; then
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
  fi
}

# The end of a test (call from its EXIT trap with $? first): on failure
# show the tail of collectd's log, stop collectd, stop a helper process,
# and remove the directory (SPC_KEEP=1 keeps it).
# usage: spc_cleanup RC DIR LOG_LINES STOP_TIMEOUT_S [HELPER_PID]
spc_cleanup() {
  local rc=$1 dir=$2 lines=$3 stop_s=$4 helper=${5:-}
  if [ "$rc" -ne 0 ] && [ -f "$dir/collectd.log" ]; then
    spc_say "last lines of collectd.log:"
    tail -n "$lines" "$dir/collectd.log" >&2
  fi
  spc_stop "$dir" "$stop_s" || true
  spc_kill_helper "$helper"
  if [ "${SPC_KEEP:-0}" = 1 ]; then spc_say "kept $dir"; else rm -rf "$dir"; fi
}
