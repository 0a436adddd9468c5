/*
 * engine.c - the non-blocking probe engine.
 *
 * One epoll loop runs many probes at once. Each probe is a small state
 * machine (an explicit state enum with a names table, every transition
 * through set_state(), one handler per state) that walks the straight
 * path of an SMTP check:
 *
 *   dns -> connect -> [implicit TLS] -> banner -> ehlo -> starttls ->
 *   tls_handshake -> ehlo_tls -> (judge) -> quit
 *
 * and ends with exactly one diagnosis code. Every probe has its own
 * deadline; every buffer has a cap; nothing blocks.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "probe_internal.h"
#include "resolve.h"

/* ---- Types ----------------------------------------------------------- */

#define SP_MAX_OUTPUT 4096 /* bytes queued for sending per probe */

/* What an epoll event's data.ptr points at. */
enum ev_kind {
  EV_PROBE, /* a probe's connection */
  EV_DNS,   /* a c-ares socket */
  EV_WAKE   /* the engine's eventfd */
};

/* First member of everything registered with epoll. */
struct ev_tag {
  enum ev_kind kind; /* what the rest of the struct is */
};

/* The states of one probe's connection. */
enum conn_state {
  CS_WAIT_DNS,     /* waiting for the batch's resolution */
  CS_CONNECT,      /* TCP connect in progress */
  CS_TLS_IMPLICIT, /* TLS handshake before any SMTP */
  CS_BANNER,       /* waiting for the 220 greeting */
  CS_EHLO,         /* EHLO sent */
  CS_HELO,         /* HELO sent after EHLO was refused */
  CS_STARTTLS,     /* STARTTLS sent */
  CS_TLS_STARTTLS, /* TLS handshake after STARTTLS */
  CS_EHLO_TLS,     /* EHLO sent inside TLS */
  CS_AUTH,         /* AUTH exchange in progress */
  CS_MAIL,         /* MAIL FROM sent */
  CS_RCPT,         /* RCPT TO sent */
  CS_DATA,         /* DATA sent */
  CS_BODY,         /* test message sent */
  CS_RSET,         /* RSET sent after the trial */
  CS_INJECT_WAIT,  /* injection test: listening for injected replies */
  CS_QUIT,         /* verdict known, QUIT sent */
  CS_DONE,         /* finished */
  CS_COUNT
};

/* State names for the decision trail. */
static const char *const conn_state_names[CS_COUNT] = {
    "wait_dns", "connect",      "tls_implicit", "banner",      "ehlo", "helo",
    "starttls", "tls_starttls", "ehlo_tls",     "auth",        "mail", "rcpt",
    "data",     "body",         "rset",         "inject_wait", "quit", "done",
};

struct batch;
struct ctx_entry;

/* One probe: one port (and with all_addresses one address). */
struct probe {
  struct ev_tag tag;          /* EV_PROBE */
  struct batch *batch;        /* the request it belongs to */
  struct sp_result *res;      /* where it writes what it finds */
  enum conn_state state;      /* where it is */
  enum sp_tls_mode mode;      /* effective TLS mode (auto resolved) */
  int fd;                     /* the connection, -1 when none */
  SSL *ssl;                   /* TLS session, NULL before TLS */
  struct sp_verify_log vlog;  /* chain errors seen in the handshake */
  struct sp_sniff sniff;      /* first bytes read under TLS */
  uint32_t events;            /* epoll events registered, 0: none */
  enum sp_phase phase;        /* phase being timed */
  double t_phase;             /* when that phase began */
  double attempt_deadline;    /* connect deadline for this address */
  double banner_deadline;     /* when to test implicit TLS, 0: never */
  int addr_cur;               /* address index being tried */
  int addr_last;              /* last address index this probe may try */
  int last_errno;             /* last connect error */
  bool mismatch_retry;        /* a fresh connection testing implicit TLS */
  bool decided;               /* res->code is final */
  bool connect_timed;         /* the connect phase was recorded */
  bool legacy_tls;            /* retrying with TLS 1.0/1.1 allowed */
  bool injection;             /* this probe is a STARTTLS injection test */
  struct sp_result *main_res; /* for an injection test: the result it
                                 reports into */
  const char *auth_mech;      /* mechanism being used */
  int auth_step;              /* continuation replies answered */
  double inject_deadline;     /* end of listening for injected replies */
  struct sp_buf in;           /* bytes received, not yet parsed */
  struct sp_buf out;          /* bytes waiting to be sent */
  struct sp_buf transcript;   /* dialogue and decision trail (trace) */
  struct sp_reply reply;      /* reply being assembled */
};

/* A c-ares socket being watched. */
struct dns_sock {
  struct ev_tag tag;     /* EV_DNS */
  struct batch *batch;   /* whose channel */
  int fd;                /* the socket */
  struct dns_sock *next; /* next in the batch's list */
};

/* One submitted request and its probes. */
struct batch {
  struct sp_engine *eng;      /* owner */
  struct sp_request req;      /* copy; strings point at owned copies */
  char *strings[11];          /* owned copies of the request's strings */
  struct ctx_entry *ctxe;     /* the cached contexts for req.cafile */
  struct sp_result *scratch;  /* results of injection tests */
  int nscratch;               /* how many */
  SSL_CTX *ctx;               /* shared context for req.cafile */
  double t_submit;            /* monotonic submit time */
  double deadline;            /* t_submit + timeout */
  bool host_is_ip;            /* host is an IP literal (no DNS) */
  struct sp_dns *dns;         /* resolver channel while resolving */
  struct dns_sock *dns_socks; /* its sockets */
  bool resolved;              /* resolution finished (or not needed) */
  char dns_why[128];          /* why resolution failed */
  struct sockaddr_storage addrs[SP_MAX_ADDRESSES]; /* resolved addresses */
  int naddrs;                                      /* how many */
  struct probe *probes;                            /* nprobes probes */
  int nprobes;                                     /* how many */
  int ndone;                                       /* how many finished */
  struct sp_batch *out;                            /* results handed to done */
  sp_done_fn done;                                 /* completion callback */
  void *user;                                      /* its argument */
  int weight;         /* what it adds to the in-flight gauge */
  struct batch *next; /* list link */
};

/* One cached client context per trust-anchor file. */
struct ctx_entry {
  char *cafile;           /* NULL for the system store */
  SSL_CTX *ctx;           /* the context */
  SSL_CTX *legacy;        /* TLS 1.0+ variant, made when first needed */
  struct ctx_entry *next; /* list link */
};

/* The engine. */
struct sp_engine {
  int epfd;               /* epoll instance */
  int wakefd;             /* eventfd to wake the loop */
  struct ev_tag wake_tag; /* EV_WAKE */
  pthread_mutex_t lock;   /* guards queued and ctxs */
  struct batch *queued;   /* submitted, not started */
  struct batch *active;   /* running (loop thread only) */
  struct ctx_entry *ctxs; /* cached contexts */
  atomic_int inflight;    /* ports being probed */
  atomic_bool stopping;   /* ask the thread to end */
  bool thread_running;    /* sp_engine_start was called */
  pthread_t thread;       /* the loop thread */
  char fqdn[SP_MAX_HOST]; /* default EHLO name */
};

/* ---- Small helpers --------------------------------------------------- */

/* Monotonic time in seconds. */
static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Append a decision-trail line ("* ...") to the transcript. */
static void trail(struct probe *p, const char *fmt, ...) {
  if (!p->batch->req.trace)
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

/* Move to a new state (the one place transitions happen). */
static void set_state(struct probe *p, enum conn_state st) {
  if (p->state != st)
    trail(p, "state %s -> %s", conn_state_names[p->state],
          conn_state_names[st]);
  p->state = st;
}

/* Start timing a phase. */
static void phase_begin(struct probe *p, enum sp_phase ph) {
  p->phase = ph;
  p->t_phase = now_s();
}

/* Record the time of the phase being timed. */
static void phase_end(struct probe *p) {
  p->res->phase_s[p->phase] = now_s() - p->t_phase;
  p->res->phase_done[p->phase] = true;
}

/* Register, change or drop the epoll events for the probe's socket. */
static void want(struct probe *p, uint32_t events) {
  if (p->fd < 0 || p->events == events)
    return;
  struct epoll_event ev = {.events = events, .data.ptr = &p->tag};
  int op = p->events == 0 ? EPOLL_CTL_ADD
           : events == 0  ? EPOLL_CTL_DEL
                          : EPOLL_CTL_MOD;
  epoll_ctl(p->batch->eng->epfd, op, p->fd, &ev);
  p->events = events;
}

/* Re-arm TCP_QUICKACK so our reads never wait on a delayed ACK. */
static void quickack(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
}

/* Close the connection and its TLS session. */
static void close_conn(struct probe *p) {
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
static enum sp_state result_state(const struct sp_result *res,
                                  enum sp_code code,
                                  const struct sp_request *req) {
  enum sp_state st = sp_code_state(code, res->role);
  if (code == SP_CERT_EXPIRING && req->cert_crit_days >= 0 &&
      sp_days_left(res->chain_not_after, time(NULL)) < req->cert_crit_days)
    st = SP_STATE_CRITICAL;
  return st;
}

/* End the probe: close, hand the transcript over, count it done. */
static void finish(struct probe *p) {
  if (p->state == CS_DONE)
    return;
  close_conn(p);
  struct sp_result *res = p->res;
  if (!res->phase_done[SP_PHASE_TOTAL]) {
    res->phase_s[SP_PHASE_TOTAL] = now_s() - p->batch->t_submit;
    res->phase_done[SP_PHASE_TOTAL] = true;
  }
  res->state = result_state(res, res->code, &p->batch->req);
  if (p->transcript.len) {
    res->transcript = p->transcript.data;
    res->transcript_len = p->transcript.len;
    p->transcript.data = NULL;
  }
  sp_buf_free(&p->transcript);
  sp_buf_free(&p->in);
  sp_buf_free(&p->out);
  set_state(p, CS_DONE);
  p->batch->ndone++;
}

static void send_command(struct probe *p, const char *cmd);
static void send_line(struct probe *p, const char *cmd, const char *shown);

/* Settle the diagnosis; say goodbye politely when the dialogue allows,
 * otherwise close at once. */
static void decide(struct probe *p, enum sp_code code, const char *fmt, ...) {
  struct sp_result *res = p->res;
  if (!p->decided) {
    p->decided = true;
    res->code = code;
    res->findings |= 1u << code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->detail, sizeof(res->detail), fmt, ap);
    va_end(ap);
    res->phase_s[SP_PHASE_TOTAL] = now_s() - p->batch->t_submit;
    res->phase_done[SP_PHASE_TOTAL] = true;
    trail(p, "diagnosis %s: %s", sp_code_name(code), res->detail);
  }
  bool can_quit =
      p->fd >= 0 && p->out.len == 0 &&
      (p->state == CS_BANNER || p->state == CS_EHLO || p->state == CS_HELO ||
       p->state == CS_STARTTLS || p->state == CS_EHLO_TLS ||
       p->state == CS_AUTH || p->state == CS_MAIL || p->state == CS_RCPT ||
       p->state == CS_DATA || p->state == CS_BODY || p->state == CS_RSET);
  if (can_quit && now_s() < p->batch->deadline) {
    set_state(p, CS_QUIT);
    send_command(p, "QUIT");
  } else {
    finish(p);
  }
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
        decide(p, SP_CONNECTION_CLOSED, "write failed in %s",
               conn_state_names[p->state]);
        finish(p);
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
        decide(p, SP_CONNECTION_CLOSED, "write failed in %s: %s",
               conn_state_names[p->state], strerror(err));
        finish(p);
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
  if (p->batch->req.trace) {
    const char *t = shown ? shown : cmd;
    sp_transcript_add(&p->transcript, "C: ", t, strnlen(t, SP_MAX_LINE));
  }
  if (sp_buf_append(&p->out, cmd, n) != 0 ||
      sp_buf_append(&p->out, "\r\n", 2) != 0) {
    decide(p, SP_PROTOCOL_ERROR, "output buffer full");
    finish(p);
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
static SSL_CTX *legacy_context(struct batch *b);
static void handle_tls(struct probe *p, uint32_t events);
static void start_connect(struct probe *p);
static void on_connected(struct probe *p);

/* A connect attempt failed: try the next address or settle the code. */
static void connect_failed(struct probe *p, int err) {
  p->last_errno = err;
  char addr[64];
  addr_text(&p->batch->addrs[p->addr_cur], addr, sizeof(addr));
  trail(p, "connect to %s failed: %s", addr,
        err == ETIMEDOUT ? "timed out" : strerror(err));
  close_conn(p);
  if (p->addr_cur < p->addr_last && now_s() < p->batch->deadline) {
    p->addr_cur++;
    start_connect(p);
    return;
  }
  if (p->mismatch_retry) {
    decide(p, SP_BANNER_TIMEOUT,
           "no greeting within %.1fs (a TLS connection failed too)",
           p->banner_deadline - p->batch->t_submit);
    return;
  }
  enum sp_code code = connect_code(err);
  decide(p, code, "connect to %s port %u: %s", addr, (unsigned)p->res->port,
         err == ETIMEDOUT ? "timed out" : strerror(err));
}

/* Open a non-blocking connection to the current address. */
static void start_connect(struct probe *p) {
  struct batch *b = p->batch;
  struct sockaddr_storage sa = b->addrs[p->addr_cur];
  socklen_t salen = sa.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                             : sizeof(struct sockaddr_in);
  if (sa.ss_family == AF_INET6)
    ((struct sockaddr_in6 *)&sa)->sin6_port = htons(p->res->port);
  else
    ((struct sockaddr_in *)&sa)->sin_port = htons(p->res->port);
  addr_text(&sa, p->res->address, sizeof(p->res->address));

  if (b->req.allow_address &&
      !b->req.allow_address((struct sockaddr *)&sa, b->req.allow_ctx)) {
    trail(p, "address %s is not allowed: skipped", p->res->address);
    if (p->addr_cur < p->addr_last) {
      p->addr_cur++;
      start_connect(p);
    } else {
      decide(p, SP_POLICY_VIOLATION, "address %s is not allowed for this probe",
             p->res->address);
    }
    return;
  }
  double now = now_s();
  int left = p->addr_last - p->addr_cur + 1;
  p->attempt_deadline = now + (b->deadline - now) / (left > 0 ? left : 1);
  set_state(p, CS_CONNECT);
  if (!p->connect_timed)
    phase_begin(p, SP_PHASE_CONNECT);

  p->fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (p->fd < 0) {
    connect_failed(p, errno);
    return;
  }
  int one = 1;
  setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (b->req.source) {
    struct sockaddr_storage src;
    memset(&src, 0, sizeof(src));
    socklen_t srclen = 0;
    if (sa.ss_family == AF_INET6) {
      struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&src;
      s6->sin6_family = AF_INET6;
      if (inet_pton(AF_INET6, b->req.source, &s6->sin6_addr) == 1)
        srclen = sizeof(*s6);
    } else {
      struct sockaddr_in *s4 = (struct sockaddr_in *)&src;
      s4->sin_family = AF_INET;
      if (inet_pton(AF_INET, b->req.source, &s4->sin_addr) == 1)
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

/* The TCP connection is up: time it and go to TLS or the greeting. */
static void on_connected(struct probe *p) {
  if (!p->connect_timed) {
    phase_end(p);
    p->connect_timed = true;
  }
  trail(p, "connected to %s port %u", p->res->address, (unsigned)p->res->port);
  if (p->mode == SP_TLS_IMPLICIT || p->mismatch_retry) {
    start_tls(p, CS_TLS_IMPLICIT);
    return;
  }
  set_state(p, CS_BANNER);
  phase_begin(p, SP_PHASE_BANNER);
  /* Only a submission-like port gets the implicit-TLS test: on a relay,
   * a TLS hello before the greeting is a pregreet violation. */
  double wait = p->batch->req.banner_wait_s;
  double total = p->batch->req.timeout_s;
  if (wait <= 0)
    wait = total / 3 < 2.0 ? total / 3 : 2.0;
  bool test_implicit = p->res->role != SP_ROLE_RELAY && !p->injection &&
                       p->mode != SP_TLS_NONE; /* none: never any TLS */
  p->banner_deadline = test_implicit ? now_s() + wait : 0;
  want(p, EPOLLIN);
}

/* ---- TLS --------------------------------------------------------------- */

static void handle_dialogue(struct probe *p, uint32_t events);
static void handle_inject_wait(struct probe *p, uint32_t events);
static void send_hello(struct probe *p, const char *verb);

/* Make the TLS session and start the handshake. */
static void start_tls(struct probe *p, enum conn_state st) {
  struct batch *b = p->batch;
  set_state(p, st);
  phase_begin(p, SP_PHASE_TLS_HANDSHAKE);
  SSL_CTX *ctx = p->legacy_tls ? legacy_context(b) : b->ctx;
  p->ssl = ctx ? SSL_new(ctx) : NULL;
  p->sniff.len = 0;
  BIO *bio = p->ssl ? sp_tls_sniff_bio(p->fd, &p->sniff) : NULL;
  if (!bio) {
    decide(p, SP_TLS_HANDSHAKE_FAILED, "cannot create a TLS session");
    finish(p);
    return;
  }
  SSL_set_bio(p->ssl, bio, bio);
  memset(&p->vlog, 0, sizeof(p->vlog));
  SSL_set_ex_data(p->ssl, sp_tls_verify_index(), &p->vlog);
  const char *sni =
      b->req.sni ? b->req.sni : (b->host_is_ip ? NULL : b->req.host);
  if (sni)
    SSL_set_tlsext_host_name(p->ssl, sni);
  SSL_set_connect_state(p->ssl);
  trail(p, "TLS handshake (%s, SNI %s)",
        st == CS_TLS_IMPLICIT ? "implicit" : "after STARTTLS",
        sni ? sni : "none");
  handle_tls(p, 0);
}

/* For implicit TLS: did the server answer our hello with plaintext SMTP?
 * Returns true when it did (and the probe is decided). */
static bool plaintext_answer(struct probe *p) {
  const char *d = p->sniff.data;
  size_t n = p->sniff.len;
  if (n == 0 || d[0] < '0' || d[0] > '9')
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
  char shown[64];
  sp_sanitize(shown, sizeof(shown), d, line < 60 ? line : 60);
  if (n >= 3 && d[1] >= '0' && d[1] <= '9' && d[2] >= '0' && d[2] <= '9')
    p->res->reply_code[SP_PHASE_BANNER] =
        (d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0');
  if (p->batch->req.trace)
    sp_transcript_add(&p->transcript, "S: ", d, line);
  decide(p, SP_TLS_MODE_MISMATCH,
         "port speaks plaintext SMTP (\"%s\"), use STARTTLS", shown);
  finish(p);
  return true;
}

/* What to do once the handshake is done. */
static void on_tls_up(struct probe *p) {
  struct batch *b = p->batch;
  struct sp_result *res = p->res;
  phase_end(p);
  res->tls = true;
  res->implicit_tls = p->state == CS_TLS_IMPLICIT;
  const char *name = b->req.sni ? b->req.sni : b->req.host;
  bool name_is_ip = !b->req.sni && b->host_is_ip;
  sp_tls_inspect(p->ssl, &p->vlog, name, name_is_ip, b->req.no_verify, res);
  if (p->legacy_tls && !b->req.no_verify) /* judge at the normal level */
    sp_tls_reverify(p->ssl, b->ctx, res);
  trail(p, "TLS up: %s %s, chain %s, hostname %s", res->tls_version,
        res->tls_cipher, res->verified ? "verified" : res->verify_error,
        res->hostname_check == 1   ? "verified"
        : res->hostname_check == 0 ? "mismatch"
                                   : "not verified");
  if (p->mismatch_retry) {
    decide(p, SP_TLS_MODE_MISMATCH,
           "no plaintext greeting, but %s succeeded: the port expects "
           "implicit TLS (use --tls implicit)",
           res->tls_version);
    finish(p);
    return;
  }
  if (p->injection) {
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
    phase_begin(p, SP_PHASE_BANNER);
    p->banner_deadline = 0;
    want(p, EPOLLIN);
    handle_dialogue(p, EPOLLIN); /* the greeting may already be decrypted */
    return;
  }
  set_state(p, CS_EHLO_TLS);
  phase_begin(p, SP_PHASE_EHLO_TLS);
  sp_reply_reset(&p->reply);
  send_hello(p, "EHLO");
}

/* True when a handshake error says the peer wants another TLS version. */
static bool version_refused_reason(unsigned long e) {
  int r = ERR_GET_REASON(e);
  return r == SSL_R_UNSUPPORTED_PROTOCOL || r == SSL_R_NO_PROTOCOLS_AVAILABLE ||
         r == SSL_R_TLSV1_ALERT_PROTOCOL_VERSION ||
         r == SSL_R_WRONG_SSL_VERSION || r == SSL_R_UNSUPPORTED_SSL_VERSION ||
         r == SSL_R_LEGACY_SIGALG_DISALLOWED_OR_UNSUPPORTED;
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
  if (p->state == CS_TLS_IMPLICIT && !p->mismatch_retry && plaintext_answer(p))
    return;
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
  if (e == SSL_ERROR_SYSCALL && tls_error == 0)
    snprintf(why, sizeof(why), "connection closed during the handshake");
  else
    sp_tls_error_text(why, sizeof(why));
  trail(p, "TLS handshake failed: %s", why);
  if (!p->legacy_tls && !p->mismatch_retry &&
      version_refused_reason(tls_error)) {
    /* Identify an old-protocol server instead of failing: reconnect
     * with TLS 1.0/1.1 allowed (used for nothing but this). */
    trail(p, "retrying with TLS 1.0/1.1 allowed, to identify the protocol");
    close_conn(p);
    p->legacy_tls = true;
    p->addr_last = p->addr_cur;
    start_connect(p);
    return;
  }
  if (p->mismatch_retry) {
    decide(p, SP_BANNER_TIMEOUT,
           "no greeting within the banner wait (implicit TLS failed too)");
  } else {
    decide(p, SP_TLS_HANDSHAKE_FAILED, "%s", why);
  }
  finish(p);
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
    decide(p, SP_PROTOCOL_ERROR, "more than %d bytes unparsed",
           SP_MAX_PROBE_BUFFER);
    finish(p);
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
      finish(p);
      return -1;
    }
    const char *where = conn_state_names[p->state];
    if (p->state == CS_BANNER)
      decide(p, SP_CONNECTION_CLOSED,
             "the server closed the connection before its greeting");
    else
      decide(p, SP_CONNECTION_CLOSED,
             "the server closed the connection while waiting for the %s reply",
             where);
    finish(p);
    return -1;
  }
  sp_buf_append(&p->in, buf, (size_t)n);
  return 1;
}

/* Send EHLO (or HELO) with our name. */
static void send_hello(struct probe *p, const char *verb) {
  char cmd[SP_MAX_HOST + 8];
  snprintf(cmd, sizeof(cmd), "%s %s", verb,
           p->batch->req.ehlo_name ? p->batch->req.ehlo_name
                                   : p->batch->eng->fqdn);
  send_command(p, cmd);
}

/* One posture finding: a code that would be the verdict if it is worst. */
struct finding {
  enum sp_code code;        /* what */
  char detail[SP_MAX_TEXT]; /* why */
};

/* Collect the certificate findings (only with verification on). */
static int cert_findings(struct probe *p, struct finding *f) {
  struct batch *b = p->batch;
  struct sp_result *res = p->res;
  int nf = 0;
  time_t now = time(NULL);
  if (!res->tls || b->req.no_verify)
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
  struct batch *b = p->batch;
  struct sp_result *res = p->res;
  struct finding f[8];
  int nf = cert_findings(p, f);
  time_t now = time(NULL);
  if (res->tls && b->req.cert_warn_days >= 0 && res->chain_not_after &&
      res->chain_not_after > now &&
      sp_days_left(res->chain_not_after, now) < b->req.cert_warn_days) {
    f[nf].code = SP_CERT_EXPIRING;
    snprintf(f[nf++].detail, SP_MAX_TEXT, "a certificate expires in %ld days",
             sp_days_left(res->chain_not_after, now));
  }
  int min = b->req.min_tls_version ? b->req.min_tls_version : TLS1_2_VERSION;
  if (res->tls && session_version(p) < min) {
    f[nf].code = SP_TLS_WEAK_PROTOCOL;
    snprintf(f[nf++].detail, SP_MAX_TEXT, "the server negotiated %s",
             res->tls_version);
  }
  if ((res->caps_plain.flags & SP_CAP_STARTTLS) &&
      (res->caps_plain.flags & SP_CAP_AUTH)) {
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
    res->findings |= 1u << f[i].code;
    enum sp_state st = result_state(res, f[i].code, &b->req);
    trail(p, "finding %s (%s): %s", sp_code_name(f[i].code), sp_state_name(st),
          f[i].detail);
    if (worst < 0 || st > worst_state) {
      worst = i;
      worst_state = st;
    }
  }
  if (worst >= 0)
    decide(p, f[worst].code, "%s", f[worst].detail);
  else
    decide(p, SP_OK, "%s", res->tls ? res->tls_version : "plaintext");
}

/* CS_BANNER: the greeting. */
static void on_banner(struct probe *p) {
  struct sp_result *res = p->res;
  res->reply_code[SP_PHASE_BANNER] = p->reply.code;
  phase_end(p);
  p->banner_deadline = 0;
  if (p->reply.code != 220) {
    decide(p, SP_REJECTED, "greeting: %s", p->reply.first);
    return;
  }
  if (p->res->tls) { /* implicit TLS: the first EHLO is already inside */
    set_state(p, CS_EHLO_TLS);
    phase_begin(p, SP_PHASE_EHLO_TLS);
  } else {
    set_state(p, CS_EHLO);
    phase_begin(p, SP_PHASE_EHLO);
  }
  send_hello(p, "EHLO");
}

static void after_ehlo(struct probe *p);

/* CS_EHLO / CS_HELO: the hello reply before TLS (or without TLS). */
static void on_hello(struct probe *p) {
  struct sp_result *res = p->res;
  res->reply_code[SP_PHASE_EHLO] = p->reply.code;
  if (p->state == CS_EHLO && p->reply.code >= 500 && p->reply.code != 554) {
    trail(p, "EHLO refused (%d), falling back to HELO", p->reply.code);
    set_state(p, CS_HELO);
    send_hello(p, "HELO");
    return;
  }
  if (p->reply.code != 250) {
    phase_end(p);
    decide(p, SP_REJECTED, "%s: %s", p->state == CS_HELO ? "HELO" : "EHLO",
           p->reply.first);
    return;
  }
  phase_end(p);
  if (p->state == CS_EHLO)
    sp_caps_parse(&res->caps_plain, &p->reply);
  if (p->mode == SP_TLS_NONE) {
    after_ehlo(p);
    return;
  }
  if (!(res->caps_plain.flags & SP_CAP_STARTTLS)) {
    decide(p, SP_STARTTLS_UNAVAILABLE, "%s",
           p->state == CS_HELO
               ? "EHLO was refused, so STARTTLS cannot be offered"
               : "STARTTLS is not in the EHLO reply");
    return;
  }
  set_state(p, CS_STARTTLS);
  phase_begin(p, SP_PHASE_STARTTLS);
  if (p->injection) /* a harmless command pipelined behind STARTTLS */
    send_line(p, "STARTTLS\r\nNOOP",
              "STARTTLS + NOOP pipelined in one write (injection test)");
  else
    send_command(p, "STARTTLS");
}

/* CS_STARTTLS: the reply to STARTTLS. */
static void on_starttls(struct probe *p) {
  p->res->reply_code[SP_PHASE_STARTTLS] = p->reply.code;
  phase_end(p);
  if (p->reply.code != 220) {
    decide(p, SP_STARTTLS_UNAVAILABLE, "STARTTLS refused: %s", p->reply.first);
    return;
  }
  /* RFC 3207: anything the server sent after its 220 is discarded. */
  if (p->in.len) {
    trail(p, "discarding %zu plaintext bytes sent after 220 to STARTTLS",
          p->in.len);
    sp_buf_consume(&p->in, p->in.len);
  }
  start_tls(p, CS_TLS_STARTTLS);
}

/* CS_EHLO_TLS: the EHLO reply inside TLS. */
static void on_ehlo_tls(struct probe *p) {
  struct sp_result *res = p->res;
  res->reply_code[SP_PHASE_EHLO_TLS] = p->reply.code;
  phase_end(p);
  if (p->reply.code != 250) {
    decide(p, SP_REJECTED, "EHLO after TLS: %s", p->reply.first);
    return;
  }
  sp_caps_parse(&res->caps_tls, &p->reply);
  after_ehlo(p);
}

/* Start the MAIL FROM / RCPT TO trial, or judge when none is asked. */
static void start_trial(struct probe *p) {
  const char *from = p->batch->req.mail_from;
  if (!from) {
    judge(p);
    return;
  }
  char cmd[SP_MAX_LINE];
  snprintf(cmd, sizeof(cmd), "MAIL FROM:<%s>", from);
  set_state(p, CS_MAIL);
  phase_begin(p, SP_PHASE_MAIL_FROM);
  send_command(p, cmd);
}

/* Send the AUTH step for the mechanism (step 0: the command itself). */
static void send_auth(struct probe *p) {
  const struct sp_request *req = &p->batch->req;
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
    decide(p, SP_AUTH_FAILED, "credentials too long for %s", m);
    return;
  }
  send_line(p, cmd, shown);
  OPENSSL_cleanse(cmd, sizeof(cmd));
}

/* After the last EHLO: AUTH when asked (only inside TLS, only to a
 * server whose certificate passed), then the trial, then the verdict. */
static void after_ehlo(struct probe *p) {
  const struct sp_request *req = &p->batch->req;
  struct sp_result *res = p->res;
  if (p->injection) {
    finish(p); /* no STARTTLS to test */
    return;
  }
  if (!req->auth_user) {
    start_trial(p);
    return;
  }
  struct finding f[4];
  if (!res->tls) {
    decide(p, SP_AUTH_UNAVAILABLE, "refusing to send credentials without TLS");
    return;
  }
  if (cert_findings(p, f) > 0) {
    trail(p, "credentials not sent: the certificate did not pass");
    judge(p);
    return;
  }
  if (!(res->caps_tls.flags & SP_CAP_AUTH)) {
    decide(p, SP_AUTH_UNAVAILABLE, "AUTH is not offered after TLS");
    return;
  }
  p->auth_mech = sp_sasl_pick(res->caps_tls.auth_mechs, req->auth_mech);
  if (!p->auth_mech) {
    decide(p, SP_AUTH_UNAVAILABLE, "mechanism %s is not offered (offered: %s)",
           req->auth_mech ? req->auth_mech : "PLAIN/LOGIN/CRAM-MD5",
           res->caps_tls.auth_mechs);
    return;
  }
  set_state(p, CS_AUTH);
  phase_begin(p, SP_PHASE_AUTH);
  p->auth_step = 0;
  send_auth(p);
}

/* CS_AUTH: 235 done, 334 continue, anything else failed. */
static void on_auth(struct probe *p) {
  const struct sp_request *req = &p->batch->req;
  struct sp_result *res = p->res;
  res->reply_code[SP_PHASE_AUTH] = p->reply.code;
  if (p->reply.code == 235) {
    phase_end(p);
    sp_strlcpy(res->auth_mech, p->auth_mech, sizeof(res->auth_mech));
    trail(p, "authenticated with %s", p->auth_mech);
    start_trial(p);
    return;
  }
  if (p->reply.code != 334) {
    phase_end(p);
    decide(p, SP_AUTH_FAILED, "AUTH %s: %s", p->auth_mech, p->reply.first);
    return;
  }
  if (++p->auth_step > 3) {
    phase_end(p);
    decide(p, SP_PROTOCOL_ERROR, "AUTH %s: too many challenges", p->auth_mech);
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
    n = sp_sasl_cram_md5(req->auth_user, req->auth_secret, p->reply.text, line,
                         sizeof(line));
  else if (strcmp(m, "XOAUTH2") == 0) /* 334 carries an error: end it */
    n = snprintf(line, sizeof(line), "%s", "");
  if (n < 0) {
    phase_end(p);
    decide(p, SP_PROTOCOL_ERROR, "AUTH %s: unexpected challenge \"%s\"", m,
           p->reply.first);
    return;
  }
  send_line(p, line, "********");
  OPENSSL_cleanse(line, sizeof(line));
}

/* CS_MAIL: the reply to MAIL FROM. */
static void on_mail(struct probe *p) {
  const struct sp_request *req = &p->batch->req;
  p->res->reply_code[SP_PHASE_MAIL_FROM] = p->reply.code;
  phase_end(p);
  if (p->reply.code != 250) {
    decide(p, SP_REJECTED, "MAIL FROM: %s", p->reply.first);
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
  phase_begin(p, SP_PHASE_RCPT_TO);
  send_command(p, cmd);
}

/* CS_RCPT: the reply to RCPT TO. */
static void on_rcpt(struct probe *p) {
  p->res->reply_code[SP_PHASE_RCPT_TO] = p->reply.code;
  phase_end(p);
  if (p->reply.code != 250 && p->reply.code != 251) {
    decide(p, SP_REJECTED, "RCPT TO: %s", p->reply.first);
    return;
  }
  if (p->batch->req.send_message) {
    set_state(p, CS_DATA);
    send_command(p, "DATA");
  } else {
    set_state(p, CS_RSET);
    send_command(p, "RSET");
  }
}

/* CS_DATA: 354, then the test message with a unique Message-ID. */
static void on_data(struct probe *p) {
  const struct sp_request *req = &p->batch->req;
  struct sp_result *res = p->res;
  if (p->reply.code != 354) {
    p->res->message_id[0] = '\0';
    decide(p, SP_REJECTED, "DATA: %s", p->reply.first);
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
    decide(p, SP_REJECTED, "message: %s", p->reply.first);
    return;
  }
  trail(p, "test message accepted: %s", p->reply.first);
  judge(p);
}

/* CS_RSET: the trial is over, whatever RSET says. */
static void on_rset(struct probe *p) {
  judge(p);
}

/* CS_QUIT: the reply to QUIT; the probe is over either way. */
static void on_quit(struct probe *p) {
  finish(p);
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
      struct sp_buf *t = p->batch->req.trace ? &p->transcript : NULL;
      enum sp_reply_status st =
          sp_reply_feed(&p->reply, &p->in, t, why, sizeof(why));
      if (st == SP_REPLY_ERROR) {
        if (p->state == CS_QUIT) {
          finish(p);
          return;
        }
        decide(p, SP_PROTOCOL_ERROR, "%s: %s", conn_state_names[p->state], why);
        finish(p);
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
    trail(p, "the server closed the connection: not vulnerable");
    return; /* read_some finished the probe */
  }
  if (p->in.len == 0)
    return;
  char shown[80];
  sp_sanitize(shown, sizeof(shown), p->in.data,
              p->in.len < 60 ? p->in.len : 60);
  p->main_res->injection_vulnerable = true;
  trail(p, "reply inside TLS to a command sent before STARTTLS: \"%s\"", shown);
  finish(p);
}

/* Run the handler of the probe's state. */
static void step(struct probe *p, uint32_t events) {
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
  case CS_DONE:
  case CS_COUNT:
    break;
  }
}

/* A deadline passed: say which phase starved. */
static void handle_timeout(struct probe *p, double now) {
  struct batch *b = p->batch;
  if (p->state == CS_CONNECT && now >= p->attempt_deadline &&
      now < b->deadline) {
    connect_failed(p, ETIMEDOUT);
    return;
  }
  if (p->state == CS_BANNER && p->banner_deadline > 0 &&
      now >= p->banner_deadline && now < b->deadline) {
    if (p->in.len > 0 || p->mode == SP_TLS_IMPLICIT) {
      p->banner_deadline = 0; /* something arrived: keep waiting */
      return;
    }
    trail(p,
          "no greeting after %.1fs: testing implicit TLS on a fresh "
          "connection",
          now - p->t_phase);
    close_conn(p);
    p->mismatch_retry = true;
    p->banner_deadline = now; /* remembered for the message */
    start_connect(p);
    return;
  }
  if (p->state == CS_INJECT_WAIT && now >= p->inject_deadline) {
    trail(p, "no reply to the injected command: not vulnerable");
    finish(p);
    return;
  }
  if (now < b->deadline)
    return;
  switch (p->state) {
  case CS_WAIT_DNS:
    decide(p, SP_DNS_ERROR, "resolution timed out");
    break;
  case CS_CONNECT:
    if (p->mismatch_retry)
      decide(p, SP_BANNER_TIMEOUT, "no greeting before the deadline");
    else
      connect_failed(p, ETIMEDOUT);
    break;
  case CS_BANNER:
    decide(p, SP_BANNER_TIMEOUT, "no greeting within %.1fs", now - b->t_submit);
    break;
  case CS_TLS_IMPLICIT:
  case CS_TLS_STARTTLS:
    if (p->mismatch_retry)
      decide(p, SP_BANNER_TIMEOUT,
             "no greeting, and the TLS handshake stalled too");
    else
      decide(p, SP_READ_TIMEOUT, "the TLS handshake stalled");
    break;
  case CS_QUIT:
    break;
  default:
    decide(p, SP_READ_TIMEOUT, "no reply to %s within the deadline",
           conn_state_names[p->state]);
    break;
  }
  finish(p);
}

/* The next moment this probe needs attention without I/O. */
static double probe_next_timer(const struct probe *p) {
  double t = p->batch->deadline;
  if (p->state == CS_CONNECT && p->attempt_deadline < t)
    t = p->attempt_deadline;
  if (p->state == CS_BANNER && p->banner_deadline > 0 && p->banner_deadline < t)
    t = p->banner_deadline;
  if (p->state == CS_INJECT_WAIT && p->inject_deadline < t)
    t = p->inject_deadline;
  return t;
}

/* ---- Batches ----------------------------------------------------------- */

/* The TLS mode a port spec means: auto resolved by role. */
static enum sp_tls_mode effective_mode(const struct sp_port_spec *spec) {
  if (spec->tls_mode != SP_TLS_AUTO)
    return spec->tls_mode;
  enum sp_role role =
      spec->role == SP_ROLE_DEFAULT ? sp_role_for_port(spec->port) : spec->role;
  return role == SP_ROLE_IMPLICIT ? SP_TLS_IMPLICIT : SP_TLS_STARTTLS;
}

/* Make the probes of a batch once its addresses are known. */
static void batch_spawn(struct batch *b) {
  struct sp_request *req = &b->req;
  bool per_addr = req->all_addresses && b->naddrs > 0;
  int per_port = per_addr ? b->naddrs : 1;
  int nmain = req->nports * per_port;
  int ninj = 0;
  for (int i = 0; req->check_injection && b->naddrs > 0 && i < nmain; i++)
    if (effective_mode(&req->ports[i / per_port]) == SP_TLS_STARTTLS)
      ninj++;
  b->nprobes = nmain + ninj;
  b->probes = calloc((size_t)b->nprobes, sizeof(*b->probes));
  b->out->results = calloc((size_t)nmain, sizeof(struct sp_result));
  b->scratch = ninj ? calloc((size_t)ninj, sizeof(struct sp_result)) : NULL;
  if (!b->probes || !b->out->results || (ninj && !b->scratch)) {
    free(b->probes);
    b->probes = NULL;
    b->nprobes = 0;
    return;
  }
  b->nscratch = ninj;
  b->out->nresults = nmain;
  int j = 0;
  for (int i = 0; i < b->nprobes; i++) {
    struct probe *p = &b->probes[i];
    int m = i < nmain ? i : -1; /* main probe index */
    if (m < 0) {                /* injection tests follow the main probes */
      while (effective_mode(&req->ports[j / per_port]) != SP_TLS_STARTTLS)
        j++;
      m = j++;
      p->injection = true;
      p->main_res = &b->out->results[m];
    }
    const struct sp_port_spec *spec = &req->ports[m / per_port];
    struct sp_result *res =
        p->injection ? &b->scratch[i - nmain] : &b->out->results[m];
    p->tag.kind = EV_PROBE;
    p->batch = b;
    p->res = res;
    p->fd = -1;
    p->state = CS_WAIT_DNS;
    sp_buf_init(&p->in, SP_MAX_PROBE_BUFFER);
    sp_buf_init(&p->out, SP_MAX_OUTPUT);
    sp_buf_init(&p->transcript, req->trace ? SP_MAX_TRANSCRIPT : 0);
    sp_reply_reset(&p->reply);
    sp_strlcpy(res->host, req->host, sizeof(res->host));
    res->port = spec->port;
    res->role = spec->role == SP_ROLE_DEFAULT ? sp_role_for_port(spec->port)
                                              : spec->role;
    res->tls_mode = spec->tls_mode;
    res->per_address = per_addr;
    res->hostname_check = -1;
    p->mode = effective_mode(spec);
    if (b->out->dns_s >= 0 && !b->host_is_ip) {
      res->phase_s[SP_PHASE_DNS] = b->out->dns_s;
      res->phase_done[SP_PHASE_DNS] = true;
    }
    if (b->naddrs == 0) {
      decide(p, SP_DNS_ERROR, "%s: %s", req->host, b->dns_why);
      continue;
    }
    p->addr_cur = per_addr ? m % per_port : 0;
    p->addr_last = per_addr ? p->addr_cur : b->naddrs - 1;
    trail(p, "%s %s port %u, role %s, TLS %s",
          p->injection ? "STARTTLS injection test of" : "probe", req->host,
          (unsigned)spec->port, sp_role_name(res->role),
          sp_tls_mode_name(p->mode));
    start_connect(p);
  }
}

/* Fold the injection tests into their main results (batch complete). */
static void batch_merge(struct batch *b) {
  for (int i = 0; i < b->nprobes; i++) {
    struct probe *p = &b->probes[i];
    if (!p->injection)
      continue;
    struct sp_result *main = p->main_res;
    struct sp_result *inj = p->res;
    if (main->injection_vulnerable) {
      main->findings |= 1u << SP_STARTTLS_INJECTION;
      enum sp_state st = result_state(main, SP_STARTTLS_INJECTION, &b->req);
      if (st > main->state) {
        main->code = SP_STARTTLS_INJECTION;
        main->state = st;
        snprintf(main->detail, sizeof(main->detail),
                 "the server answered a command sent before STARTTLS inside "
                 "TLS (CVE-2011-0411 class)");
      }
    }
    if (inj->transcript && main->transcript) {
      static const char sep[] = "--- STARTTLS injection test connection ---\n";
      size_t n = main->transcript_len + sizeof(sep) - 1 + inj->transcript_len;
      char *t = realloc(main->transcript, n + 1);
      if (t) {
        memcpy(t + main->transcript_len, sep, sizeof(sep) - 1);
        memcpy(t + main->transcript_len + sizeof(sep) - 1, inj->transcript,
               inj->transcript_len);
        t[n] = '\0';
        main->transcript = t;
        main->transcript_len = n;
      }
    }
    free(inj->transcript);
    inj->transcript = NULL;
  }
}

/* c-ares answered (called from inside sp_dns_process). */
static void batch_resolved(void *arg, int naddrs,
                           const struct sockaddr_storage *addrs,
                           const char *why) {
  struct batch *b = arg;
  b->out->dns_s = now_s() - b->t_submit;
  b->naddrs = naddrs;
  memcpy(b->addrs, addrs, sizeof(*addrs) * (size_t)naddrs);
  sp_strlcpy(b->dns_why, why ? why : "", sizeof(b->dns_why));
  b->resolved = true;
  /* Probes start from the loop, not from inside c-ares. */
}

/* c-ares asks to watch (or forget) one of its sockets. */
static void batch_dns_sock(void *arg, int fd, bool readable, bool writable) {
  struct batch *b = arg;
  struct dns_sock **pp = &b->dns_socks;
  while (*pp && (*pp)->fd != fd)
    pp = &(*pp)->next;
  struct dns_sock *s = *pp;
  if (!readable && !writable) {
    if (s) {
      epoll_ctl(b->eng->epfd, EPOLL_CTL_DEL, fd, NULL);
      *pp = s->next;
      free(s);
    }
    return;
  }
  uint32_t ev = (readable ? EPOLLIN : 0) | (writable ? EPOLLOUT : 0);
  int op = EPOLL_CTL_MOD;
  if (!s) {
    s = calloc(1, sizeof(*s));
    if (!s)
      return;
    s->tag.kind = EV_DNS;
    s->batch = b;
    s->fd = fd;
    s->next = b->dns_socks;
    b->dns_socks = s;
    op = EPOLL_CTL_ADD;
  }
  struct epoll_event e = {.events = ev, .data.ptr = &s->tag};
  epoll_ctl(b->eng->epfd, op, fd, &e);
}

/* Fill addrs from an IP literal host; false when it is not one. */
static bool literal_address(struct batch *b) {
  const char *h = b->req.host;
  struct sockaddr_in *s4 = (struct sockaddr_in *)&b->addrs[0];
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&b->addrs[0];
  memset(&b->addrs[0], 0, sizeof(b->addrs[0]));
  if (inet_pton(AF_INET, h, &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
  } else if (inet_pton(AF_INET6, h, &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
  } else {
    return false;
  }
  b->host_is_ip = true;
  int fam = b->addrs[0].ss_family;
  if ((b->req.family == SP_FAMILY_IPV4 && fam != AF_INET) ||
      (b->req.family == SP_FAMILY_IPV6 && fam != AF_INET6)) {
    b->naddrs = 0;
    sp_strlcpy(b->dns_why, "the address is not of the requested family",
               sizeof(b->dns_why));
  } else {
    b->naddrs = 1;
  }
  return true;
}

/* Start a batch taken from the queue: resolve, or spawn probes. */
static void batch_start(struct batch *b) {
  b->out->dns_s = -1;
  if (literal_address(b)) {
    b->resolved = true;
    batch_spawn(b);
    return;
  }
  char err[SP_MAX_TEXT];
  b->dns = sp_dns_new(b->req.dns_server, batch_dns_sock, b, err, sizeof(err));
  if (!b->dns) {
    b->resolved = true;
    b->naddrs = 0;
    sp_strlcpy(b->dns_why, err, sizeof(b->dns_why));
    batch_spawn(b);
    return;
  }
  int fam = b->req.family == SP_FAMILY_IPV4   ? AF_INET
            : b->req.family == SP_FAMILY_IPV6 ? AF_INET6
                                              : AF_UNSPEC;
  sp_dns_lookup(b->dns, b->req.host, fam, batch_resolved, b);
}

/* Drop the resolver channel and its sockets. */
static void batch_drop_dns(struct batch *b) {
  if (b->dns) {
    sp_dns_free(b->dns);
    b->dns = NULL;
  }
  while (b->dns_socks) {
    struct dns_sock *s = b->dns_socks;
    epoll_ctl(b->eng->epfd, EPOLL_CTL_DEL, s->fd, NULL);
    b->dns_socks = s->next;
    free(s);
  }
}

/* Free a batch's own memory (not the results handed out). */
static void batch_free(struct batch *b) {
  batch_drop_dns(b);
  for (int i = 0; i < b->nprobes; i++) {
    close_conn(&b->probes[i]);
    sp_buf_free(&b->probes[i].in);
    sp_buf_free(&b->probes[i].out);
    sp_buf_free(&b->probes[i].transcript);
  }
  free(b->probes);
  for (int i = 0; i < b->nscratch; i++)
    free(b->scratch[i].transcript);
  free(b->scratch);
  if (b->strings[7]) /* the secret */
    OPENSSL_cleanse(b->strings[7], strlen(b->strings[7]));
  for (size_t i = 0; i < sizeof(b->strings) / sizeof(b->strings[0]); i++)
    free(b->strings[i]);
  if (b->out)
    sp_batch_free(b->out);
  free(b);
}

/* ---- The loop ---------------------------------------------------------- */

/* Move everything submitted into the running set. */
static void start_queued(struct sp_engine *eng) {
  pthread_mutex_lock(&eng->lock);
  struct batch *list = eng->queued;
  eng->queued = NULL;
  pthread_mutex_unlock(&eng->lock);
  while (list) {
    struct batch *b = list;
    list = b->next;
    b->next = eng->active;
    eng->active = b;
    batch_start(b);
  }
}

/* Run timers: c-ares, resolution deadlines, probe deadlines. */
static void run_timers(struct sp_engine *eng) {
  double now = now_s();
  for (struct batch *b = eng->active; b; b = b->next) {
    if (b->dns && !b->resolved) {
      sp_dns_process(b->dns, -1, false, false);
      if (!b->resolved && now >= b->deadline) {
        b->resolved = true;
        b->naddrs = 0;
        b->out->dns_s = now - b->t_submit;
        sp_strlcpy(b->dns_why, "resolution timed out", sizeof(b->dns_why));
      }
    }
    if (b->resolved && b->dns) {
      batch_drop_dns(b);
      batch_spawn(b);
    }
    for (int i = 0; i < b->nprobes; i++) {
      struct probe *p = &b->probes[i];
      if (p->state != CS_DONE && now >= probe_next_timer(p))
        handle_timeout(p, now);
    }
  }
}

/* Hand finished batches to their callbacks. */
static void reap(struct sp_engine *eng) {
  struct batch **pp = &eng->active;
  while (*pp) {
    struct batch *b = *pp;
    if (!b->resolved || b->ndone < b->nprobes) {
      pp = &b->next;
      continue;
    }
    *pp = b->next;
    batch_merge(b);
    struct sp_batch *out = b->out;
    b->out = NULL;
    atomic_fetch_sub(&eng->inflight, b->weight);
    sp_done_fn done = b->done;
    void *user = b->user;
    batch_free(b);
    done(out, user);
  }
}

/* Milliseconds the loop may sleep. */
static int loop_timeout_ms(struct sp_engine *eng, int max_ms) {
  double now = now_s();
  double next = now + max_ms / 1000.0;
  int ms = max_ms;
  for (struct batch *b = eng->active; b; b = b->next) {
    if (b->dns && !b->resolved) {
      int d = sp_dns_timeout_ms(b->dns, ms);
      if (d < ms)
        ms = d;
      if (b->deadline < next)
        next = b->deadline;
    }
    if (b->resolved && b->dns)
      return 0;
    for (int i = 0; i < b->nprobes; i++)
      if (b->probes[i].state != CS_DONE) {
        double t = probe_next_timer(&b->probes[i]);
        if (t < next)
          next = t;
      }
  }
  double until = (next - now) * 1000.0;
  int tms = until <= 0 ? 0 : (int)(until + 0.999);
  return tms < ms ? tms : ms;
}

/* One turn of the loop: start, wait, dispatch, timers, reap. */
static void loop_once(struct sp_engine *eng, int max_ms) {
  start_queued(eng);
  struct epoll_event evs[64];
  int n = epoll_wait(eng->epfd, evs, 64, loop_timeout_ms(eng, max_ms));
  for (int i = 0; i < n; i++) {
    struct ev_tag *tag = evs[i].data.ptr;
    if (tag->kind == EV_WAKE) {
      uint64_t v;
      ssize_t r = read(eng->wakefd, &v, sizeof(v));
      (void)r;
    } else if (tag->kind == EV_DNS) {
      struct dns_sock *s = (struct dns_sock *)tag;
      struct batch *b = s->batch;
      if (b->dns)
        sp_dns_process(b->dns, s->fd,
                       evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP),
                       evs[i].events & EPOLLOUT);
      /* s may be freed now: don't touch it again. */
    } else {
      struct probe *p = (struct probe *)tag;
      step(p, evs[i].events);
    }
  }
  run_timers(eng);
  reap(eng);
}

/* True when nothing is queued or running. */
static bool idle(struct sp_engine *eng) {
  pthread_mutex_lock(&eng->lock);
  bool q = eng->queued != NULL;
  pthread_mutex_unlock(&eng->lock);
  return !q && eng->active == NULL;
}

/* ---- Public API -------------------------------------------------------- */

/* The local FQDN for EHLO: the host name, completed from /etc/hosts
 * when it has no dot (no DNS query is made for it). */
static void local_fqdn(char *buf, size_t buflen) {
  char host[SP_MAX_HOST];
  if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
    sp_strlcpy(host, "localhost", sizeof(host));
  host[sizeof(host) - 1] = '\0';
  sp_strlcpy(buf, host, buflen);
  if (strchr(host, '.'))
    return;
  FILE *f = fopen("/etc/hosts", "r");
  if (!f)
    return;
  char line[512];
  while (fgets(line, sizeof(line), f)) {
    char *save = NULL;
    char *tok = strtok_r(line, " \t\r\n", &save); /* address */
    if (!tok || tok[0] == '#')
      continue;
    char names[8][SP_MAX_HOST];
    int nn = 0;
    bool has_host = false;
    while ((tok = strtok_r(NULL, " \t\r\n", &save)) && nn < 8) {
      if (tok[0] == '#')
        break;
      sp_strlcpy(names[nn], tok, SP_MAX_HOST);
      if (strcmp(tok, host) == 0)
        has_host = true;
      nn++;
    }
    for (int i = 0; has_host && i < nn; i++)
      if (strchr(names[i], '.') && strncmp(names[i], host, strlen(host)) == 0) {
        sp_strlcpy(buf, names[i], buflen);
        fclose(f);
        return;
      }
  }
  fclose(f);
}

/* Create an engine. */
struct sp_engine *sp_engine_new(char *err, size_t errlen) {
  struct sp_engine *eng = calloc(1, sizeof(*eng));
  if (!eng) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  /* SSL_write on a socket the server closed must not kill the process. */
  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
    signal(SIGPIPE, SIG_IGN);
  pthread_mutex_init(&eng->lock, NULL);
  eng->epfd = epoll_create1(EPOLL_CLOEXEC);
  eng->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (eng->epfd < 0 || eng->wakefd < 0) {
    snprintf(err, errlen, "engine: %s", strerror(errno));
    sp_engine_free(eng);
    return NULL;
  }
  eng->wake_tag.kind = EV_WAKE;
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &eng->wake_tag};
  epoll_ctl(eng->epfd, EPOLL_CTL_ADD, eng->wakefd, &ev);
  local_fqdn(eng->fqdn, sizeof(eng->fqdn));
  return eng;
}

/* Find or make the context for cafile (engine lock held). */
static struct ctx_entry *context_for(struct sp_engine *eng, const char *cafile,
                                     char *err, size_t errlen) {
  for (struct ctx_entry *c = eng->ctxs; c; c = c->next)
    if ((!c->cafile && !cafile) ||
        (c->cafile && cafile && strcmp(c->cafile, cafile) == 0))
      return c;
  struct ctx_entry *c = calloc(1, sizeof(*c));
  if (!c) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  c->ctx = sp_tls_context_new(cafile, false, err, errlen);
  c->cafile = cafile ? strdup(cafile) : NULL;
  if (!c->ctx || (cafile && !c->cafile)) {
    SSL_CTX_free(c->ctx);
    free(c->cafile);
    free(c);
    return NULL;
  }
  c->next = eng->ctxs;
  eng->ctxs = c;
  return c;
}

/* The legacy (TLS 1.0+) context for a batch, made on first use. */
static SSL_CTX *legacy_context(struct batch *b) {
  struct sp_engine *eng = b->eng;
  pthread_mutex_lock(&eng->lock);
  if (!b->ctxe->legacy) {
    char err[SP_MAX_TEXT];
    b->ctxe->legacy =
        sp_tls_context_new(b->ctxe->cafile, true, err, sizeof(err));
  }
  SSL_CTX *ctx = b->ctxe->legacy;
  pthread_mutex_unlock(&eng->lock);
  return ctx;
}

/* Keep an owned copy of one request string. */
static const char *own(struct batch *b, int slot, const char *s) {
  if (!s)
    return NULL;
  b->strings[slot] = strdup(s);
  return b->strings[slot];
}

/* Queue a request. */
int sp_engine_submit(struct sp_engine *eng, const struct sp_request *req,
                     sp_done_fn done, void *user, char *err, size_t errlen) {
  if (!done) {
    snprintf(err, errlen, "submit: no completion callback");
    return -1;
  }
  if (sp_request_validate(req, err, errlen) != 0)
    return -1;
  struct batch *b = calloc(1, sizeof(*b));
  struct sp_batch *out = calloc(1, sizeof(*out));
  if (!b || !out) {
    free(b);
    free(out);
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  b->eng = eng;
  b->out = out;
  b->req = *req;
  b->req.host = own(b, 0, req->host);
  b->req.sni = own(b, 1, req->sni);
  b->req.cafile = own(b, 2, req->cafile);
  b->req.ehlo_name = own(b, 3, req->ehlo_name);
  b->req.source = own(b, 4, req->source);
  b->req.dns_server = own(b, 5, req->dns_server);
  b->req.auth_user = own(b, 6, req->auth_user);
  b->req.auth_secret = own(b, 7, req->auth_secret);
  b->req.auth_mech = own(b, 8, req->auth_mech);
  b->req.mail_from = own(b, 9, req->mail_from);
  b->req.rcpt_to = own(b, 10, req->rcpt_to);
  b->done = done;
  b->user = user;
  b->weight = req->nports;
  pthread_mutex_lock(&eng->lock);
  b->ctxe = context_for(eng, req->cafile, err, errlen);
  b->ctx = b->ctxe ? b->ctxe->ctx : NULL;
  if (!b->ctx) {
    pthread_mutex_unlock(&eng->lock);
    batch_free(b);
    return -1;
  }
  b->t_submit = now_s();
  b->deadline = b->t_submit + req->timeout_s;
  struct batch **tail = &eng->queued;
  while (*tail)
    tail = &(*tail)->next;
  *tail = b;
  pthread_mutex_unlock(&eng->lock);
  atomic_fetch_add(&eng->inflight, b->weight);
  uint64_t one = 1;
  ssize_t w = write(eng->wakefd, &one, sizeof(one));
  (void)w;
  return 0;
}

/* Run the loop in the calling thread until no work is left. */
void sp_engine_run(struct sp_engine *eng) {
  while (!idle(eng))
    loop_once(eng, 1000);
}

/* The loop thread's body. */
static void *engine_thread(void *arg) {
  struct sp_engine *eng = arg;
  while (!atomic_load(&eng->stopping))
    loop_once(eng, 1000);
  return NULL;
}

/* Start the engine's own loop thread. */
int sp_engine_start(struct sp_engine *eng) {
  if (eng->thread_running)
    return 0;
  atomic_store(&eng->stopping, false);
  if (pthread_create(&eng->thread, NULL, engine_thread, eng) != 0)
    return -1;
  eng->thread_running = true;
  return 0;
}

/* End every running probe now (engine stopping). */
static void abort_all(struct sp_engine *eng) {
  start_queued(eng);
  for (struct batch *b = eng->active; b; b = b->next) {
    if (!b->resolved) {
      b->resolved = true;
      b->naddrs = 0;
      sp_strlcpy(b->dns_why, "engine stopped", sizeof(b->dns_why));
      batch_drop_dns(b);
      batch_spawn(b);
    }
    for (int i = 0; i < b->nprobes; i++)
      if (b->probes[i].state != CS_DONE) {
        decide(&b->probes[i], SP_READ_TIMEOUT, "engine stopped");
        finish(&b->probes[i]);
      }
  }
  reap(eng);
}

/* Stop the loop thread; running probes end at once. */
void sp_engine_stop(struct sp_engine *eng) {
  if (!eng->thread_running)
    return;
  atomic_store(&eng->stopping, true);
  uint64_t one = 1;
  ssize_t w = write(eng->wakefd, &one, sizeof(one));
  (void)w;
  pthread_join(eng->thread, NULL);
  eng->thread_running = false;
  abort_all(eng);
}

/* Free the engine. */
void sp_engine_free(struct sp_engine *eng) {
  if (!eng)
    return;
  sp_engine_stop(eng);
  abort_all(eng);
  while (eng->ctxs) {
    struct ctx_entry *c = eng->ctxs;
    eng->ctxs = c->next;
    SSL_CTX_free(c->ctx);
    SSL_CTX_free(c->legacy);
    free(c->cafile);
    free(c);
  }
  if (eng->epfd >= 0)
    close(eng->epfd);
  if (eng->wakefd >= 0)
    close(eng->wakefd);
  pthread_mutex_destroy(&eng->lock);
  free(eng);
}

/* A caller waiting in sp_probe_wait. */
struct waiter {
  pthread_mutex_t lock;   /* guards batch */
  pthread_cond_t cond;    /* signalled when batch is set */
  struct sp_batch *batch; /* the answer */
};

/* Completion callback of sp_probe_wait. */
static void wake_waiter(struct sp_batch *batch, void *user) {
  struct waiter *w = user;
  pthread_mutex_lock(&w->lock);
  w->batch = batch;
  pthread_cond_signal(&w->cond);
  pthread_mutex_unlock(&w->lock);
}

/* Submit and wait for the batch. */
struct sp_batch *sp_probe_wait(struct sp_engine *eng,
                               const struct sp_request *req, char *err,
                               size_t errlen) {
  struct waiter w;
  pthread_mutex_init(&w.lock, NULL);
  pthread_cond_init(&w.cond, NULL);
  w.batch = NULL;
  if (sp_engine_submit(eng, req, wake_waiter, &w, err, errlen) != 0) {
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.lock);
    return NULL;
  }
  if (!eng->thread_running) {
    sp_engine_run(eng);
  } else {
    pthread_mutex_lock(&w.lock);
    while (!w.batch)
      pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
  }
  pthread_cond_destroy(&w.cond);
  pthread_mutex_destroy(&w.lock);
  return w.batch;
}

/* Ports being probed right now. */
int sp_engine_inflight(struct sp_engine *eng) {
  return atomic_load(&eng->inflight);
}

/* Free a batch and everything it holds. */
void sp_batch_free(struct sp_batch *batch) {
  if (!batch)
    return;
  for (int i = 0; i < batch->nresults; i++)
    free(batch->results[i].transcript);
  free(batch->results);
  free(batch);
}
