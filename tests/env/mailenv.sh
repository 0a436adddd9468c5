#!/usr/bin/env bash
# The shared loopback mail environment: a private, real Postfix and a private
# dnsmasq resolver, both configured in DIR and nowhere else.
#
# usage: mailenv.sh start DIR    (re)start everything, write DIR/env.sh
#        mailenv.sh stop DIR     stop everything started from DIR
#        mailenv.sh status DIR   exit 0 when every listener answers (greets;
#                                465 and 10587 accept)
#
# What it brings up (nothing system-wide is started or modified, /etc is only
# read):
#   Postfix 3.7 (postfix -c DIR/postfix) owning 127.0.10.1:
#     127.0.10.1:25    smtpd, STARTTLS offered (smtpd_tls_security_level=may)
#     127.0.10.1:465   submissions: implicit TLS (wrappermode), SASL
#     127.0.10.1:587   submission: STARTTLS required, SASL after TLS only
#     127.0.10.1:2525  same as 587
#     127.0.10.1:10587 same as 587 behind a PROXY protocol hop: every connection
#                      must start with a HAProxy v1 or v2 header
#                      (smtpd_upstream_proxy_protocol=haproxy). Without one,
#                      2 s later (smtpd_upstream_proxy_timeout), or at once
#                      when other bytes come first, Postfix answers
#                      "421 4.3.0 mail.smtp-probe.test Server local error"
#                      instead of its greeting and closes (log: "warning:
#                      haproxy read: timeout error" / "short protocol header")
#     127.0.10.1:10588 same as 587, asks for a TLS client certificate
#                      (smtpd_tls_ask_ccert=yes, smtpd_tls_CAfile = the test
#                      CA); log "Trusted TLS connection" when one was verified,
#                      "Anonymous TLS connection" when none came
#     127.0.10.1:10589 same as 587, requires one (smtpd_tls_req_ccert=yes): the
#                      handshake succeeds without one, then the first command
#                      gets "421 4.7.1 mail.smtp-probe.test Error: No client
#                      certificate presented" and the connection is closed
#     The three log as postfix/proxy, postfix/ccert-ask, postfix/ccert-req
#     (syslog_name) so that tests find their own lines.
#     myhostname mail.smtp-probe.test, certificate = DIR/certs/server-chain.pem
#     (client certificate for 10588/10589: DIR/certs/client.pem, client.key)
#     Cyrus sasldb (DIR/postfix/sasl): user probe@smtp-probe.test, random password in
#     DIR/sasl-password (mode 600), mechanisms PLAIN LOGIN CRAM-MD5.
#     Nothing is ever delivered: every transport is error:.
#   dnsmasq on 127.0.10.53:5300 answering mail.smtp-probe.test A 127.0.10.1,
#     NXDOMAIN for other names under smtp-probe.test, REFUSED for the rest
#     (no upstream servers: it never forwards).
#
# Postfix's files (postfix/ spool/ data/ postfix.log) live in DIR; when the
# postfix user cannot reach DIR (a clone under /root, say), they move to a
# private /tmp/smtp-probe-mailenv.* directory that DIR/postfix-home links to.
#
# DIR/env.sh exports SP_TESTENV, SP_CERT_DIR, SP_CA_FILE, SP_MAIL_NAME,
# SP_POSTFIX_ADDR, SP_DNS_SERVER, SP_SASL_USER, SP_SASL_PASSWORD_FILE and
# SP_POSTFIX_CONFIG (the instance's Postfix config directory).
#
# Only one environment can own 127.0.10.1 at a time. When another DIR's
# instance holds the ports, start waits up to SP_ENV_WAIT seconds (default
# 120) for them to be released, then fails naming the owner.
set -euo pipefail

ADDR=127.0.10.1
PORTS=(25 465 587 2525 10587 10588 10589)
PROXY_PORT=10587
# Ports that send no plaintext greeting: implicit TLS, and the PROXY port
# (it waits for the header). Ready when they accept; the others when they greet.
SILENT_PORTS=" 465 $PROXY_PORT "
ASK_CCERT_PORT=10588
REQ_CCERT_PORT=10589
DNS_ADDR=127.0.10.53
DNS_PORT=5300
MAIL_NAME=mail.smtp-probe.test
REALM=smtp-probe.test
SASL_USER=probe
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Print a message on stderr, prefixed with the script name.
say() { echo "mailenv: $*" >&2; }

# True when something accepts TCP connections on ADDR:PORT.
port_open() {
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# True when ADDR:PORT sends a 220 greeting within 5 s (then QUIT).
port_greets() {
  # shellcheck disable=SC2016 # $1 $2 expand in the inner shell
  timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/$2" || exit 1
    IFS= read -r line <&3 || exit 1
    printf "QUIT\r\n" >&3
    [[ $line == 220* ]]' _ "$1" "$2" 2>/dev/null
}

# True when a process with this pid is alive.
pid_alive() {
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null
}

# Wait until a pid has exited, at most $2 tenths of a second; true if gone.
wait_pid_gone() {
  local pid=$1 tries=$2
  while [ "$tries" -gt 0 ]; do
    pid_alive "$pid" || return 0
    sleep 0.1
    tries=$((tries - 1))
  done
  ! pid_alive "$pid"
}

# The pid in a pid file (first field), or nothing.
read_pid() {
  [ -r "$1" ] || return 0
  awk 'NR==1 {print $1}' "$1"
}

# Write HOME/postfix/main.cf and master.cf (DIR holds the certificates).
write_postfix_config() {
  local dir=$1 home=$2 pf=$2/postfix
  # The queue and data directories sit beside the config directory: Postfix
  # wants everything under config_directory owned by root.
  mkdir -p "$pf" "$home/spool" "$home/data"
  chown root:root "$home/spool"
  chown postfix:postfix "$home/data"
  chmod 755 "$home/spool"
  chmod 700 "$home/data"
  cat >"$pf/main.cf" <<EOF
# Private Postfix instance of the smtp-probe test environment.
compatibility_level = 3.6
queue_directory = $home/spool
data_directory = $home/data
# The listeners in master.cf name 127.0.10.1 themselves; this only keeps the
# master's own checks happy (127.0.10.1 is not an interface address).
inet_interfaces = loopback-only
inet_protocols = ipv4
maillog_file = $home/postfix.log
maillog_file_prefixes = $home
myhostname = $MAIL_NAME
mydomain = $REALM
myorigin = \$myhostname
mydestination =
relay_domains =
alias_maps =
alias_database =
local_recipient_maps =
mynetworks = 127.0.0.0/8
biff = no
# Never deliver anything anywhere.
default_transport = error:smtp-probe test environment delivers nothing
relay_transport = error:smtp-probe test environment delivers nothing
local_transport = error:smtp-probe test environment delivers nothing
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
smtpd_banner = \$myhostname ESMTP smtp-probe test environment
# TLS: the test CA's server certificate (key first, then leaf + CA).
smtpd_tls_chain_files = $dir/certs/server.key, $dir/certs/server-chain.pem
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
# SASL: Cyrus with sasldb; smtpd.conf lives in $pf/sasl, not /etc.
# (Debian's smtpd looks in \$config_directory/sasl; the parameter says the
# same so that both agree.)
cyrus_sasl_config_path = $pf/sasl
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
smtpd_sasl_auth_enable = no
smtpd_sasl_security_options = noanonymous
smtpd_sasl_tls_security_options = noanonymous
EOF
  cat >"$pf/master.cf" <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command + args
$ADDR:smtp inet n       -       n       -       -       smtpd
$ADDR:submissions inet n -      n       -       -       smtpd
  -o smtpd_tls_wrappermode=yes
  -o smtpd_sasl_auth_enable=yes
$ADDR:submission inet n -       n       -       -       smtpd
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_tls_auth_only=yes
$ADDR:2525 inet n       -       n       -       -       smtpd
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_tls_auth_only=yes
# 587 behind a PROXY protocol hop (v1 or v2 header required, 2 s to send it).
$ADDR:$PROXY_PORT inet n      -       n       -       -       smtpd
  -o smtpd_upstream_proxy_protocol=haproxy
  -o smtpd_upstream_proxy_timeout=2s
  -o syslog_name=postfix/proxy
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_tls_auth_only=yes
# 587 asking for a client certificate (verified against the test CA).
$ADDR:$ASK_CCERT_PORT inet n      -       n       -       -       smtpd
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_tls_auth_only=yes
  -o smtpd_tls_ask_ccert=yes
  -o smtpd_tls_CAfile=$dir/certs/ca.pem
  -o syslog_name=postfix/ccert-ask
# 587 requiring a client certificate (req_ccert needs the encrypt level).
$ADDR:$REQ_CCERT_PORT inet n      -       n       -       -       smtpd
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_tls_auth_only=yes
  -o smtpd_tls_ask_ccert=yes
  -o smtpd_tls_req_ccert=yes
  -o smtpd_tls_CAfile=$dir/certs/ca.pem
  -o syslog_name=postfix/ccert-req
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
}

# Write the Cyrus SASL config and sasldb with a fresh random password.
write_sasl() {
  local dir=$1 sasl=$2/postfix/sasl
  mkdir -p "$sasl"
  cat >"$sasl/smtpd.conf" <<EOF
pwcheck_method: auxprop
auxprop_plugin: sasldb
mech_list: PLAIN LOGIN CRAM-MD5
sasldb_path: $sasl/sasldb2
EOF
  rm -f "$sasl/sasldb2" "$dir/sasl-password"
  (umask 077 && openssl rand -hex 16 >"$dir/sasl-password")
  chmod 600 "$dir/sasl-password"
  # The password goes through stdin (-p), never argv.
  tr -d '\n' <"$dir/sasl-password" |
    saslpasswd2 -f "$sasl/sasldb2" -p -c -u "$REALM" "$SASL_USER"
  chown root:postfix "$sasl/sasldb2"
  chmod 640 "$sasl/sasldb2"
}

# Write DIR/env.sh for the tests to source.
write_env() {
  local dir=$1
  cat >"$dir/env.sh" <<EOF
# Written by tests/env/mailenv.sh; source it.
export SP_TESTENV='$dir'
export SP_CERT_DIR='$dir/certs'
export SP_CA_FILE='$dir/certs/ca.pem'
export SP_MAIL_NAME='$MAIL_NAME'
export SP_POSTFIX_ADDR='$ADDR'
export SP_DNS_SERVER='$DNS_ADDR:$DNS_PORT'
export SP_SASL_USER='$SASL_USER@$REALM'
export SP_SASL_PASSWORD_FILE='$dir/sasl-password'
# The Postfix instance's config directory (for postconf/posttls-finger -c).
export SP_POSTFIX_CONFIG='$(pf_home "$dir")/postfix'
EOF
}

# True when every Postfix listener answers: a 220 greeting, or for the
# SILENT_PORTS an accepted connection.
postfix_ready() {
  local p
  for p in "${PORTS[@]}"; do
    if [[ $SILENT_PORTS == *" $p "* ]]; then
      port_open "$ADDR" "$p" || return 1
    else
      port_greets "$ADDR" "$p" || return 1
    fi
  done
}

# True when any of our addresses' listeners accepts connections.
any_port_busy() {
  local p
  for p in "${PORTS[@]}"; do
    port_open "$ADDR" "$p" && return 0
  done
  ss -Hlnu "src $DNS_ADDR:$DNS_PORT" 2>/dev/null | grep -q . && return 0
  return 1
}

# Print what Postfix says about its configuration and its log, for failures.
postfix_diagnostics() {
  local home
  home=$(pf_home "$1")
  say "--- postfix -c $home/postfix check ---"
  postfix -c "$home/postfix" check >&2 2>&1 || true
  say "--- $home/postfix.log (last 40 lines) ---"
  tail -n 40 "$home/postfix.log" >&2 2>/dev/null || true
}

# Where Postfix's own files (config, queue, data, log, sasldb) live: DIR
# itself, or the private directory DIR/postfix-home links to.
pf_home() {
  if [ -L "$1/postfix-home" ]; then
    readlink "$1/postfix-home"
  else
    echo "$1"
  fi
}

# Choose Postfix's home for a new start. Postfix's daemons run as the postfix
# user and must reach their files; when DIR sits below a directory they cannot
# enter (e.g. a clone in /root), use a fresh root-owned directory in /tmp
# linked from DIR/postfix-home.
new_pf_home() {
  local dir=$1 old home
  old=$(pf_home "$dir")
  if [ "$old" != "$dir" ]; then
    case "$old" in /tmp/smtp-probe-mailenv.*) rm -rf "$old" ;; esac
    rm -f "$dir/postfix-home"
  fi
  if runuser -u postfix -- test -x "$dir"; then
    echo "$dir"
    return
  fi
  home=$(mktemp -d /tmp/smtp-probe-mailenv.XXXXXX)
  chmod 755 "$home"
  ln -s "$home" "$dir/postfix-home"
  echo "$home"
}

# Stop Postfix and dnsmasq of DIR; leaves no process behind.
do_stop() {
  local dir=$1 pid home
  home=$(pf_home "$dir")
  if [ -f "$home/postfix/main.cf" ]; then
    pid=$(read_pid "$home/spool/pid/master.pid")
    if pid_alive "$pid"; then
      postfix -c "$home/postfix" stop >/dev/null 2>&1 || true
      if ! wait_pid_gone "$pid" 100; then
        postfix -c "$home/postfix" abort >/dev/null 2>&1 || true
        wait_pid_gone "$pid" 50 || kill -KILL "$pid" 2>/dev/null || true
      fi
    fi
    # Children of a killed master exit when it does; reap any stragglers
    # that still run with this instance's config directory.
    pkill_instance "$home/postfix"
  fi
  pid=$(read_pid "$dir/dnsmasq.pid")
  # Only a dnsmasq started for this DIR (a stale pid may have been reused).
  if pid_alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null |
    grep -qF -- "--pid-file=$dir/dnsmasq.pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    wait_pid_gone "$pid" 50 || kill -KILL "$pid" 2>/dev/null || true
    wait_pid_gone "$pid" 50 || {
      say "dnsmasq $pid did not exit"
      return 1
    }
  fi
  rm -f "$dir/dnsmasq.pid"
  if [ -n "$(instance_pids "$home/postfix")" ]; then
    say "Postfix processes of $home/postfix still running: $(instance_pids "$home/postfix")"
    return 1
  fi
}

# The pids of processes whose environment says they belong to this Postfix
# config directory (MAIL_CONFIG=DIR, set by postfix -c for every daemon).
instance_pids() {
  local conf=$1 p
  for p in /proc/[0-9]*; do
    if tr '\0' '\n' 2>/dev/null <"$p/environ" | grep -qxF "MAIL_CONFIG=$conf"; then
      echo "${p#/proc/}"
    fi
  done
}

# Name the environment that holds 127.0.10.1:25: the listener's MAIL_CONFIG
# (its Postfix config directory, DIR/postfix), or "unknown".
port_owner() {
  local pid conf
  pid=$(ss -Hltnp "src $ADDR:25" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2)
  conf=
  if [ -n "$pid" ]; then
    conf=$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" | sed -n 's/^MAIL_CONFIG=//p' | head -n 1)
  fi
  echo "${conf:-unknown}"
}

# Kill what is left of this Postfix instance (see instance_pids) and wait
# (at most 5 s) for it to be gone.
pkill_instance() {
  local p tries=50
  for p in $(instance_pids "$1"); do
    kill -KILL "$p" 2>/dev/null || true
  done
  while [ -n "$(instance_pids "$1")" ] && [ "$tries" -gt 0 ]; do
    sleep 0.1
    tries=$((tries - 1))
  done
}

# Wait until no other environment holds our addresses; fail once the
# deadline (in $SECONDS) passes.
wait_for_free_ports() {
  local deadline=$1 owner next_note=0
  while any_port_busy; do
    owner=$(port_owner)
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "$ADDR / $DNS_ADDR:$DNS_PORT still in use (owner: $owner)"
      say "stop it with: $HERE/mailenv.sh stop ${owner%/postfix}"
      return 1
    fi
    if [ "$SECONDS" -ge "$next_note" ]; then
      say "addresses in use by another environment ($owner); waiting up to $((deadline - SECONDS))s"
      next_note=$((SECONDS + 30))
    fi
    sleep 1
  done
}

# True when every listener (TCP for Postfix, UDP+TCP for dnsmasq) belongs to
# the processes this DIR started, not to another environment.
owned_by_us() {
  local dir=$1 home master dns p
  home=$(pf_home "$dir")
  master=$(read_pid "$home/spool/pid/master.pid")
  dns=$(read_pid "$dir/dnsmasq.pid")
  [ -n "$master" ] && [ -n "$dns" ] || return 1
  for p in "${PORTS[@]}"; do
    ss -Hltnp "src $ADDR:$p" | grep -q "pid=$master," || return 1
  done
  ss -Hlunp "src $DNS_ADDR:$DNS_PORT" | grep -q "pid=$dns," || return 1
}

# Start everything for DIR once, on free addresses; on failure print why,
# stop what was started and return 1.
start_once() {
  local dir=$1 deadline out home
  home=$(new_pf_home "$dir")
  # Certificates older than a day are made again (the "expiring" leaf has
  # only days to live); make-certs.sh keeps younger ones.
  if [ -n "$(find "$dir/certs/.done" -mtime +0 2>/dev/null)" ]; then
    rm -rf "$dir/certs"
  fi
  "$HERE/make-certs.sh" "$dir/certs"
  write_postfix_config "$dir" "$home"
  write_sasl "$dir" "$home"
  write_env "$dir"
  : >"$home/postfix.log"

  if ! out=$(postfix -c "$home/postfix" start 2>&1); then
    say "postfix start failed: $out"
    postfix_diagnostics "$dir"
    do_stop "$dir"
    return 1
  fi

  dnsmasq --conf-file=/dev/null --no-resolv --no-hosts --no-poll \
    --bind-interfaces --listen-address="$DNS_ADDR" --port="$DNS_PORT" \
    --host-record="$MAIL_NAME,$ADDR" --local="/$REALM/" \
    --pid-file="$dir/dnsmasq.pid" --log-facility="$dir/dnsmasq.log" \
    --log-queries --user=nobody || {
    say "dnsmasq failed to start"
    tail -n 20 "$dir/dnsmasq.log" >&2 2>/dev/null || true
    do_stop "$dir"
    return 1
  }

  # Readiness: every listener accepts and is ours.
  deadline=$((SECONDS + 30))
  until postfix_ready && owned_by_us "$dir"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "Postfix listeners not ready (or not ours) after 30s"
      postfix_diagnostics "$dir"
      do_stop "$dir"
      return 1
    fi
    sleep 0.1
  done
}

# Start (or restart) everything for DIR. Another environment may grab the
# addresses between our check and our start (developers running suites side
# by side): then wait for it again, within the same SP_ENV_WAIT budget.
do_start() {
  local dir=$1 deadline
  deadline=$((SECONDS + ${SP_ENV_WAIT:-120}))
  while :; do
    do_stop "$dir"
    wait_for_free_ports "$deadline" || return 1
    if start_once "$dir"; then
      say "up: Postfix on $ADDR:{$(IFS=,; echo "${PORTS[*]}")}, dnsmasq on $DNS_ADDR:$DNS_PORT; env in $dir/env.sh"
      return 0
    fi
    if any_port_busy && [ "$SECONDS" -lt "$deadline" ]; then
      say "another environment took the addresses; waiting again"
      continue
    fi
    return 1
  done
}

cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: mailenv.sh start|stop|status DIR" >&2
  exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
  say "must run as root (postfix -c DIR start)"
  exit 1
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

case "$cmd" in
start) do_start "$dir" ;;
stop) do_stop "$dir" ;;
status) postfix_ready ;;
*)
  echo "usage: mailenv.sh start|stop|status DIR" >&2
  exit 2
  ;;
esac
