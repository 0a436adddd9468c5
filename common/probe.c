/*
 * probe.c - one probe: the connection's state machine.
 *
 * An explicit state enum (engine_internal.h) with a names table and a
 * phase table (here, each asserted to match it), every transition through
 * set_state() (which also begins and ends the phases), one handler per
 * state, walking the straight path of an SMTP check:
 *
 *   connect -> [implicit TLS] -> banner -> ehlo -> starttls ->
 *   tls_handshake -> ehlo_tls -> [auth] -> [mail, rcpt] -> judge -> quit
 *
 * and ending with exactly one diagnosis code. Beside a main probe run,
 * as probes of their own (enum attempt_kind), the implicit-TLS trial and
 * the injection test; the legacy-TLS identification is the main probe
 * reconnecting. Every read has a cap; the event loop that drives it is
 * in engine.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "probe.h"

/* State names for the decision trail, indexed by enum conn_state. */
static const char *const conn_state_names[] = {
    [CS_WAIT_DNS] = "wait_dns",
    [CS_TRIAL_IDLE] = "trial_idle",
    [CS_CONNECT] = "connect",
    [CS_TLS_IMPLICIT] = "tls_implicit",
    [CS_BANNER] = "banner",
    [CS_EHLO] = "ehlo",
    [CS_HELO] = "helo",
    [CS_STARTTLS] = "starttls",
    [CS_TLS_STARTTLS] = "tls_starttls",
    [CS_EHLO_TLS] = "ehlo_tls",
    [CS_AUTH] = "auth",
    [CS_MAIL] = "mail",
    [CS_RCPT] = "rcpt",
    [CS_DATA] = "data",
    [CS_BODY] = "body",
    [CS_RSET] = "rset",
    [CS_INJECT_WAIT] = "inject_wait",
    [CS_QUIT] = "quit",
    [CS_DONE] = "done",
};
_Static_assert(sizeof(conn_state_names) / sizeof(conn_state_names[0]) ==
                   CS_COUNT,
               "one name per connection state");

/* ---- Small helpers --------------------------------------------------- */

/* Append a decision-trail line ("* ...") to the transcript. */
void sp_probe_trail(struct probe *p, const char *fmt, ...) {
  if (!p->env->req->trace)
    return;
  char line[SP_MAX_TEXT * 2];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
  sp_transcript_add(&p->transcript, "* ", line, len);
}

/* No phase: SP_PHASE_COUNT. */
#define NO_PHASE SP_PHASE_COUNT

/* The phase each state times, indexed by enum conn_state: entering a
 * state begins its phase, leaving it ends it (set_state). */
static const enum sp_phase state_phase[] = {
    [CS_WAIT_DNS] = NO_PHASE,
    [CS_TRIAL_IDLE] = NO_PHASE,
    [CS_CONNECT] = SP_PHASE_CONNECT,
    [CS_TLS_IMPLICIT] = SP_PHASE_TLS_HANDSHAKE,
    [CS_BANNER] = SP_PHASE_BANNER,
    [CS_EHLO] = SP_PHASE_EHLO,
    [CS_HELO] = SP_PHASE_EHLO,
    [CS_STARTTLS] = SP_PHASE_STARTTLS,
    [CS_TLS_STARTTLS] = SP_PHASE_TLS_HANDSHAKE,
    [CS_EHLO_TLS] = SP_PHASE_EHLO_TLS,
    [CS_AUTH] = SP_PHASE_AUTH,
    [CS_MAIL] = SP_PHASE_MAIL_FROM,
    [CS_RCPT] = SP_PHASE_RCPT_TO,
    [CS_DATA] = NO_PHASE,
    [CS_BODY] = NO_PHASE,
    [CS_RSET] = NO_PHASE,
    [CS_INJECT_WAIT] = NO_PHASE,
    [CS_QUIT] = NO_PHASE,
    [CS_DONE] = NO_PHASE,
};
_Static_assert(sizeof(state_phase) / sizeof(state_phase[0]) == CS_COUNT,
               "one phase entry per connection state");

/* Move to a new state (the one place transitions happen). Leaving a
 * state ends its phase: recorded when the dialogue moves on (or says
 * QUIT after a reply), dropped when the probe ends or reconnects without
 * an answer (a timeout, a failed handshake). Entering a state begins its
 * phase, once per probe (an address or legacy retry does not time the
 * connect again); side connections time nothing. */
static void set_state(struct probe *p, enum conn_state st) {
  if (p->state == st)
    return;
  sp_probe_trail(p, "state %s -> %s", conn_state_names[p->state],
                 conn_state_names[st]);
  double now = now_s();
  if (state_phase[p->state] != state_phase[st]) {
    if (p->phase != NO_PHASE && st != CS_DONE && st != CS_CONNECT) {
      p->res->phase_s[p->phase] = now - p->t_phase;
      p->res->phase_done[p->phase] = true;
    }
    p->phase = NO_PHASE;
    enum sp_phase next = state_phase[st];
    bool side = p->kind == AK_TLS_TRIAL;
    if (next != NO_PHASE && !side && !p->res->phase_done[next]) {
      p->phase = next;
      p->t_phase = now;
    }
  }
  p->state = st;
  p->t_state = now;
}

/* Whether the probe is a port's main probe (its result is reported). */
static bool is_main(const struct probe *p) {
  return p->kind == AK_NORMAL || p->kind == AK_LEGACY_TLS;
}

/* Register, change or drop the epoll events for the probe's socket. */
static void want(struct probe *p, uint32_t events) {
  if (p->fd < 0 || p->events == events)
    return;
  struct epoll_event ev = {.events = events, .data.ptr = &p->tag};
  int op = p->events == 0 ? EPOLL_CTL_ADD
           : events == 0  ? EPOLL_CTL_DEL
                          : EPOLL_CTL_MOD;
  epoll_ctl(p->env->epfd, op, p->fd, &ev);
  p->events = events;
}

/* Re-arm TCP_QUICKACK so our reads never wait on a delayed ACK. */
static void quickack(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
}

/* Close the connection and its TLS session. */
void sp_probe_close(struct probe *p) {
  want(p, 0);
  if (p->ssl) {
    SSL_free(p->ssl);
    p->ssl = NULL;
  }
  if (p->fd >= 0) {
    close(p->fd);
    p->fd = -1;
  }
  p->events = 0;
  sp_buf_consume(&p->in, p->in.len);
  sp_buf_consume(&p->out, p->out.len);
}

/* The state a result is in: the role table, and cert_expiring's own
 * critical threshold. */
enum sp_state sp_probe_state_for(const struct sp_result *res, enum sp_code code,
                                 const struct sp_request *req) {
  enum sp_state st = sp_code_state(code, res->role);
  if (code == SP_CERT_EXPIRING && req->cert_crit_days >= 0 &&
      sp_days_left(res->chain_not_after, time(NULL)) < req->cert_crit_days)
    st = SP_STATE_CRITICAL;
  return st;
}

/* End the probe: close, hand the transcript over, count it done. */
void sp_probe_finish(struct probe *p) {
  if (p->state == CS_DONE)
    return;
  sp_probe_close(p);
  if (is_main(p) && p->partner && p->partner->state != CS_DONE) {
    if (p->partner->state != CS_TRIAL_IDLE)
      sp_probe_trail(p, "the implicit-TLS trial connection is no longer "
                        "needed: closed");
    sp_probe_finish(p->partner);
  }
  struct sp_result *res = p->res;
  if (!res->phase_done[SP_PHASE_TOTAL]) {
    res->phase_s[SP_PHASE_TOTAL] = now_s() - p->env->t_submit;
    res->phase_done[SP_PHASE_TOTAL] = true;
  }
  res->state = sp_probe_state_for(res, res->code, p->env->req);
  if (p->transcript.len) {
    res->transcript = p->transcript.data;
    res->transcript_len = p->transcript.len;
    p->transcript.data = NULL;
  }
  sp_buf_free(&p->transcript);
  sp_buf_free(&p->in);
  sp_reply_free(&p->reply);
  sp_buf_free(&p->out);
  set_state(p, CS_DONE);
  p->env->ndone++;
}

static void send_command(struct probe *p, const char *cmd);
static void send_line(struct probe *p, const char *cmd, const char *shown);

/* Settle the diagnosis; say goodbye politely when the dialogue allows,
 * otherwise close at once. */
void sp_probe_decide(struct probe *p, enum sp_code code, const char *fmt, ...) {
  struct sp_result *res = p->res;
  if (!p->decided) {
    p->decided = true;
    res->code = code;
    sp_code_set_add(&res->findings, code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->detail, sizeof(res->detail), fmt, ap);
    va_end(ap);
    res->phase_s[SP_PHASE_TOTAL] = now_s() - p->env->t_submit;
    res->phase_done[SP_PHASE_TOTAL] = true;
    sp_probe_trail(p, "diagnosis %s: %s", sp_code_name(code), res->detail);
  }
  bool can_quit =
      p->fd >= 0 && p->out.len == 0 &&
      (p->state == CS_BANNER || p->state == CS_EHLO || p->state == CS_HELO ||
       p->state == CS_STARTTLS || p->state == CS_EHLO_TLS ||
       p->state == CS_AUTH || p->state == CS_MAIL || p->state == CS_RCPT ||
       p->state == CS_DATA || p->state == CS_BODY || p->state == CS_RSET);
  if (can_quit && now_s() < p->env->deadline) {
    set_state(p, CS_QUIT);
    send_command(p, "QUIT");
  } else {
    sp_probe_finish(p);
  }
}

/* Settle the diagnosis and end the probe at once (no QUIT: the
 * connection is unusable or the verdict needs no goodbye). */
static void probe_fail(struct probe *p, enum sp_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void probe_fail(struct probe *p, enum sp_code code, const char *fmt,
                       ...) {
  char detail[SP_MAX_TEXT];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof(detail), fmt, ap);
  va_end(ap);
  sp_probe_decide(p, code, "%s", detail);
  sp_probe_finish(p);
}

/* Give the result its own "what to check first" (before the decision;
 * a decided probe keeps the hint of its decision). */
static void set_hint(struct probe *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_hint(struct probe *p, const char *fmt, ...) {
  if (p->decided)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->res->hint, sizeof(p->res->hint), fmt, ap);
  va_end(ap);
}

/* End a TLS trial with what it found; its main probe goes on waiting for
 * its greeting (the finding is in the main probe's trail and, should the
 * greeting never come, in its banner_timeout detail). */
static void trial_end(struct probe *t, enum sp_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void trial_end(struct probe *t, enum sp_code code, const char *fmt,
                      ...) {
  char why[SP_MAX_TEXT];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof(why), fmt, ap);
  va_end(ap);
  sp_probe_trail(t->partner, "implicit-TLS trial: %s", why);
  sp_probe_close(t);
  probe_fail(t, code, "%s", why);
}

/* Start the implicit-TLS trial beside a main probe whose greeting is
 * late: a second connection to the same address says TLS right away.
 * The main connection keeps waiting; whichever gives evidence first
 * decides (probe.h, AK_TLS_TRIAL). */
static void trial_start(struct probe *p, double waited) {
  struct probe *t = p->partner;
  p->banner_deadline = 0;
  if (!t || t->state != CS_TRIAL_IDLE)
    return;
  sp_probe_trail(p,
                 "no greeting after %.1fs: trying implicit TLS on a second "
                 "connection (this one keeps waiting)",
                 waited);
  t->addr_cur = p->addr_cur;
  t->addr_last = p->addr_cur;
  sp_probe_trail(t, "implicit-TLS trial of %s port %u", p->env->req->host,
                 (unsigned)p->res->port);
  sp_probe_connect(t);
}

/* Why a connect failed, as a code. */
static enum sp_code connect_code(int err) {
  switch (err) {
  case ECONNREFUSED:
    return SP_CONNECT_REFUSED;
  case ENETUNREACH:
  case EHOSTUNREACH:
  case EADDRNOTAVAIL:
  case EAFNOSUPPORT:
    return SP_NETWORK_UNREACHABLE;
  case ECONNRESET:
    return SP_CONNECTION_CLOSED;
  default:
    return SP_CONNECT_TIMEOUT;
  }
}

/* Numeric text of a socket address. */
static void addr_text(const struct sockaddr_storage *ss, char *buf,
                      size_t buflen) {
  const void *a =
      ss->ss_family == AF_INET6
          ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
          : (const void *)&((const struct sockaddr_in *)ss)->sin_addr;
  if (!inet_ntop(ss->ss_family, a, buf, (socklen_t)buflen))
    sp_strlcpy(buf, "?", buflen);
}

/* ---- Writing ----------------------------------------------------------- */

/* Send what is queued in out; wait for writability when it won't go. */
static void flush_out(struct probe *p) {
  while (p->out.len > 0) {
    ssize_t n;
    if (p->ssl) {
      ERR_clear_error();
      int r = SSL_write(p->ssl, p->out.data, (int)p->out.len);
      if (r <= 0) {
        int e = SSL_get_error(p->ssl, r);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
          want(p, EPOLLIN | EPOLLOUT);
          return;
        }
        probe_fail(p, SP_CONNECTION_CLOSED, "write failed in %s",
                   conn_state_names[p->state]);
        return;
      }
      n = r;
    } else {
      n = send(p->fd, p->out.data, p->out.len, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
          want(p, EPOLLIN | EPOLLOUT);
          return;
        }
        int err = errno;
        probe_fail(p, SP_CONNECTION_CLOSED, "write failed in %s: %s",
                   conn_state_names[p->state], strerror(err));
        return;
      }
    }
    sp_buf_consume(&p->out, (size_t)n);
  }
  want(p, EPOLLIN);
}

/* Queue one line and send it; the transcript shows `shown` instead when
 * the line carries a credential. */
static void send_line(struct probe *p, const char *cmd, const char *shown) {
  size_t n = strnlen(cmd, SP_MAX_LINE);
  if (p->env->req->trace) {
    const char *t = shown ? shown : cmd;
    sp_transcript_add(&p->transcript, "C: ", t, strnlen(t, SP_MAX_LINE));
  }
  if (sp_buf_append(&p->out, cmd, n) != 0 ||
      sp_buf_append(&p->out, "\r\n", 2) != 0) {
    probe_fail(p, SP_PROTOCOL_ERROR, "output buffer full");
    return;
  }
  flush_out(p);
}

/* Queue one command line (no credentials in it) and send. */
static void send_command(struct probe *p, const char *cmd) {
  send_line(p, cmd, NULL);
}

/* ---- Connecting -------------------------------------------------------- */

static void start_tls(struct probe *p, enum conn_state st);
static void handle_tls(struct probe *p, uint32_t events);
void sp_probe_connect(struct probe *p);
static void on_connected(struct probe *p);

/* A connect attempt failed: try the next address or settle the code. */
static void connect_failed(struct probe *p, int err) {
  p->last_errno = err;
  char addr[64];
  addr_text(&p->env->addrs[p->addr_cur], addr, sizeof(addr));
  sp_probe_trail(p, "connect to %s failed: %s", addr,
                 err == ETIMEDOUT ? "timed out" : strerror(err));
  sp_probe_close(p);
  if (p->addr_cur < p->addr_last && now_s() < p->env->deadline) {
    p->addr_cur++;
    sp_probe_connect(p);
    return;
  }
  if (p->kind == AK_TLS_TRIAL) {
    trial_end(p, connect_code(err), "the second connection failed: %s",
              err == ETIMEDOUT ? "timed out" : strerror(err));
    return;
  }
  enum sp_code code = connect_code(err);
  sp_probe_decide(p, code, "connect to %s port %u: %s", addr,
                  (unsigned)p->res->port,
                  err == ETIMEDOUT ? "timed out" : strerror(err));
}

/* Open a non-blocking connection to the current address. */
void sp_probe_connect(struct probe *p) {
  struct probe_env *b = p->env;
  struct sockaddr_storage sa = b->addrs[p->addr_cur];
  socklen_t salen = sa.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                             : sizeof(struct sockaddr_in);
  if (sa.ss_family == AF_INET6)
    ((struct sockaddr_in6 *)&sa)->sin6_port = htons(p->res->port);
  else
    ((struct sockaddr_in *)&sa)->sin_port = htons(p->res->port);
  addr_text(&sa, p->res->address, sizeof(p->res->address));

  if (b->req->allow_address &&
      !b->req->allow_address((struct sockaddr *)&sa, b->req->allow_ctx)) {
    sp_probe_trail(p, "address %s is not allowed: skipped", p->res->address);
    if (p->addr_cur < p->addr_last) {
      p->addr_cur++;
      sp_probe_connect(p);
    } else {
      sp_probe_decide(p, SP_POLICY_VIOLATION,
                      "address %s is not allowed for this probe",
                      p->res->address);
    }
    return;
  }
  double now = now_s();
  int left = p->addr_last - p->addr_cur + 1;
  p->attempt_deadline = now + (b->deadline - now) / (left > 0 ? left : 1);
  set_state(p, CS_CONNECT);

  p->fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (p->fd < 0) {
    connect_failed(p, errno);
    return;
  }
  int one = 1;
  setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (b->req->source) {
    struct sockaddr_storage src;
    memset(&src, 0, sizeof(src));
    socklen_t srclen = 0;
    if (sa.ss_family == AF_INET6) {
      struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&src;
      s6->sin6_family = AF_INET6;
      if (inet_pton(AF_INET6, b->req->source, &s6->sin6_addr) == 1)
        srclen = sizeof(*s6);
    } else {
      struct sockaddr_in *s4 = (struct sockaddr_in *)&src;
      s4->sin_family = AF_INET;
      if (inet_pton(AF_INET, b->req->source, &s4->sin_addr) == 1)
        srclen = sizeof(*s4);
    }
    if (srclen == 0 || bind(p->fd, (struct sockaddr *)&src, srclen) != 0) {
      connect_failed(p, srclen == 0 ? EAFNOSUPPORT : errno);
      return;
    }
  }
  if (connect(p->fd, (struct sockaddr *)&sa, salen) != 0 &&
      errno != EINPROGRESS) {
    connect_failed(p, errno);
    return;
  }
  want(p, EPOLLOUT);
}

/* CS_CONNECT: the socket became writable (or failed). */
static void handle_connect(struct probe *p, uint32_t events) {
  (void)events;
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
    err = errno;
  if (err != 0) {
    connect_failed(p, err);
    return;
  }
  struct sockaddr_storage peer;
  socklen_t plen = sizeof(peer);
  if (getpeername(p->fd, (struct sockaddr *)&peer, &plen) != 0)
    return; /* still in progress (a stale event) */
  on_connected(p);
}

/* Build the PROXY protocol header (HAProxy proxy-protocol.txt) for the
 * connection's real addresses into buf; its length, or 0 when the
 * addresses cannot be read. v1 is one text line, v2 the binary form. */
static size_t proxy_header(int fd, enum sp_proxy version, unsigned char *buf,
                           size_t buflen, char *shown, size_t shownlen) {
  struct sockaddr_storage src, dst;
  socklen_t sl = sizeof(src), dl = sizeof(dst);
  if (getsockname(fd, (struct sockaddr *)&src, &sl) != 0 ||
      getpeername(fd, (struct sockaddr *)&dst, &dl) != 0 ||
      src.ss_family != dst.ss_family)
    return 0;
  bool v6 = src.ss_family == AF_INET6;
  const struct sockaddr_in *s4 = (const struct sockaddr_in *)&src;
  const struct sockaddr_in *d4 = (const struct sockaddr_in *)&dst;
  const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&src;
  const struct sockaddr_in6 *d6 = (const struct sockaddr_in6 *)&dst;
  uint16_t sport = ntohs(v6 ? s6->sin6_port : s4->sin_port);
  uint16_t dport = ntohs(v6 ? d6->sin6_port : d4->sin_port);
  if (version == SP_PROXY_V1) {
    char a[64], b[64];
    addr_text(&src, a, sizeof(a));
    addr_text(&dst, b, sizeof(b));
    int n =
        snprintf((char *)buf, buflen, "PROXY %s %s %s %u %u\r\n",
                 v6 ? "TCP6" : "TCP4", a, b, (unsigned)sport, (unsigned)dport);
    if (n <= 0 || (size_t)n >= buflen)
      return 0;
    snprintf(shown, shownlen, "%.*s", n - 2, (const char *)buf);
    return (size_t)n;
  }
  static const unsigned char sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                        0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
  size_t alen = v6 ? 36 : 12; /* two addresses and two ports */
  if (buflen < 16 + alen)
    return 0;
  memcpy(buf, sig, sizeof(sig));
  buf[12] = 0x21;             /* version 2, command PROXY */
  buf[13] = v6 ? 0x21 : 0x11; /* TCP over IPv6 / IPv4 */
  buf[14] = (unsigned char)(alen >> 8);
  buf[15] = (unsigned char)(alen & 0xff);
  unsigned char *q = buf + 16;
  if (v6) {
    memcpy(q, &s6->sin6_addr, 16);
    memcpy(q + 16, &d6->sin6_addr, 16);
    q += 32;
  } else {
    memcpy(q, &s4->sin_addr, 4);
    memcpy(q + 4, &d4->sin_addr, 4);
    q += 8;
  }
  q[0] = (unsigned char)(sport >> 8);
  q[1] = (unsigned char)(sport & 0xff);
  q[2] = (unsigned char)(dport >> 8);
  q[3] = (unsigned char)(dport & 0xff);
  snprintf(shown, shownlen, "[PROXY v2 header, %zu bytes, %s]", 16 + alen,
           v6 ? "TCP6" : "TCP4");
  return 16 + alen;
}

/* Send the PROXY header first (every kind of connection: the trial, the
 * legacy identification and the injection test too). It is a few dozen
 * bytes on a fresh socket: anything short of a whole send fails the
 * probe. 0, or -1 when the probe is decided. */
static int send_proxy_header(struct probe *p) {
  unsigned char hdr[128];
  char shown[128];
  size_t n = proxy_header(p->fd, p->env->req->proxy_protocol, hdr, sizeof(hdr),
                          shown, sizeof(shown));
  ssize_t w = n ? send(p->fd, hdr, n, MSG_NOSIGNAL) : -1;
  if (w != (ssize_t)n || n == 0) {
    int err = errno;
    if (p->kind == AK_TLS_TRIAL) {
      trial_end(p, SP_CONNECTION_CLOSED, "cannot send the PROXY header");
      return -1;
    }
    probe_fail(p, SP_CONNECTION_CLOSED, "cannot send the PROXY header: %s",
               n ? strerror(err) : "no socket addresses");
    return -1;
  }
  if (p->env->req->trace)
    sp_transcript_add(&p->transcript, "C: ", shown, strlen(shown));
  return 0;
}

/* The TCP connection is up: time it and go to TLS or the greeting. */
static void on_connected(struct probe *p) {
  sp_probe_trail(p, "connected to %s port %u", p->res->address,
                 (unsigned)p->res->port);
  if (p->env->req->proxy_protocol != SP_PROXY_NONE && send_proxy_header(p) != 0)
    return;
  if (p->mode == SP_TLS_IMPLICIT) {
    start_tls(p, CS_TLS_IMPLICIT);
    return;
  }
  set_state(p, CS_BANNER);
  /* A port with a TLS trial beside it (job_spawn decides which: never a
   * relay, where a TLS hello before the greeting is a pregreet
   * violation) starts it when the greeting is this late. */
  double wait = p->env->req->banner_wait_s;
  double total = p->env->req->timeout_s;
  if (wait <= 0)
    wait = total / 3 < 2.0 ? total / 3 : 2.0;
  p->banner_deadline = p->partner && is_main(p) ? now_s() + wait : 0;
  want(p, EPOLLIN);
}

/* ---- TLS --------------------------------------------------------------- */

static void handle_dialogue(struct probe *p, uint32_t events);
static void handle_inject_wait(struct probe *p, uint32_t events);
static void send_hello(struct probe *p, const char *verb);

/* The TLS message callback: note a server's CertificateRequest (whether
 * it accepted our certificate the client cannot see: "requested and
 * sent" is what we can say). */
static void tls_message_seen(int write_p, int version, int content_type,
                             const void *buf, size_t len, SSL *ssl, void *arg) {
  (void)version;
  (void)ssl;
  struct probe *p = arg;
  if (write_p || content_type != SSL3_RT_HANDSHAKE || len < 1 ||
      ((const unsigned char *)buf)[0] != SSL3_MT_CERTIFICATE_REQUEST)
    return;
  if (!p->res->client_cert_requested)
    sp_probe_trail(p, "the server asks for a client certificate: %s",
                   p->env->client_cert ? "sending ours" : "we have none");
  p->res->client_cert_requested = true;
  p->res->client_cert_sent = p->env->client_cert != NULL;
}

/* Make the TLS session and start the handshake. */
static void start_tls(struct probe *p, enum conn_state st) {
  struct probe_env *b = p->env;
  set_state(p, st);
  SSL_CTX *ctx = p->kind == AK_LEGACY_TLS ? b->legacy_ctx(b) : b->ctx;
  p->ssl = ctx ? SSL_new(ctx) : NULL;
  p->sniff.len = 0;
  BIO *bio = p->ssl ? sp_tls_sniff_bio(p->fd, &p->sniff) : NULL;
  if (!bio) {
    probe_fail(p, SP_TLS_HANDSHAKE_FAILED, "cannot create a TLS session");
    return;
  }
  SSL_set_bio(p->ssl, bio, bio);
  memset(&p->vlog, 0, sizeof(p->vlog));
  SSL_set_ex_data(p->ssl, sp_tls_verify_index(), &p->vlog);
  const char *sni =
      b->req->sni ? b->req->sni : (b->host_is_ip ? NULL : b->req->host);
  if (sni)
    SSL_set_tlsext_host_name(p->ssl, sni);
  if (b->client_cert) {
    SSL_use_certificate(p->ssl, b->client_cert);
    SSL_use_PrivateKey(p->ssl, b->client_key);
    for (int i = 0; b->client_chain && i < sk_X509_num(b->client_chain); i++)
      SSL_add1_chain_cert(p->ssl, sk_X509_value(b->client_chain, i));
  }
  SSL_set_msg_callback(p->ssl, tls_message_seen);
  SSL_set_msg_callback_arg(p->ssl, p);
  SSL_set_connect_state(p->ssl);
  sp_probe_trail(p, "TLS handshake (%s, SNI %s)",
                 st == CS_TLS_IMPLICIT ? "implicit" : "after STARTTLS",
                 sni ? sni : "none");
  handle_tls(p, 0);
}

/* For implicit TLS: did the server answer our hello with plaintext SMTP?
 * Returns true when it did; shown gets its first line, sanitised. */
static bool plaintext_answer(struct probe *p, char *shown, size_t shownlen) {
  const char *d = p->sniff.data;
  size_t n = p->sniff.len;
  if (n == 0 || d[0] < '2' || d[0] > '5') /* an SMTP reply code's first digit */
    return false;
  /* OpenSSL read only a record header's worth: fetch the rest of the
   * line for the message (non-blocking, bounded by the sniff buffer). */
  ssize_t more =
      recv(p->fd, p->sniff.data + n, sizeof(p->sniff.data) - n, MSG_DONTWAIT);
  if (more > 0)
    p->sniff.len = n = n + (size_t)more;
  size_t line = 0;
  while (line < n && d[line] != '\r' && d[line] != '\n')
    line++;
  sp_sanitize(shown, shownlen, d, line < 60 ? line : 60);
  if (p->env->req->trace)
    sp_transcript_add(&p->transcript, "S: ", d, line);
  if (is_main(p) && n >= 3 && d[1] >= '0' && d[1] <= '9' && d[2] >= '0' &&
      d[2] <= '9')
    p->res->reply_code[SP_PHASE_BANNER] =
        (d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0');
  return true;
}

/* The TLS trial completed a handshake: the port expects implicit TLS.
 * That decides the main probe (whose plaintext connection is dropped). */
static void trial_succeeded(struct probe *t) {
  struct probe *m = t->partner;
  char version[sizeof(t->res->tls_version)];
  sp_strlcpy(version, t->res->tls_version, sizeof(version));
  sp_probe_trail(m, "implicit-TLS trial: %s handshake completed", version);
  double waited = now_s() - m->t_state;
  sp_probe_finish(t);
  sp_probe_close(m);
  sp_probe_decide(m, SP_TLS_MODE_MISMATCH,
                  "no plaintext greeting after %.1fs, but implicit TLS (%s) "
                  "succeeded on a second connection: the port expects "
                  "implicit TLS (use --tls implicit)",
                  waited, version);
  sp_probe_finish(m);
}

/* What a legacy-level handshake that the strict context refused at a
 * modern version says about the server: its signature or key is what
 * the default security level refuses. */
static void legacy_only_detail(struct probe *p, char *buf, size_t buflen) {
  int nid = NID_undef;
  if (SSL_get_peer_signature_nid(p->ssl, &nid) == 1 &&
      (nid == NID_sha1 || nid == NID_md5_sha1))
    snprintf(buf, buflen,
             "the server signs with SHA-1, refused at the default security "
             "level (%s only at level 0; first try: %s)",
             p->res->tls_version, p->first_tls_error);
  else
    snprintf(buf, buflen,
             "the handshake succeeds only at security level 0 (%s, signature "
             "%s): a weak key or signature (first try: %s)",
             p->res->tls_version, nid == NID_undef ? "?" : OBJ_nid2sn(nid),
             p->first_tls_error);
}

/* What to do once the handshake is done. */
static void on_tls_up(struct probe *p) {
  struct probe_env *b = p->env;
  struct sp_result *res = p->res;
  res->tls = true;
  res->implicit_tls = p->state == CS_TLS_IMPLICIT;
  const char *name = b->req->sni ? b->req->sni : b->req->host;
  bool name_is_ip = !b->req->sni && b->host_is_ip;
  sp_tls_inspect(p->ssl, &p->vlog, name, name_is_ip, b->req->no_verify, res);
  if (p->kind == AK_LEGACY_TLS &&
      !b->req->no_verify) /* judge at the normal level */
    sp_tls_reverify(p->ssl, b->ctx, res);
  sp_probe_trail(p, "TLS up: %s %s, chain %s, hostname %s", res->tls_version,
                 res->tls_cipher,
                 res->verified ? "verified" : res->verify_error,
                 res->hostname_check == 1   ? "verified"
                 : res->hostname_check == 0 ? "mismatch"
                                            : "not verified");
  if (p->kind == AK_TLS_TRIAL) {
    trial_succeeded(p);
    return;
  }
  if (p->kind == AK_LEGACY_TLS && SSL_version(p->ssl) >= TLS1_2_VERSION) {
    /* Not an old protocol (the strict context speaks TLS 1.2 and later):
     * it refused something else. */
    char detail[SP_MAX_TEXT];
    legacy_only_detail(p, detail, sizeof(detail));
    set_hint(p, "the server's key or signature algorithms are below what "
                "current clients accept: give it a SHA-256 capable "
                "certificate and key (RSA 2048+ or ECDSA)");
    sp_probe_close(p);
    probe_fail(p, SP_TLS_HANDSHAKE_FAILED, "%s", detail);
    return;
  }
  if (p->kind == AK_INJECTION) {
    p->main_res->injection_tested = true;
    double wait = 1.0, left = b->deadline - now_s();
    p->inject_deadline = now_s() + (left / 2 < wait ? left / 2 : wait);
    set_state(p, CS_INJECT_WAIT);
    want(p, EPOLLIN);
    handle_inject_wait(p, EPOLLIN); /* a reply may already be decrypted */
    return;
  }
  if (p->state == CS_TLS_IMPLICIT) {
    set_state(p, CS_BANNER);
    p->banner_deadline = 0;
    want(p, EPOLLIN);
    handle_dialogue(p, EPOLLIN); /* the greeting may already be decrypted */
    return;
  }
  set_state(p, CS_EHLO_TLS);
  sp_reply_reset(&p->reply);
  send_hello(p, "EHLO");
}

/* True when a handshake error says the peer wants another TLS version or
 * a legacy signature algorithm (worth a legacy retry even when it came
 * after the certificate). */
static bool version_refused_reason(unsigned long e) {
  int r = ERR_GET_REASON(e);
  return r == SSL_R_UNSUPPORTED_PROTOCOL || r == SSL_R_NO_PROTOCOLS_AVAILABLE ||
         r == SSL_R_TLSV1_ALERT_PROTOCOL_VERSION ||
         r == SSL_R_WRONG_SSL_VERSION || r == SSL_R_UNSUPPORTED_SSL_VERSION ||
         r == SSL_R_LEGACY_SIGALG_DISALLOWED_OR_UNSUPPORTED ||
         r == SSL_R_WRONG_SIGNATURE_TYPE;
}

/* The TLS alert a handshake error carries (the peer sent it), or -1. */
static int received_alert(unsigned long e) {
  if (e == 0 || ERR_GET_LIB(e) != ERR_LIB_SSL)
    return -1;
  int r = ERR_GET_REASON(e);
  if (r < SSL_AD_REASON_OFFSET || r >= SSL_AD_REASON_OFFSET + 256)
    return -1;
  return r - SSL_AD_REASON_OFFSET;
}

/* Describe a failed handshake: the alert the server sent (by its RFC
 * name, e.g. internal_error (80)), a close without an alert, or
 * OpenSSL's reason. Returns the alert number or -1. */
static int tls_failure_text(int ssl_error, unsigned long e, char *why,
                            size_t whylen) {
  int alert = received_alert(e);
  if (alert >= 0) {
    char name[64];
    sp_strlcpy(name, SSL_alert_desc_string_long(alert), sizeof(name));
    for (char *c = name; *c; c++)
      if (*c == ' ')
        *c = '_';
    snprintf(why, whylen, "the server sent the TLS alert %s (%d)", name, alert);
    ERR_clear_error();
  } else if (ssl_error == SSL_ERROR_SYSCALL && e == 0) {
    snprintf(why, whylen,
             "the server closed the connection during the handshake, "
             "without a TLS alert");
  } else {
    sp_tls_error_text(why, whylen);
  }
  return alert;
}

/* CS_TLS_IMPLICIT / CS_TLS_STARTTLS: drive the handshake. */
static void handle_tls(struct probe *p, uint32_t events) {
  (void)events;
  quickack(p->fd);
  ERR_clear_error();
  int r = SSL_do_handshake(p->ssl);
  if (r == 1) {
    on_tls_up(p);
    return;
  }
  int e = SSL_get_error(p->ssl, r);
  /* An SMTP greeting where a TLS record belongs: the port is plaintext. */
  char shown[64];
  if (p->state == CS_TLS_IMPLICIT &&
      plaintext_answer(p, shown, sizeof(shown))) {
    if (p->kind == AK_TLS_TRIAL) {
      trial_end(p, SP_TLS_MODE_MISMATCH,
                "the port answered in plaintext (\"%s\"): it speaks SMTP, "
                "so the first connection keeps waiting for its greeting",
                shown);
      return;
    }
    probe_fail(p, SP_TLS_MODE_MISMATCH,
               "port speaks plaintext SMTP (\"%s\"), use STARTTLS", shown);
    return;
  }
  if (e == SSL_ERROR_WANT_READ) {
    want(p, EPOLLIN);
    return;
  }
  if (e == SSL_ERROR_WANT_WRITE) {
    want(p, EPOLLOUT);
    return;
  }
  char why[SP_MAX_TEXT];
  unsigned long tls_error = ERR_peek_error();
  int alert = tls_failure_text(e, tls_error, why, sizeof(why));
  sp_probe_trail(p, "TLS handshake failed: %s", why);
  if (p->kind == AK_TLS_TRIAL) {
    trial_end(p, SP_TLS_HANDSHAKE_FAILED, "%s", why);
    return;
  }
  /* Before the certificate, any failure may be a server that speaks only
   * an old protocol (some close without an alert): identify it with one
   * more connection, TLS 1.0+ at security level 0, used for nothing else.
   * Never for the injection test, which only asks about plaintext. */
  bool before_cert = !p->vlog.cert_seen;
  if (p->kind == AK_NORMAL &&
      (before_cert || version_refused_reason(tls_error)) &&
      now_s() < p->env->deadline) {
    sp_strlcpy(p->first_tls_error, why, sizeof(p->first_tls_error));
    p->first_tls_alert = alert;
    sp_probe_trail(p, "retrying with TLS 1.0/1.1 and legacy algorithms "
                      "allowed, to identify the server");
    sp_probe_close(p);
    p->kind = AK_LEGACY_TLS;
    p->addr_last = p->addr_cur;
    sp_probe_connect(p);
    return;
  }
  if (p->kind == AK_LEGACY_TLS && p->first_tls_error[0]) {
    /* The retry failed too: the first failure is the one to report. */
    sp_probe_trail(p, "the legacy retry failed too");
    sp_strlcpy(why, p->first_tls_error, sizeof(why));
    alert = p->first_tls_alert;
  }
  if (alert == SSL3_AD_HANDSHAKE_FAILURE)
    set_hint(p, "no protocol version, cipher or signature algorithm in "
                "common: compare both sides' TLS settings (the server's log "
                "says which)");
  else if (alert >= 0)
    set_hint(p, "the server refused the handshake with an alert: check the "
                "server's log first, and that it can read its key and "
                "certificate");
  probe_fail(p, SP_TLS_HANDSHAKE_FAILED, "%s", why);
}

/* ---- The SMTP dialogue ----------------------------------------------- */

/* Read what is there into p->in. Returns 1 data, 0 would block, -1 EOF
 * or error (the probe is decided). */
static int read_some(struct probe *p) {
  size_t space = SP_MAX_PROBE_BUFFER - p->in.len;
  char buf[4096];
  if (space > sizeof(buf))
    space = sizeof(buf);
  if (space == 0) {
    probe_fail(p, SP_PROTOCOL_ERROR, "more than %d bytes unparsed",
               SP_MAX_PROBE_BUFFER);
    return -1;
  }
  quickack(p->fd);
  ssize_t n;
  if (p->ssl) {
    ERR_clear_error();
    int r = SSL_read(p->ssl, buf, (int)space);
    if (r <= 0) {
      int e = SSL_get_error(p->ssl, r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
      n = e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL ? 0 : -1;
    } else {
      n = r;
    }
  } else {
    n = recv(p->fd, buf, space, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
      return 0;
  }
  if (n <= 0) {
    if (p->state == CS_QUIT) {
      sp_probe_finish(p);
      return -1;
    }
    const char *where = conn_state_names[p->state];
    if (p->state == CS_BANNER && p->env->req->proxy_protocol == SP_PROXY_NONE)
      set_hint(p, "the server closed the connection before its greeting: "
                  "check its logs (limits, blocklists); behind a load "
                  "balancer it may expect a PROXY protocol header "
                  "(--proxy-protocol)");
    else if (p->state == CS_BANNER)
      set_hint(p, "the server closed the connection after our PROXY "
                  "header: check that it expects this PROXY version, and "
                  "its logs");
    if (p->state == CS_BANNER)
      sp_probe_decide(p, SP_CONNECTION_CLOSED,
                      "the server closed the connection before its greeting");
    else
      sp_probe_decide(
          p, SP_CONNECTION_CLOSED,
          "the server closed the connection while waiting for the %s reply",
          where);
    sp_probe_finish(p);
    return -1;
  }
  sp_buf_append(&p->in, buf, (size_t)n);
  return 1;
}

/* Send EHLO (or HELO) with our name. */
static void send_hello(struct probe *p, const char *verb) {
  char cmd[SP_MAX_HOST + 8];
  snprintf(cmd, sizeof(cmd), "%s %s", verb,
           p->env->req->ehlo_name ? p->env->req->ehlo_name : p->env->fqdn);
  send_command(p, cmd);
}

/* One posture finding: a code that would be the verdict if it is worst. */
struct finding {
  enum sp_code code;        /* what */
  char detail[SP_MAX_TEXT]; /* why */
  const char *hint;         /* its own what-to-check-first, NULL: the code's */
};

/* Where to switch off AUTH before TLS, in the server's own terms. */
static const char *auth_before_tls_hint(const char *software) {
  if (strcmp(software, "Postfix") == 0)
    return "Postfix offers AUTH before TLS: set smtpd_tls_auth_only = yes "
           "(main.cf, or -o in master.cf for this port)";
  if (strcmp(software, "Exim") == 0)
    return "Exim offers AUTH before TLS: set auth_advertise_hosts = "
           "${if eq{$tls_in_cipher}{}{}{*}}";
  if (strcmp(software, "Haraka") == 0)
    return "Haraka offers AUTH before TLS: make its auth plugin require TLS "
           "(it may advertise AUTH in clear to addresses it counts as "
           "private)";
  return NULL; /* the code's hint names all three */
}

/* Collect the certificate findings (only with verification on). */
static int cert_findings(struct probe *p, struct finding *f) {
  struct probe_env *b = p->env;
  struct sp_result *res = p->res;
  int nf = 0;
  time_t now = time(NULL);
  if (!res->tls || b->req->no_verify)
    return 0;
  if (!res->verified) {
    f[nf].code = SP_CERT_UNTRUSTED;
    snprintf(f[nf++].detail, SP_MAX_TEXT, "certificate chain: %s",
             res->verify_error);
  }
  if (res->chain_not_after && res->chain_not_after <= now) {
    f[nf].code = SP_CERT_EXPIRED;
    snprintf(f[nf++].detail, SP_MAX_TEXT, "a certificate expired %ld days ago",
             -sp_days_left(res->chain_not_after, now));
  }
  if (res->hostname_check == 0) {
    f[nf].code = SP_CERT_HOSTNAME_MISMATCH;
    snprintf(f[nf++].detail, SP_MAX_TEXT,
             "the certificate does not match %s (SANs: %s)", res->verify_name,
             res->ncerts ? res->certs[0].sans : "");
  }
  return nf;
}

/* The TLS version number of the session (0 without TLS). */
static int session_version(const struct probe *p) {
  return p->ssl ? SSL_version(p->ssl) : 0;
}

/* After the last step: weigh certificate, protocol and capability
 * findings and settle on the worst one (or ok). */
static void judge(struct probe *p) {
  struct probe_env *b = p->env;
  struct sp_result *res = p->res;
  struct finding f[8] = {0};
  int nf = cert_findings(p, f);
  time_t now = time(NULL);
  if (res->tls && b->req->cert_warn_days >= 0 && res->chain_not_after &&
      res->chain_not_after > now &&
      sp_days_left(res->chain_not_after, now) < b->req->cert_warn_days) {
    f[nf].code = SP_CERT_EXPIRING;
    snprintf(f[nf++].detail, SP_MAX_TEXT, "a certificate expires in %ld days",
             sp_days_left(res->chain_not_after, now));
  }
  int min = b->req->min_tls_version ? b->req->min_tls_version : TLS1_2_VERSION;
  if (res->tls && session_version(p) < min) {
    f[nf].code = SP_TLS_WEAK_PROTOCOL;
    snprintf(f[nf++].detail, SP_MAX_TEXT, "the server negotiated %s",
             res->tls_version);
  }
  if ((res->caps_plain.flags & SP_CAP_STARTTLS) &&
      (res->caps_plain.flags & SP_CAP_AUTH)) {
    f[nf].hint = auth_before_tls_hint(res->software);
    f[nf].code = SP_AUTH_BEFORE_TLS;
    snprintf(f[nf++].detail, SP_MAX_TEXT, "AUTH %s is offered before STARTTLS",
             res->caps_plain.auth_mechs);
  }
  if (res->tls && res->role != SP_ROLE_RELAY && res->caps_tls.seen &&
      !(res->caps_tls.flags & SP_CAP_AUTH)) {
    f[nf].code = SP_AUTH_UNAVAILABLE;
    snprintf(f[nf++].detail, SP_MAX_TEXT,
             "AUTH is not offered after TLS on a %s port",
             sp_role_name(res->role));
  }
  int worst = -1;
  enum sp_state worst_state = SP_STATE_OK;
  for (int i = 0; i < nf; i++) {
    sp_code_set_add(&res->findings, f[i].code);
    enum sp_state st = sp_probe_state_for(res, f[i].code, b->req);
    sp_probe_trail(p, "finding %s (%s): %s", sp_code_name(f[i].code),
                   sp_state_name(st), f[i].detail);
    if (worst < 0 || st > worst_state) {
      worst = i;
      worst_state = st;
    }
  }
  if (worst >= 0 && f[worst].hint)
    set_hint(p, "%s", f[worst].hint);
  if (worst >= 0)
    sp_probe_decide(p, f[worst].code, "%s", f[worst].detail);
  else
    sp_probe_decide(p, SP_OK, "%s", res->tls ? res->tls_version : "plaintext");
}

/* The subject of a reply's enhanced status code (RFC 3463: the 7 of
 * "4.7.1"), or -1 when the first line has none. */
static int enhanced_subject(const char *first) {
  const char *t = first;
  for (int i = 0; i < 3; i++, t++)
    if (*t < '0' || *t > '9')
      return -1;
  if (*t != ' ' && *t != '-')
    return -1;
  t++;
  if (*t < '2' || *t > '5' || t[1] != '.')
    return -1;
  t += 2;
  int subject = 0, digits = 0;
  for (; *t >= '0' && *t <= '9' && digits < 3; t++, digits++)
    subject = subject * 10 + (*t - '0');
  if (digits == 0 || *t != '.' || t[1] < '0' || t[1] > '9')
    return -1;
  return subject;
}

/* The server refused a step: a 4xx is deferred (temporary: limits, load,
 * greylisting; 4.7.x: security policy), anything else rejected. The
 * detail quotes the reply, enhanced status code included. */
static void refused(struct probe *p, const char *step) {
  int c = p->reply.code;
  bool temporary = c >= 400 && c < 500;
  int subject = enhanced_subject(p->reply.first);
  if (subject == 7 && p->res->client_cert_requested &&
      !p->res->client_cert_sent)
    set_hint(p, "the server asked for a client certificate and none was "
                "sent: it may require one (--client-cert, --client-key)");
  else if (temporary && subject == 7)
    set_hint(p, "a temporary refusal on security policy grounds (4.7.x): "
                "check how the server sees this client (authentication, "
                "TLS, reputation, blocklists); its log names the rule");
  else if (temporary && c == 421 && p->state == CS_BANNER &&
           p->env->req->proxy_protocol == SP_PROXY_NONE &&
           strcasestr(p->reply.first, "local error"))
    /* Postfix with smtpd_upstream_proxy_protocol sends this greeting when
     * no PROXY header came (and for other faults of its own). */
    set_hint(p, "the server could not serve the connection (421 local "
                "error): behind a load balancer it most likely expects a "
                "PROXY protocol header (--proxy-protocol); else check its "
                "log");
  else if (temporary && c == 421)
    set_hint(p, "the server is refusing connections for now (421): check "
                "its connection limits (per client and in all), its load, "
                "and whether it is shutting down; behind a load balancer it "
                "may expect a PROXY protocol header (--proxy-protocol)");
  sp_probe_decide(p, temporary ? SP_DEFERRED : SP_REJECTED,
                  "%s refused: \"%s\"", step, p->reply.first);
}

/* Remember the MTA a greeting or EHLO reply names, for tailored hints. */
static void note_software(struct probe *p, const char *text) {
  static const char *const known[] = {"Postfix", "Exim", "Haraka"};
  if (p->res->software[0] || !text)
    return;
  for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
    if (strcasestr(text, known[i])) {
      sp_strlcpy(p->res->software, known[i], sizeof(p->res->software));
      sp_probe_trail(p, "the server names itself: %s", known[i]);
      return;
    }
}

/* CS_BANNER: the greeting. */
static void on_banner(struct probe *p) {
  struct sp_result *res = p->res;
  res->reply_code[SP_PHASE_BANNER] = p->reply.code;
  p->banner_deadline = 0;
  if (p->partner && p->partner->state != CS_DONE) {
    if (p->partner->state != CS_TRIAL_IDLE)
      sp_probe_trail(p, "the greeting came: the implicit-TLS trial is "
                        "dropped");
    sp_probe_finish(p->partner);
  }
  note_software(p, p->reply.first);
  if (p->reply.code != 220) {
    refused(p, "greeting");
    return;
  }
  if (p->res->tls) { /* implicit TLS: the first EHLO is already inside */
    set_state(p, CS_EHLO_TLS);
  } else {
    set_state(p, CS_EHLO);
  }
  send_hello(p, "EHLO");
}

static void after_ehlo(struct probe *p);

/* CS_EHLO / CS_HELO: the hello reply before TLS (or without TLS). */
static void on_hello(struct probe *p) {
  struct sp_result *res = p->res;
  res->reply_code[SP_PHASE_EHLO] = p->reply.code;
  if (p->state == CS_EHLO && p->reply.code >= 500 && p->reply.code < 510 &&
      p->env->req->proxy_protocol != SP_PROXY_NONE) {
    /* The reply to our PROXY header, read as a command, comes first. */
    set_hint(p, "the server does not expect the PROXY protocol: probe "
                "without --proxy-protocol, or enable it on the server "
                "(Postfix: smtpd_upstream_proxy_protocol = haproxy)");
    sp_probe_decide(p, SP_PROTOCOL_ERROR,
                    "the server answered the PROXY header as a command "
                    "(\"%s\"): it does not expect the PROXY protocol",
                    p->reply.first);
    return;
  }
  if (p->state == CS_EHLO && p->reply.code >= 500 && p->reply.code != 554) {
    sp_probe_trail(p, "EHLO refused (%d), falling back to HELO", p->reply.code);
    set_state(p, CS_HELO);
    send_hello(p, "HELO");
    return;
  }
  if (p->reply.code != 250) {
    refused(p, p->state == CS_HELO ? "HELO" : "EHLO");
    return;
  }
  note_software(p, p->reply.text.data);
  if (p->state == CS_EHLO)
    sp_caps_parse(&res->caps_plain, &p->reply);
  if (p->mode == SP_TLS_NONE) {
    after_ehlo(p);
    return;
  }
  if (!(res->caps_plain.flags & SP_CAP_STARTTLS)) {
    sp_probe_decide(p, SP_STARTTLS_UNAVAILABLE, "%s",
                    p->state == CS_HELO
                        ? "EHLO was refused, so STARTTLS cannot be offered"
                        : "STARTTLS is not in the EHLO reply");
    return;
  }
  set_state(p, CS_STARTTLS);
  if (p->kind ==
      AK_INJECTION) /* a harmless command pipelined behind STARTTLS */
    send_line(p, "STARTTLS\r\nNOOP",
              "STARTTLS + NOOP pipelined in one write (injection test)");
  else
    send_command(p, "STARTTLS");
}

/* CS_STARTTLS: the reply to STARTTLS. */
static void on_starttls(struct probe *p) {
  p->res->reply_code[SP_PHASE_STARTTLS] = p->reply.code;
  if (p->reply.code != 220) {
    if (p->reply.code >= 400 && p->reply.code < 500)
      set_hint(p,
               "the server offers STARTTLS but could not start TLS "
               "(%d): often it cannot read its key or certificate; "
               "check its log",
               p->reply.code);
    sp_probe_decide(p, SP_STARTTLS_UNAVAILABLE, "STARTTLS refused: \"%s\"",
                    p->reply.first);
    return;
  }
  /* RFC 3207: anything the server sent after its 220 is discarded. */
  if (p->in.len) {
    sp_probe_trail(p,
                   "discarding %zu plaintext bytes sent after 220 to STARTTLS",
                   p->in.len);
    sp_buf_consume(&p->in, p->in.len);
  }
  start_tls(p, CS_TLS_STARTTLS);
}

/* CS_EHLO_TLS: the EHLO reply inside TLS. */
static void on_ehlo_tls(struct probe *p) {
  struct sp_result *res = p->res;
  res->reply_code[SP_PHASE_EHLO_TLS] = p->reply.code;
  if (p->reply.code != 250) {
    refused(p, "EHLO after TLS");
    return;
  }
  sp_caps_parse(&res->caps_tls, &p->reply);
  after_ehlo(p);
}

/* Start the MAIL FROM / RCPT TO trial, or judge when none is asked. */
static void start_trial(struct probe *p) {
  const char *from = p->env->req->mail_from;
  if (!from) {
    judge(p);
    return;
  }
  char cmd[SP_MAX_LINE];
  snprintf(cmd, sizeof(cmd), "MAIL FROM:<%s>", from);
  set_state(p, CS_MAIL);
  send_command(p, cmd);
}

/* Send the AUTH step for the mechanism (step 0: the command itself). */
static void send_auth(struct probe *p) {
  const struct sp_request *req = p->env->req;
  const char *m = p->auth_mech;
  char cmd[SP_MAX_LINE];
  char b64[SP_MAX_LINE];
  char shown[64];
  int n = 0;
  if (strcmp(m, "PLAIN") == 0) {
    n = sp_sasl_plain(req->auth_user, req->auth_secret, b64, sizeof(b64));
    snprintf(cmd, sizeof(cmd), "AUTH PLAIN %s", b64);
    snprintf(shown, sizeof(shown), "AUTH PLAIN ********");
  } else if (strcmp(m, "XOAUTH2") == 0) {
    n = sp_sasl_xoauth2(req->auth_user, req->auth_secret, b64, sizeof(b64));
    snprintf(cmd, sizeof(cmd), "AUTH XOAUTH2 %s", b64);
    snprintf(shown, sizeof(shown), "AUTH XOAUTH2 ********");
  } else {
    snprintf(cmd, sizeof(cmd), "AUTH %s", m);
    snprintf(shown, sizeof(shown), "AUTH %s", m);
  }
  OPENSSL_cleanse(b64, sizeof(b64));
  if (n < 0) {
    OPENSSL_cleanse(cmd, sizeof(cmd));
    sp_probe_decide(p, SP_AUTH_FAILED, "credentials too long for %s", m);
    return;
  }
  send_line(p, cmd, shown);
  OPENSSL_cleanse(cmd, sizeof(cmd));
}

/* After the last EHLO: AUTH when asked (only inside TLS, only to a
 * server whose certificate passed), then the trial, then the verdict. */
static void after_ehlo(struct probe *p) {
  const struct sp_request *req = p->env->req;
  struct sp_result *res = p->res;
  if (p->kind == AK_INJECTION) {
    sp_probe_finish(p); /* no STARTTLS to test */
    return;
  }
  if (!req->auth_user) {
    start_trial(p);
    return;
  }
  struct finding f[4] = {0};
  if (!res->tls) {
    sp_probe_decide(p, SP_AUTH_UNAVAILABLE,
                    "refusing to send credentials without TLS");
    return;
  }
  if (cert_findings(p, f) > 0) {
    sp_probe_trail(p, "credentials not sent: the certificate did not pass");
    judge(p);
    return;
  }
  if (!(res->caps_tls.flags & SP_CAP_AUTH)) {
    sp_probe_decide(p, SP_AUTH_UNAVAILABLE, "AUTH is not offered after TLS");
    return;
  }
  p->auth_mech = sp_sasl_pick(res->caps_tls.auth_mechs, req->auth_mech);
  if (!p->auth_mech) {
    set_hint(p,
             "the server offers AUTH %s: pick one of those (--auth-mech), or "
             "enable the wanted mechanism on the server",
             res->caps_tls.auth_mechs);
    sp_probe_decide(p, SP_AUTH_UNAVAILABLE,
                    "mechanism %s is not offered (offered: %s)",
                    req->auth_mech ? req->auth_mech : "PLAIN/LOGIN/CRAM-MD5",
                    res->caps_tls.auth_mechs);
    return;
  }
  set_state(p, CS_AUTH);
  p->auth_step = 0;
  send_auth(p);
}

/* CS_AUTH: 235 done, 334 continue, anything else failed. */
static void on_auth(struct probe *p) {
  const struct sp_request *req = p->env->req;
  struct sp_result *res = p->res;
  res->reply_code[SP_PHASE_AUTH] = p->reply.code;
  if (p->reply.code == 235) {
    sp_strlcpy(res->auth_mech, p->auth_mech, sizeof(res->auth_mech));
    sp_probe_trail(p, "authenticated with %s", p->auth_mech);
    start_trial(p);
    return;
  }
  if (p->reply.code >= 400 && p->reply.code < 500) {
    set_hint(p, "the server could not check the credentials just now "
                "(4xx): check its authentication backend (e.g. saslauthd, "
                "Dovecot auth) and its log");
    sp_probe_decide(p, SP_DEFERRED, "AUTH %s refused: \"%s\"", p->auth_mech,
                    p->reply.first);
    return;
  }
  if (p->reply.code != 334) {
    sp_probe_decide(p, SP_AUTH_FAILED, "AUTH %s: \"%s\"", p->auth_mech,
                    p->reply.first);
    return;
  }
  if (++p->auth_step > 3) {
    sp_probe_decide(p, SP_PROTOCOL_ERROR, "AUTH %s: too many challenges",
                    p->auth_mech);
    return;
  }
  char line[SP_MAX_LINE];
  int n = -1;
  const char *m = p->auth_mech;
  const char *value = NULL;
  if (strcmp(m, "LOGIN") == 0)
    value = p->auth_step == 1 ? req->auth_user : req->auth_secret;
  if (value)
    n = sp_b64_encode(value, strlen(value), line, sizeof(line));
  else if (strcmp(m, "CRAM-MD5") == 0 && p->auth_step == 1)
    n = sp_sasl_cram_md5(req->auth_user, req->auth_secret, p->reply.text.data,
                         line, sizeof(line));
  else if (strcmp(m, "XOAUTH2") == 0) /* 334 carries an error: end it */
    n = snprintf(line, sizeof(line), "%s", "");
  if (n < 0) {
    sp_probe_decide(p, SP_PROTOCOL_ERROR,
                    "AUTH %s: unexpected challenge \"%s\"", m, p->reply.first);
    return;
  }
  send_line(p, line, "********");
  OPENSSL_cleanse(line, sizeof(line));
}

/* CS_MAIL: the reply to MAIL FROM. */
static void on_mail(struct probe *p) {
  const struct sp_request *req = p->env->req;
  p->res->reply_code[SP_PHASE_MAIL_FROM] = p->reply.code;
  if (p->reply.code != 250) {
    refused(p, "MAIL FROM");
    return;
  }
  if (!req->rcpt_to) {
    set_state(p, CS_RSET);
    send_command(p, "RSET");
    return;
  }
  char cmd[SP_MAX_LINE];
  snprintf(cmd, sizeof(cmd), "RCPT TO:<%s>", req->rcpt_to);
  set_state(p, CS_RCPT);
  send_command(p, cmd);
}

/* CS_RCPT: the reply to RCPT TO. */
static void on_rcpt(struct probe *p) {
  p->res->reply_code[SP_PHASE_RCPT_TO] = p->reply.code;
  if (p->reply.code != 250 && p->reply.code != 251) {
    refused(p, "RCPT TO");
    return;
  }
  if (p->env->req->send_message) {
    set_state(p, CS_DATA);
    send_command(p, "DATA");
  } else {
    set_state(p, CS_RSET);
    send_command(p, "RSET");
  }
}

/* CS_DATA: 354, then the test message with a unique Message-ID. */
static void on_data(struct probe *p) {
  const struct sp_request *req = p->env->req;
  struct sp_result *res = p->res;
  if (p->reply.code != 354) {
    p->res->message_id[0] = '\0';
    refused(p, "DATA");
    return;
  }
  unsigned char rnd[8];
  if (RAND_bytes(rnd, sizeof(rnd)) != 1)
    memset(rnd, 0, sizeof(rnd));
  char date[64];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
  snprintf(res->message_id, sizeof(res->message_id),
           "%lld.%02x%02x%02x%02x%02x%02x%02x%02x@smtp-probe.invalid",
           (long long)now, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5],
           rnd[6], rnd[7]);
  char msg[SP_MAX_OUTPUT - 2];
  snprintf(msg, sizeof(msg),
           "From: <%s>\r\nTo: <%s>\r\nSubject: smtp-probe test message\r\n"
           "Date: %s\r\nMessage-ID: <%s>\r\n"
           "X-Smtp-Probe: smtp-probe " SP_VERSION " delivery check\r\n\r\n"
           "This message was sent by smtp-probe to check mail delivery.\r\n.",
           req->mail_from, req->rcpt_to, date, res->message_id);
  set_state(p, CS_BODY);
  send_line(p, msg, "[test message headers and body, then '.']");
}

/* CS_BODY: the server's answer to the whole message. */
static void on_body(struct probe *p) {
  if (p->reply.code != 250) {
    p->res->message_id[0] = '\0'; /* not accepted */
    refused(p, "the message (end of data)");
    return;
  }
  sp_probe_trail(p, "test message accepted: %s", p->reply.first);
  judge(p);
}

/* CS_RSET: the trial is over, whatever RSET says. */
static void on_rset(struct probe *p) {
  judge(p);
}

/* CS_QUIT: the reply to QUIT; the probe is over either way. */
static void on_quit(struct probe *p) {
  sp_probe_finish(p);
}

/* The reply handler of each dialogue state. */
static void (*const reply_handlers[CS_COUNT])(struct probe *) = {
    [CS_BANNER] = on_banner,     [CS_EHLO] = on_hello,
    [CS_HELO] = on_hello,        [CS_STARTTLS] = on_starttls,
    [CS_EHLO_TLS] = on_ehlo_tls, [CS_AUTH] = on_auth,
    [CS_MAIL] = on_mail,         [CS_RCPT] = on_rcpt,
    [CS_DATA] = on_data,         [CS_BODY] = on_body,
    [CS_RSET] = on_rset,         [CS_QUIT] = on_quit,
};

/* Dialogue states: flush, read, and hand each whole reply to its state. */
static void handle_dialogue(struct probe *p, uint32_t events) {
  if ((events & EPOLLOUT) && p->out.len) {
    flush_out(p);
    if (p->state == CS_DONE)
      return;
  }
  if (p->in.len == 0 && !(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
    return;
  for (int rounds = 0; rounds < 64; rounds++) {
    int r = p->in.len && rounds == 0 ? 1 : read_some(p);
    if (r < 0)
      return;
    if (r == 0 && p->in.len == 0)
      return;
    while (p->in.len && reply_handlers[p->state]) {
      char why[SP_MAX_TEXT];
      struct sp_buf *t = p->env->req->trace ? &p->transcript : NULL;
      enum sp_reply_status st =
          sp_reply_feed(&p->reply, &p->in, t, why, sizeof(why));
      if (st == SP_REPLY_ERROR) {
        if (p->state == CS_QUIT) {
          sp_probe_finish(p);
          return;
        }
        probe_fail(p, SP_PROTOCOL_ERROR, "%s: %s", conn_state_names[p->state],
                   why);
        return;
      }
      if (st == SP_REPLY_MORE)
        break;
      reply_handlers[p->state](p);
      if (p->state == CS_DONE)
        return;
      sp_reply_reset(&p->reply);
      if (!reply_handlers[p->state])
        return; /* now in TLS: the socket belongs to OpenSSL */
    }
    if (r == 0)
      return;
  }
}

/* CS_INJECT_WAIT: any reply now answers the command we pipelined behind
 * STARTTLS in plaintext: the server is vulnerable. */
static void handle_inject_wait(struct probe *p, uint32_t events) {
  (void)events;
  int r = read_some(p);
  if (r < 0) {
    sp_probe_trail(p, "the server closed the connection: not vulnerable");
    return; /* read_some finished the probe */
  }
  if (p->in.len == 0)
    return;
  char shown[80];
  sp_sanitize(shown, sizeof(shown), p->in.data,
              p->in.len < 60 ? p->in.len : 60);
  p->main_res->injection_vulnerable = true;
  sp_probe_trail(
      p, "reply inside TLS to a command sent before STARTTLS: \"%s\"", shown);
  sp_probe_finish(p);
}

/* Run the handler of the probe's state. */
void sp_probe_step(struct probe *p, uint32_t events) {
  switch (p->state) {
  case CS_CONNECT:
    handle_connect(p, events);
    break;
  case CS_TLS_IMPLICIT:
  case CS_TLS_STARTTLS:
    handle_tls(p, events);
    break;
  case CS_BANNER:
  case CS_EHLO:
  case CS_HELO:
  case CS_STARTTLS:
  case CS_EHLO_TLS:
  case CS_AUTH:
  case CS_MAIL:
  case CS_RCPT:
  case CS_DATA:
  case CS_BODY:
  case CS_RSET:
  case CS_QUIT:
    handle_dialogue(p, events);
    break;
  case CS_INJECT_WAIT:
    handle_inject_wait(p, events);
    break;
  case CS_WAIT_DNS:
  case CS_TRIAL_IDLE:
  case CS_DONE:
  case CS_COUNT:
    break;
  }
}

/* What the TLS trial found, for a banner_timeout detail ("" when the
 * trial never started). */
static void trial_outcome(const struct probe *p, char *buf, size_t buflen) {
  const struct probe *t = p->partner;
  buf[0] = '\0';
  if (!t || t->state == CS_TRIAL_IDLE)
    return;
  if (t->state == CS_DONE && t->decided)
    snprintf(buf, buflen, "; implicit-TLS trial: %s", t->res->detail);
  else
    snprintf(buf, buflen, "; an implicit-TLS trial got no answer either");
}

/* A deadline passed: say which phase starved. */
void sp_probe_timeout(struct probe *p, double now) {
  struct probe_env *b = p->env;
  if (p->state == CS_DONE)
    return;
  if (p->state == CS_CONNECT && now >= p->attempt_deadline &&
      now < b->deadline) {
    connect_failed(p, ETIMEDOUT);
    return;
  }
  if (p->state == CS_BANNER && p->banner_deadline > 0 &&
      now >= p->banner_deadline && now < b->deadline) {
    if (p->in.len > 0) {
      p->banner_deadline = 0; /* part of a greeting arrived: no trial */
      return;
    }
    trial_start(p, now - p->t_state);
    return;
  }
  if (p->state == CS_INJECT_WAIT && now >= p->inject_deadline) {
    sp_probe_trail(p, "no reply to the injected command: not vulnerable");
    sp_probe_finish(p);
    return;
  }
  if (now < b->deadline)
    return;
  if (p->kind == AK_TLS_TRIAL && p->state == CS_TRIAL_IDLE) {
    sp_probe_finish(p); /* never needed */
    return;
  }
  if (p->kind == AK_TLS_TRIAL) {
    trial_end(p, SP_READ_TIMEOUT, "no TLS answer before the deadline");
    return;
  }
  char trial[SP_MAX_TEXT];
  switch (p->state) {
  case CS_WAIT_DNS:
    sp_probe_decide(p, SP_DNS_ERROR, "resolution timed out");
    break;
  case CS_CONNECT:
    connect_failed(p, ETIMEDOUT);
    break;
  case CS_BANNER:
    trial_outcome(p, trial, sizeof(trial));
    sp_probe_decide(p, SP_BANNER_TIMEOUT, "no greeting within %.1fs%s",
                    now - p->t_state, trial);
    break;
  case CS_TLS_IMPLICIT:
  case CS_TLS_STARTTLS:
    sp_probe_decide(p, SP_READ_TIMEOUT, "the TLS handshake stalled");
    break;
  case CS_QUIT:
    break;
  default:
    sp_probe_decide(p, SP_READ_TIMEOUT, "no reply to %s within the deadline",
                    conn_state_names[p->state]);
    break;
  }
  sp_probe_finish(p);
}

/* The next moment this probe needs attention without I/O. */
double sp_probe_next_timer(const struct probe *p) {
  double t = p->env->deadline;
  if (p->state == CS_CONNECT && p->attempt_deadline < t)
    t = p->attempt_deadline;
  if (p->state == CS_BANNER && p->banner_deadline > 0 && p->banner_deadline < t)
    t = p->banner_deadline;
  if (p->state == CS_INJECT_WAIT && p->inject_deadline < t)
    t = p->inject_deadline;
  return t;
}
