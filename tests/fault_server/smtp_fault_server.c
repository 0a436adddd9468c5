/*
 * smtp_fault_server.c - a fault-injecting SMTP server for the diagnosis
 * scenario tests and the benchmark's "lean" server.
 *
 * One thread, one epoll loop, non-blocking sockets and non-blocking
 * OpenSSL. Each listener has a scripted behaviour (a mode); every
 * connection accepted on it behaves so. Every connection is an explicit
 * state machine: one handler per state, one setter for transitions.
 *
 * usage: smtp_fault_server --listen ADDR:PORT=MODE[,OPTION...]
 *          [--listen ...] [--cert-prefix PREFIX] [--auth-password-file FILE]
 *          [--ready-file FILE] [--log FILE]
 *
 * Listener options: cert=PREFIX, delay=MS (every reply late),
 * greet_delay=MS (only the greeting late), software=postfix|exim|haraka
 * (that MTA's greeting and EHLO words), implicit (TLS from the first byte,
 * for the TLS modes), mechs=M1+M2 (AUTH mechanisms offered after TLS),
 * proxy (every connection must start with a PROXY protocol v1 or v2
 * header, as behind HAProxy; its addresses are checked against the
 * socket's, and a connection without one is closed).
 *
 * PREFIX names PREFIX-chain.pem (or PREFIX.pem when there is no chain
 * file) and PREFIX.key. A cert= PREFIX without a '/' is taken relative to
 * the directory of --cert-prefix.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- Caps ------------------------------------------------------------- */

#define MAX_LISTENERS 64              /* --listen options */
#define IN_CAP 2048                   /* bytes of one command line, buffered */
#define READ_TOTAL_CAP (4u << 20)     /* bytes read from one connection */
#define OUT_HIGH (256u << 10)         /* stop reading above this backlog */
#define OUT_CAP (1u << 20)            /* bytes of replies queued at most */
#define STREAM_CHUNK 16384            /* bytes generated per stream step */
#define ENDLESS_CAP (64ull << 20)     /* bytes an endless mode sends */
#define HUGE_REPLY_BYTES (4ull << 20) /* size of the huge EHLO reply */
#define LINGER_MS 2000                /* wait for the peer's FIN at close */
#define HANDLER_ROUNDS 16             /* state handler calls per event */
#define READ_ROUNDS 64                /* reads per handler call */
#define PASSWORD_CAP 256              /* bytes of the AUTH password */
#define HELLO_PEEK_CAP (5 + 16384)    /* bytes of a ClientHello record peeked */
#define HELLO_RETRY_MS 20             /* re-peek an incomplete ClientHello */
#define HELLO_WAIT_MS 10000           /* give up on an incomplete ClientHello */
#define PROXY_PEEK_CAP 232 /* bytes of a PROXY header peeked (v2 max) */
#define PROXY_WAIT_MS 3000 /* give up on a missing PROXY header */
#define MECHS_CAP 64       /* bytes of a mechs= list */
#define SERVER_NAME "fault.smtp-probe.test"
#define AUTH_USER "probe@smtp-probe.test"

/* ---- Modes ------------------------------------------------------------ */

/* The scripted behaviour of a listener. */
enum mode {
  M_STARTTLS,
  M_IMPLICIT,
  M_PLAIN,
  M_GREET421,
  M_GREET554,
  M_EHLO_REJECT_HELO_OK,
  M_EHLO_HELO_REJECT,
  M_SILENT,
  M_CLOSE,
  M_CLOSE_AFTER_EHLO,
  M_GARBAGE,
  M_ENDLESS_LINE,
  M_ENDLESS_MULTILINE,
  M_HUGE_REPLY,
  M_SLOW,
  M_STARTTLS_454,
  M_STARTTLS_STALL,
  M_STARTTLS_GARBAGE,
  M_AUTH_BEFORE_TLS,
  M_INJECTION_VULNERABLE,
  M_TLS10,
  M_RCPT_REJECT,
  M_MAIL_REJECT,
  M_AUTH,
  M_NO_AUTH,
  M_TLS11_CLOSE,
  M_SHA1_SIGALG,
  M_TLS_ALERT,
  M_EHLO_421,
  M_MAIL_451,
  M_MAIL_451_47,
  M_RCPT_450,
  M_DATA_451,
  M_EOD_451,
  M_AUTH_454,
  M_COUNT
};

/* Mode names as given on the command line, indexed by enum mode. */
static const char *const mode_names[M_COUNT] = {
    [M_STARTTLS] = "starttls",
    [M_IMPLICIT] = "implicit",
    [M_PLAIN] = "plain",
    [M_GREET421] = "greet421",
    [M_GREET554] = "greet554",
    [M_EHLO_REJECT_HELO_OK] = "ehlo-reject-helo-ok",
    [M_EHLO_HELO_REJECT] = "ehlo-helo-reject",
    [M_SILENT] = "silent",
    [M_CLOSE] = "close",
    [M_CLOSE_AFTER_EHLO] = "close-after-ehlo",
    [M_GARBAGE] = "garbage",
    [M_ENDLESS_LINE] = "endless-line",
    [M_ENDLESS_MULTILINE] = "endless-multiline",
    [M_HUGE_REPLY] = "huge-reply",
    [M_SLOW] = "slow",
    [M_STARTTLS_454] = "starttls-454",
    [M_STARTTLS_STALL] = "starttls-stall",
    [M_STARTTLS_GARBAGE] = "starttls-garbage",
    [M_AUTH_BEFORE_TLS] = "auth-before-tls",
    [M_INJECTION_VULNERABLE] = "injection-vulnerable",
    [M_TLS10] = "tls10",
    [M_RCPT_REJECT] = "rcpt-reject",
    [M_MAIL_REJECT] = "mail-reject",
    [M_AUTH] = "auth",
    [M_NO_AUTH] = "no-auth",
    [M_TLS11_CLOSE] = "tls11-close",
    [M_SHA1_SIGALG] = "sha1-sigalg",
    [M_TLS_ALERT] = "tls-alert",
    [M_EHLO_421] = "ehlo-421",
    [M_MAIL_451] = "mail-451",
    [M_MAIL_451_47] = "mail-451-47",
    [M_RCPT_450] = "rcpt-450",
    [M_DATA_451] = "data-451",
    [M_EOD_451] = "eod-451",
    [M_AUTH_454] = "auth-454",
};

/* The MTA whose greeting and EHLO words a listener uses (software=). */
enum software { SW_NONE, SW_POSTFIX, SW_EXIM, SW_HARAKA, SW_COUNT };

/* software= values, indexed by enum software ("" for the default). */
static const char *const software_names[SW_COUNT] = {
    [SW_NONE] = "",
    [SW_POSTFIX] = "postfix",
    [SW_EXIM] = "exim",
    [SW_HARAKA] = "haraka",
};

/* ---- Connection states ------------------------------------------------ */

/* Where one connection is in its script. */
enum conn_state {
  CS_TLS_ACCEPT,       /* implicit TLS: handshake before the greeting */
  CS_GREET_WAIT,       /* greet_delay: read and count input, then greet */
  CS_HELLO_PEEK,       /* tls11-close: look at the ClientHello first */
  CS_PROXY_PEEK,       /* proxy: read the PROXY header first */
  CS_COMMAND,          /* read command lines, queue replies */
  CS_AUTH_RESPONSE,    /* read one AUTH continuation line */
  CS_DATA,             /* read message lines until "." */
  CS_STARTTLS_FLUSH,   /* send the 220 to STARTTLS, then switch */
  CS_TLS_HANDSHAKE,    /* STARTTLS handshake */
  CS_SILENT,           /* read and discard, never answer */
  CS_GARBAGE_ON_INPUT, /* answer the next bytes with non-TLS garbage */
  CS_STREAM,           /* send generated bytes (endless/huge replies) */
  CS_CLOSING,          /* send what is queued, then half-close */
  CS_LINGER,           /* discard input until EOF or the linger deadline */
  CS_DONE,             /* to be closed and freed */
  CS_COUNT
};

/* State names for the log, indexed by enum conn_state. */
static const char *const state_names[CS_COUNT] = {
    [CS_TLS_ACCEPT] = "tls_accept",
    [CS_GREET_WAIT] = "greet_wait",
    [CS_HELLO_PEEK] = "hello_peek",
    [CS_PROXY_PEEK] = "proxy_peek",
    [CS_COMMAND] = "command",
    [CS_AUTH_RESPONSE] = "auth_response",
    [CS_DATA] = "data",
    [CS_STARTTLS_FLUSH] = "starttls_flush",
    [CS_TLS_HANDSHAKE] = "tls_handshake",
    [CS_SILENT] = "silent",
    [CS_GARBAGE_ON_INPUT] = "garbage_on_input",
    [CS_STREAM] = "stream",
    [CS_CLOSING] = "closing",
    [CS_LINGER] = "linger",
    [CS_DONE] = "done"};

/* What a CS_STREAM connection is generating. */
enum stream_kind {
  STREAM_NONE,
  STREAM_ENDLESS_LINE,      /* "220 xxxx..." without a line end */
  STREAM_ENDLESS_MULTILINE, /* "220-..." continuation lines */
  STREAM_HUGE_EHLO          /* "250-..." lines, then a last "250 " */
};

/* The AUTH mechanism a CS_AUTH_RESPONSE connection is in. */
enum auth_step {
  AUTH_PLAIN_RESPONSE,  /* waiting for the PLAIN blob */
  AUTH_LOGIN_USER,      /* waiting for the LOGIN user name */
  AUTH_LOGIN_PASSWORD,  /* waiting for the LOGIN password */
  AUTH_CRAM_RESPONSE,   /* waiting for the CRAM-MD5 answer */
  AUTH_XOAUTH2_RESPONSE /* waiting for the XOAUTH2 blob */
};

/* What a peeked ClientHello record tells. */
enum hello_verdict {
  HELLO_MORE,        /* the record is not complete yet */
  HELLO_LEGACY,      /* it offers TLS 1.1 or lower */
  HELLO_MODERN_ONLY, /* it offers only TLS 1.2 and up */
  HELLO_BAD          /* not a ClientHello record */
};

/* Result of one read or write. */
enum io_result { IO_OK, IO_AGAIN, IO_EOF, IO_ERROR };

/* What an epoll registration points at. */
enum item_kind { ITEM_LISTENER, ITEM_CONN, ITEM_SIGNAL };

/* One listening socket and its script. */
struct listener {
  enum item_kind kind;        /* ITEM_LISTENER */
  int fd;                     /* listening socket */
  char addr[80];              /* ADDR:PORT as given, for the log */
  enum mode mode;             /* scripted behaviour */
  char cert_prefix[PATH_MAX]; /* certificate files prefix, "" = default */
  long delay_ms;              /* slow mode: delay of every reply */
  long greet_delay_ms;        /* greet_delay=: greeting this late, 0 none */
  enum software software;     /* software=: whose greeting words */
  bool implicit;              /* TLS from the first byte (mode or option) */
  bool proxy;                 /* a PROXY header comes first (option) */
  char mechs[MECHS_CAP];      /* mechs=: AUTH list after TLS, "" default */
  SSL_CTX *ctx;               /* TLS context, NULL when the mode has none */
};

/* One accepted connection. */
struct conn {
  enum item_kind kind;     /* ITEM_CONN */
  int fd;                  /* the socket */
  unsigned id;             /* number for the log */
  struct listener *lst;    /* listener it came from */
  enum conn_state state;   /* where it is */
  SSL *ssl;                /* TLS session, or NULL */
  bool tls;                /* TLS is established */
  int ssl_want;            /* SSL_ERROR_WANT_READ/WRITE of the last op */
  char in[IN_CAP];         /* unprocessed input */
  size_t in_len;           /* bytes in in[] */
  size_t read_total;       /* bytes read so far (capped) */
  char *out;               /* queued output */
  size_t out_len;          /* bytes in out[] */
  size_t out_off;          /* bytes of out[] already sent */
  size_t out_cap;          /* allocated size of out[] */
  long long hold_until;    /* slow mode: output held until then, 0 none */
  long long linger_until;  /* CS_LINGER deadline, 0 none */
  long long wake_at;       /* greeting due / ClientHello re-peek, 0 none */
  long long hello_until;   /* CS_HELLO_PEEK / CS_PROXY_PEEK give up then */
  size_t pregreet_bytes;   /* bytes read before the greeting was sent */
  bool pregreet_tls;       /* those bytes began like a TLS record (0x16) */
  enum stream_kind stream; /* CS_STREAM generator */
  unsigned long long stream_sent;  /* bytes generated so far */
  unsigned long long stream_limit; /* bytes to generate */
  bool have_mail;                  /* MAIL FROM accepted */
  int nrcpt;                       /* RCPT TO accepted since MAIL */
  size_t data_bytes;               /* CS_DATA: message bytes so far */
  unsigned messages;               /* messages accepted on this connection */
  bool authed;                     /* AUTH succeeded */
  enum auth_step auth_step;        /* CS_AUTH_RESPONSE: what is expected */
  char login_user[128];            /* AUTH LOGIN: the user name given */
  char challenge[128];             /* AUTH CRAM-MD5: the challenge sent */
  uint32_t events;                 /* epoll interest registered */
  struct conn *prev, *next;        /* all connections */
  struct conn *dead_next;          /* connections to free after this turn */
};

/* The whole server. */
struct server {
  int epfd;                                 /* epoll instance */
  struct listener listeners[MAX_LISTENERS]; /* --listen */
  int nlisteners;                           /* used listeners[] */
  struct {
    enum item_kind kind; /* ITEM_SIGNAL */
    int fd;              /* signalfd for SIGTERM/SIGINT */
  } sig;
  char default_cert[PATH_MAX]; /* --cert-prefix */
  char ready_file[PATH_MAX];   /* --ready-file */
  char password[PASSWORD_CAP]; /* AUTH password from the file */
  bool have_password;          /* a password file was read */
  FILE *log;                   /* --log, or NULL */
  struct conn *conns;          /* all connections */
  struct conn *dead;           /* closed this turn, freed at its end */
  unsigned next_id;            /* next connection number */
  int nconns;                  /* open connections */
  bool timers;                 /* some connection may have a deadline */
  int reserve_fd;              /* spare descriptor for shed_one() */
  bool running;                /* false after SIGTERM/SIGINT */
};

static struct server g;

/* ---- Small helpers ---------------------------------------------------- */

/* Milliseconds on the monotonic clock. */
static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Write one timestamped line to the log, when there is one. */
static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...) {
  if (!g.log)
    return;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  fprintf(g.log, "%lld.%03ld ", (long long)ts.tv_sec, ts.tv_nsec / 1000000);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(g.log, fmt, ap);
  va_end(ap);
  fputc('\n', g.log);
  fflush(g.log);
}

/* Copy at most n bytes of src into dst as printable ASCII (others '?'). */
static void sanitize(char *dst, size_t dstlen, const char *src, size_t n) {
  size_t j = 0;
  for (size_t i = 0; i < n && j + 1 < dstlen; i++) {
    unsigned char ch = (unsigned char)src[i];
    dst[j++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
  }
  dst[j] = '\0';
}

/* Bounded string copy that always terminates; false when truncated. */
static bool copy_str(char *dst, size_t dstlen, const char *src) {
  size_t n = strlen(src);
  if (n >= dstlen) {
    memcpy(dst, src, dstlen - 1);
    dst[dstlen - 1] = '\0';
    return false;
  }
  memcpy(dst, src, n + 1);
  return true;
}

/* Log the OpenSSL error queue, then clear it. */
static void log_ssl_errors(unsigned id, const char *what) {
  unsigned long e;
  char buf[256];
  while ((e = ERR_get_error()) != 0) {
    ERR_error_string_n(e, buf, sizeof buf);
    logf_("conn %u: %s: %s", id, what, buf);
  }
}

/* True for modes whose listener needs a TLS context. */
static bool mode_has_tls(enum mode m) {
  switch (m) {
  case M_STARTTLS:
  case M_IMPLICIT:
  case M_SLOW:
  case M_AUTH_BEFORE_TLS:
  case M_INJECTION_VULNERABLE:
  case M_TLS10:
  case M_RCPT_REJECT:
  case M_MAIL_REJECT:
  case M_AUTH:
  case M_NO_AUTH:
  case M_TLS11_CLOSE:
  case M_SHA1_SIGALG:
  case M_TLS_ALERT:
  case M_EHLO_421:
  case M_MAIL_451:
  case M_MAIL_451_47:
  case M_RCPT_450:
  case M_DATA_451:
  case M_EOD_451:
  case M_AUTH_454:
    return true;
  default:
    return false;
  }
}

/* True for listeners that advertise and accept STARTTLS in plaintext. */
static bool offers_starttls(const struct listener *l) {
  enum mode m = l->mode;
  return !l->implicit && m != M_PLAIN && m != M_EHLO_REJECT_HELO_OK &&
         m != M_EHLO_HELO_REJECT;
}

/* ---- Output queue ----------------------------------------------------- */

/* Queue bytes to send; false when the output cap is reached. */
static bool out_append(struct conn *c, const char *data, size_t n) {
  if (c->out_off > 0 && c->out_off == c->out_len)
    c->out_off = c->out_len = 0;
  if (c->out_len + n > OUT_CAP)
    return false;
  if (c->out_len + n > c->out_cap) {
    size_t cap = c->out_cap ? c->out_cap : 1024;
    while (cap < c->out_len + n)
      cap *= 2;
    char *p = realloc(c->out, cap);
    if (!p)
      return false;
    c->out = p;
    c->out_cap = cap;
  }
  memcpy(c->out + c->out_len, data, n);
  c->out_len += n;
  return true;
}

/* Bytes queued and not yet sent. */
static size_t out_pending(const struct conn *c) {
  return c->out_len - c->out_off;
}

/* Queue one reply line (CRLF added); slow mode starts the hold timer. */
static void reply(struct conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void reply(struct conn *c, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 2, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  if ((size_t)n > sizeof line - 3)
    n = (int)(sizeof line - 3);
  if (c->lst->delay_ms > 0 && out_pending(c) == 0) {
    c->hold_until = now_ms() + c->lst->delay_ms;
    g.timers = true;
  }
  line[n++] = '\r';
  line[n++] = '\n';
  if (!out_append(c, line, (size_t)n))
    logf_("conn %u: output cap reached, reply dropped", c->id);
}

/* ---- Reads and writes ------------------------------------------------- */

/* Map an SSL_read/SSL_write/SSL_accept return to an io_result. */
static enum io_result ssl_result(struct conn *c, int r, const char *what) {
  int err = SSL_get_error(c->ssl, r);
  c->ssl_want = 0;
  switch (err) {
  case SSL_ERROR_WANT_READ:
  case SSL_ERROR_WANT_WRITE:
    c->ssl_want = err;
    return IO_AGAIN;
  case SSL_ERROR_ZERO_RETURN:
    return IO_EOF;
  case SSL_ERROR_SYSCALL:
    if (ERR_peek_error() == 0)
      return errno == 0 ? IO_EOF : IO_ERROR;
    log_ssl_errors(c->id, what);
    return IO_ERROR;
  default:
    log_ssl_errors(c->id, what);
    return IO_ERROR;
  }
}

/* Read up to len bytes (TLS when active); *got is set on IO_OK. */
static enum io_result conn_read(struct conn *c, char *buf, size_t len,
                                size_t *got) {
  *got = 0;
  if (len == 0)
    return IO_AGAIN;
  if (c->read_total >= READ_TOTAL_CAP)
    return IO_ERROR;
  if (len > READ_TOTAL_CAP - c->read_total)
    len = READ_TOTAL_CAP - c->read_total;
  if (c->tls) {
    errno = 0;
    int r = SSL_read(c->ssl, buf, (int)len);
    if (r <= 0)
      return ssl_result(c, r, "SSL_read");
    c->ssl_want = 0;
    *got = (size_t)r;
  } else {
    ssize_t r = recv(c->fd, buf, len, 0);
    if (r < 0)
      return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                 ? IO_AGAIN
                 : IO_ERROR;
    if (r == 0)
      return IO_EOF;
    *got = (size_t)r;
  }
  c->read_total += *got;
  return IO_OK;
}

/* Send queued output unless held; IO_OK when all is sent. */
static enum io_result conn_flush(struct conn *c) {
  if (out_pending(c) == 0)
    return IO_OK;
  if (c->hold_until && now_ms() < c->hold_until)
    return IO_AGAIN;
  c->hold_until = 0;
  while (out_pending(c) > 0) {
    size_t n = out_pending(c);
    if (c->tls) {
      errno = 0;
      int r = SSL_write(c->ssl, c->out + c->out_off,
                        n > INT_MAX ? INT_MAX : (int)n);
      if (r <= 0)
        return ssl_result(c, r, "SSL_write");
      c->ssl_want = 0;
      c->out_off += (size_t)r;
    } else {
      ssize_t r = send(c->fd, c->out + c->out_off, n, MSG_NOSIGNAL);
      if (r < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                   ? IO_AGAIN
                   : IO_ERROR;
      c->out_off += (size_t)r;
    }
  }
  c->out_off = c->out_len = 0;
  return IO_OK;
}

/* Read and throw away whatever is there; IO_EOF/IO_ERROR end it. */
static enum io_result discard_input(struct conn *c) {
  char buf[4096];
  for (int i = 0; i < READ_ROUNDS; i++) {
    size_t got;
    enum io_result r = conn_read(c, buf, sizeof buf, &got);
    if (r != IO_OK)
      return r;
  }
  return IO_AGAIN;
}

/* ---- Transitions ------------------------------------------------------ */

/* The one place a connection changes state. */
static void set_state(struct conn *c, enum conn_state next) {
  if (c->state == next)
    return;
  logf_("conn %u: %s -> %s", c->id, state_names[c->state], state_names[next]);
  c->state = next;
  if (next == CS_LINGER) {
    c->linger_until = now_ms() + LINGER_MS;
    g.timers = true;
  }
}

/* Start a TLS session on the connection's socket. */
static bool start_tls(struct conn *c) {
  c->ssl = SSL_new(c->lst->ctx);
  if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
    log_ssl_errors(c->id, "SSL_new");
    return false;
  }
  SSL_set_accept_state(c->ssl);
  return true;
}

/* Queue bytes of binary garbage ending in CRLF (never a TLS record). */
static void queue_garbage(struct conn *c) {
  static const char garbage[] =
      "\x00\xff\xfe\x7f\x01\x02 binary garbage \x80\x90\xa0\x1b[0m\x07\r\n";
  out_append(c, garbage, sizeof garbage - 1);
}

/* Queue the 220 greeting, in the words of the listener's software=. */
static void queue_greeting(struct conn *c) {
  switch (c->lst->software) {
  case SW_POSTFIX:
    reply(c, "220 %s ESMTP Postfix (Debian/GNU)", SERVER_NAME);
    break;
  case SW_EXIM: {
    /* Exim's default smtp_banner ends in $tod_full. */
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
    reply(c, "220 %s ESMTP Exim 4.96 %s", SERVER_NAME, date);
    break;
  }
  case SW_HARAKA:
    reply(c, "220 %s ESMTP Haraka/3.3.0 ready", SERVER_NAME);
    break;
  default:
    reply(c, "220 %s ESMTP smtp_fault_server (%s)", SERVER_NAME,
          mode_names[c->lst->mode]);
    break;
  }
}

/* Send the mode's greeting now (the 220, or greet421/greet554's reply and
 * a close) and move on to its state. */
static void greet(struct conn *c) {
  switch (c->lst->mode) {
  case M_GREET421:
    reply(c,
          "421 4.3.2 %s Service not available, closing transmission "
          "channel",
          SERVER_NAME);
    set_state(c, CS_CLOSING);
    break;
  case M_GREET554:
    reply(c, "554 5.7.1 %s No SMTP service here", SERVER_NAME);
    set_state(c, CS_CLOSING);
    break;
  default:
    queue_greeting(c);
    set_state(c, CS_COMMAND);
    break;
  }
}

/* Greet now, or (greet_delay=) wait that long in CS_GREET_WAIT first. */
static void greet_or_wait(struct conn *c) {
  if (c->lst->greet_delay_ms <= 0) {
    greet(c);
    return;
  }
  /* +1: now_ms() truncates, the wait must never be a millisecond short. */
  c->wake_at = now_ms() + c->lst->greet_delay_ms + 1;
  g.timers = true;
  set_state(c, CS_GREET_WAIT);
}

/* Start TLS on the socket in the state the listener needs: tls11-close
 * first peeks at the ClientHello (CS_HELLO_PEEK); implicit listeners
 * handshake before the greeting (CS_TLS_ACCEPT), STARTTLS ones after the
 * 220 to STARTTLS (CS_TLS_HANDSHAKE). */
static void begin_tls(struct conn *c, bool peeked) {
  if (c->lst->mode == M_TLS11_CLOSE && !peeked) {
    c->hello_until = now_ms() + HELLO_WAIT_MS;
    set_state(c, CS_HELLO_PEEK);
    return;
  }
  if (!start_tls(c)) {
    set_state(c, CS_DONE);
    return;
  }
  set_state(c, c->lst->implicit ? CS_TLS_ACCEPT : CS_TLS_HANDSHAKE);
}

/* Set the first state of a new connection from its listener's mode. */
static void conn_begin(struct conn *c) {
  if (c->lst->implicit) {
    begin_tls(c, false);
    return;
  }
  switch (c->lst->mode) {
  case M_CLOSE:
    set_state(c, CS_DONE);
    break;
  case M_SILENT:
    set_state(c, CS_SILENT);
    break;
  case M_GARBAGE:
    queue_garbage(c);
    set_state(c, CS_SILENT);
    break;
  case M_ENDLESS_LINE:
    c->stream = STREAM_ENDLESS_LINE;
    c->stream_limit = ENDLESS_CAP;
    set_state(c, CS_STREAM);
    break;
  case M_ENDLESS_MULTILINE:
    c->stream = STREAM_ENDLESS_MULTILINE;
    c->stream_limit = ENDLESS_CAP;
    set_state(c, CS_STREAM);
    break;
  default:
    greet_or_wait(c);
    break;
  }
}

/* ---- SMTP commands ---------------------------------------------------- */

/* AUTH mechanisms advertised now, or NULL when AUTH is not offered. */
static const char *auth_mechs(const struct conn *c) {
  enum mode m = c->lst->mode;
  if (c->tls && m == M_NO_AUTH)
    return NULL;
  if (c->tls && c->lst->mechs[0])
    return c->lst->mechs;
  if (c->tls)
    return m == M_AUTH || m == M_AUTH_454 ? "PLAIN LOGIN CRAM-MD5 XOAUTH2"
                                          : "PLAIN LOGIN";
  if (m == M_AUTH_BEFORE_TLS)
    return "PLAIN LOGIN";
  return NULL;
}

/* True when the space-separated list mechs names mech (any case). */
static bool mech_offered(const char *mechs, const char *mech) {
  size_t n = strlen(mech);
  for (const char *p = mechs; *p;) {
    size_t w = strcspn(p, " ");
    if (w == n && strncasecmp(p, mech, n) == 0)
      return true;
    p += w;
    while (*p == ' ')
      p++;
  }
  return false;
}

/* Queue the 421 of ehlo-421 and close (EHLO and HELO alike). */
static void reply_421_closing(struct conn *c) {
  reply(c, "421 4.3.2 %s Service not available, closing transmission channel",
        SERVER_NAME);
  set_state(c, CS_CLOSING);
}

/* Answer EHLO with the mode's extension list. */
static void cmd_ehlo(struct conn *c, const char *arg) {
  enum mode m = c->lst->mode;
  if (m == M_CLOSE_AFTER_EHLO) {
    set_state(c, CS_DONE);
    return;
  }
  if (m == M_EHLO_REJECT_HELO_OK) {
    reply(c, "502 5.5.2 Error: command not recognized");
    return;
  }
  if (m == M_EHLO_HELO_REJECT) {
    reply(c, "550 5.7.1 EHLO rejected by policy");
    return;
  }
  if (m == M_EHLO_421) {
    reply_421_closing(c);
    return;
  }
  char who[64];
  sanitize(who, sizeof who, arg, strlen(arg));
  c->have_mail = false;
  if (c->lst->software == SW_POSTFIX)
    reply(c, "250-%s", SERVER_NAME);
  else if (c->lst->software == SW_HARAKA)
    reply(c, "250-%s Hello %s, Haraka is at your service.", SERVER_NAME, who);
  else
    reply(c, "250-%s Hello %s", SERVER_NAME, who);
  if (m == M_HUGE_REPLY) {
    c->stream = STREAM_HUGE_EHLO;
    c->stream_limit = HUGE_REPLY_BYTES;
    c->stream_sent = 0;
    set_state(c, CS_STREAM);
    return;
  }
  reply(c, "250-PIPELINING");
  reply(c, "250-SIZE 10240000");
  reply(c, "250-8BITMIME");
  const char *mechs = auth_mechs(c);
  if (mechs)
    reply(c, "250-AUTH %s", mechs);
  if (!c->tls && offers_starttls(c->lst)) {
    reply(c, "250-ENHANCEDSTATUSCODES");
    reply(c, "250 STARTTLS");
  } else {
    reply(c, "250 ENHANCEDSTATUSCODES");
  }
}

/* Answer HELO. */
static void cmd_helo(struct conn *c) {
  if (c->lst->mode == M_EHLO_HELO_REJECT) {
    reply(c, "550 5.7.1 HELO rejected by policy");
    return;
  }
  if (c->lst->mode == M_EHLO_421) {
    reply_421_closing(c);
    return;
  }
  c->have_mail = false;
  reply(c, "250 %s", SERVER_NAME);
}

/* Answer STARTTLS as the mode says. */
static void cmd_starttls(struct conn *c) {
  enum mode m = c->lst->mode;
  if (c->tls) {
    reply(c, "554 5.5.1 Error: TLS already active");
    return;
  }
  if (!offers_starttls(c->lst)) {
    reply(c, "502 5.5.1 Error: command not implemented");
    return;
  }
  if (m == M_STARTTLS_454) {
    reply(c, "454 4.7.0 TLS not available due to local problem");
    return;
  }
  reply(c, "220 2.0.0 Ready to start TLS");
  if (c->in_len > 0 && m != M_INJECTION_VULNERABLE) {
    logf_("conn %u: discarding %zu plaintext bytes pipelined after STARTTLS",
          c->id, c->in_len);
    c->in_len = 0;
  } else if (c->in_len > 0) {
    logf_("conn %u: keeping %zu plaintext bytes pipelined after STARTTLS "
          "(vulnerable)",
          c->id, c->in_len);
  }
  set_state(c, CS_STARTTLS_FLUSH);
}

/* Answer MAIL FROM. */
static void cmd_mail(struct conn *c) {
  if (c->lst->mode == M_MAIL_REJECT) {
    reply(c, "553 5.7.1 Sender address rejected: not owned by user");
    return;
  }
  if (c->lst->mode == M_MAIL_451) {
    reply(c, "451 4.3.0 Error: temporary lookup failure");
    return;
  }
  if (c->lst->mode == M_MAIL_451_47) {
    reply(c, "451 4.7.1 Service unavailable, try again later");
    return;
  }
  if (c->lst->mode == M_AUTH && !c->authed) {
    reply(c, "530 5.7.0 Authentication required");
    return;
  }
  c->have_mail = true;
  c->nrcpt = 0;
  reply(c, "250 2.1.0 Ok");
}

/* Answer RCPT TO. */
static void cmd_rcpt(struct conn *c) {
  if (!c->have_mail) {
    reply(c, "503 5.5.1 Error: need MAIL command");
    return;
  }
  if (c->lst->mode == M_RCPT_REJECT) {
    reply(c, "550 5.1.1 Recipient address rejected: User unknown");
    return;
  }
  if (c->lst->mode == M_RCPT_450) {
    reply(c, "450 4.2.1 Mailbox temporarily unavailable, try again later");
    return;
  }
  c->nrcpt++;
  reply(c, "250 2.1.5 Ok");
}

/* Answer DATA: 354 when MAIL and a RCPT were accepted. */
static void cmd_data(struct conn *c) {
  if (!c->have_mail) {
    reply(c, "503 5.5.1 Error: need MAIL command");
    return;
  }
  if (c->nrcpt == 0) {
    reply(c, "554 5.5.1 Error: no valid recipients");
    return;
  }
  if (c->lst->mode == M_DATA_451) {
    reply(c, "451 4.3.1 Insufficient system storage");
    return;
  }
  c->data_bytes = 0;
  reply(c, "354 End data with <CR><LF>.<CR><LF>");
  set_state(c, CS_DATA);
}

/* Take one message line in CS_DATA (never logged); "." ends it. */
static void data_line(struct conn *c, const char *line) {
  if (strcmp(line, ".") != 0) {
    c->data_bytes += strlen(line) + 2;
    return;
  }
  if (c->data_bytes > 10240000) {
    reply(c, "552 5.3.4 Message size exceeds fixed limit");
  } else if (c->lst->mode == M_EOD_451) {
    reply(c, "451 4.3.0 Error: queue file write error");
  } else {
    c->messages++;
    reply(c, "250 2.0.0 Ok: queued as FAULT%uX%u", c->id, c->messages);
  }
  logf_("conn %u: message of %zu bytes ended", c->id, c->data_bytes);
  c->have_mail = false;
  c->nrcpt = 0;
  set_state(c, CS_COMMAND);
}

/* Decode base64 text into out (NUL-terminated); -1 when invalid. */
static int b64_decode(const char *in, char *out, size_t outlen) {
  size_t n = strlen(in);
  if (n == 0 || n % 4 != 0 || (n / 4) * 3 + 1 > outlen)
    return -1;
  int len =
      EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)in, (int)n);
  if (len < 0)
    return -1;
  if (n >= 1 && in[n - 1] == '=')
    len--;
  if (n >= 2 && in[n - 2] == '=')
    len--;
  out[len] = '\0';
  return len;
}

/* True when user and password (len bytes) are the configured ones. */
static bool credentials_ok(const char *user, const char *pw, size_t pwlen) {
  size_t want = strlen(g.password);
  return g.have_password && strcmp(user, AUTH_USER) == 0 && pwlen == want &&
         CRYPTO_memcmp(pw, g.password, want) == 0;
}

/* Finish an AUTH exchange with success or failure (auth-454: with a
 * temporary failure whatever the credentials). */
static void auth_finish(struct conn *c, bool ok) {
  if (c->lst->mode == M_AUTH_454) {
    c->authed = false;
    reply(c, "454 4.7.0 Temporary authentication failure");
    logf_("conn %u: AUTH temporary failure (454)", c->id);
    set_state(c, CS_COMMAND);
    return;
  }
  c->authed = ok;
  if (ok)
    reply(c, "235 2.7.0 Authentication successful");
  else
    reply(c, "535 5.7.8 Error: authentication failed");
  logf_("conn %u: AUTH %s", c->id, ok ? "succeeded" : "failed");
  set_state(c, CS_COMMAND);
}

/* Check an AUTH PLAIN blob (authzid NUL authcid NUL password). */
static void auth_plain(struct conn *c, const char *b64) {
  char buf[512];
  int n = b64_decode(b64, buf, sizeof buf);
  const char *user = NULL, *pw = NULL;
  if (n > 0) {
    char *z1 = memchr(buf, '\0', (size_t)n);
    char *z2 = z1 ? memchr(z1 + 1, '\0', (size_t)(buf + n - z1 - 1)) : NULL;
    if (z2) {
      user = z1 + 1;
      pw = z2 + 1;
    }
  }
  bool ok = user && credentials_ok(user, pw, (size_t)(buf + n - pw));
  OPENSSL_cleanse(buf, sizeof buf);
  auth_finish(c, ok);
}

/* Check a CRAM-MD5 answer: "user hex(HMAC-MD5(password, challenge))". */
static void auth_cram(struct conn *c, const char *b64) {
  char buf[512];
  bool ok = false;
  int n = b64_decode(b64, buf, sizeof buf);
  char *sp = n > 0 ? strrchr(buf, ' ') : NULL;
  if (sp && g.have_password) {
    *sp = '\0';
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    if (HMAC(EVP_md5(), g.password, (int)strlen(g.password),
             (const unsigned char *)c->challenge, strlen(c->challenge), mac,
             &maclen)) {
      for (unsigned i = 0; i < maclen; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
      ok = strcmp(buf, AUTH_USER) == 0 && strlen(sp + 1) == 2 * maclen &&
           CRYPTO_memcmp(sp + 1, hex, 2 * maclen) == 0;
    } else {
      log_ssl_errors(c->id, "HMAC-MD5");
    }
  }
  OPENSSL_cleanse(buf, sizeof buf);
  auth_finish(c, ok);
}

/* Check an XOAUTH2 blob: "user=U^Aauth=Bearer TOKEN^A^A". */
static void auth_xoauth2(struct conn *c, const char *b64) {
  char buf[512];
  bool ok = false;
  int n = b64_decode(b64, buf, sizeof buf);
  static const char bearer[] = "\001auth=Bearer ";
  char *tok =
      n > 5 && strncmp(buf, "user=", 5) == 0 ? strstr(buf, bearer) : NULL;
  if (tok) {
    *tok = '\0';
    tok += sizeof bearer - 1;
    char *end = strstr(tok, "\001\001");
    if (end)
      ok = credentials_ok(buf + 5, tok, (size_t)(end - tok));
  }
  OPENSSL_cleanse(buf, sizeof buf);
  auth_finish(c, ok);
}

/* Start AUTH MECH [initial-response]. */
static void cmd_auth(struct conn *c, char *arg) {
  const char *mechs = auth_mechs(c);
  if (!mechs) {
    reply(c, "530 5.7.0 Must issue a STARTTLS command first");
    return;
  }
  if (c->authed) {
    reply(c, "503 5.5.1 Error: already authenticated");
    return;
  }
  char *initial = strchr(arg, ' ');
  if (initial)
    *initial++ = '\0';
  if (!mech_offered(mechs, arg)) {
    reply(c, "504 5.5.4 Error: unsupported authentication mechanism");
    return;
  }
  if (strcasecmp(arg, "PLAIN") == 0) {
    if (initial && *initial) {
      auth_plain(c, initial);
      return;
    }
    c->auth_step = AUTH_PLAIN_RESPONSE;
    reply(c, "334 ");
  } else if (strcasecmp(arg, "XOAUTH2") == 0) {
    if (initial && *initial) {
      auth_xoauth2(c, initial);
      return;
    }
    c->auth_step = AUTH_XOAUTH2_RESPONSE;
    reply(c, "334 ");
  } else if (strcasecmp(arg, "LOGIN") == 0) {
    c->auth_step = AUTH_LOGIN_USER;
    reply(c, "334 VXNlcm5hbWU6");
  } else if (strcasecmp(arg, "CRAM-MD5") == 0) {
    unsigned char rnd[8];
    unsigned long long r = 0;
    if (RAND_bytes(rnd, sizeof rnd) == 1)
      memcpy(&r, rnd, sizeof r);
    snprintf(c->challenge, sizeof c->challenge, "<%llu.%lld@%s>", r,
             (long long)time(NULL), SERVER_NAME);
    char b64[256];
    EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)c->challenge,
                    (int)strlen(c->challenge));
    c->auth_step = AUTH_CRAM_RESPONSE;
    reply(c, "334 %s", b64);
  } else {
    reply(c, "504 5.5.4 Error: unsupported authentication mechanism");
    return;
  }
  set_state(c, CS_AUTH_RESPONSE);
}

/* Handle one AUTH continuation line (never logged: it holds secrets). */
static void auth_line(struct conn *c, char *line) {
  if (strcmp(line, "*") == 0) {
    reply(c, "501 5.7.0 Authentication aborted");
    set_state(c, CS_COMMAND);
    return;
  }
  char buf[256];
  switch (c->auth_step) {
  case AUTH_PLAIN_RESPONSE:
    auth_plain(c, line);
    break;
  case AUTH_LOGIN_USER:
    if (b64_decode(line, buf, sizeof buf) < 0) {
      auth_finish(c, false);
      break;
    }
    copy_str(c->login_user, sizeof c->login_user, buf);
    c->auth_step = AUTH_LOGIN_PASSWORD;
    reply(c, "334 UGFzc3dvcmQ6");
    break;
  case AUTH_LOGIN_PASSWORD: {
    int n = b64_decode(line, buf, sizeof buf);
    auth_finish(c, n >= 0 && credentials_ok(c->login_user, buf, (size_t)n));
    OPENSSL_cleanse(buf, sizeof buf);
    break;
  }
  case AUTH_CRAM_RESPONSE:
    auth_cram(c, line);
    break;
  case AUTH_XOAUTH2_RESPONSE:
    auth_xoauth2(c, line);
    break;
  }
}

/* Dispatch one command line in CS_COMMAND. */
static void smtp_command(struct conn *c, char *line) {
  char verb[16];
  size_t vlen = strcspn(line, " ");
  char *arg = line + vlen;
  while (*arg == ' ')
    arg++;
  sanitize(verb, sizeof verb, line,
           vlen < sizeof verb ? vlen : sizeof verb - 1);
  if (strcasecmp(verb, "AUTH") == 0) {
    char mech[16];
    size_t mlen = strcspn(arg, " ");
    sanitize(mech, sizeof mech, arg,
             mlen < sizeof mech ? mlen : sizeof mech - 1);
    logf_("conn %u: < AUTH %s [credentials not logged]", c->id, mech);
  } else {
    char shown[128];
    sanitize(shown, sizeof shown, line, strlen(line));
    logf_("conn %u: < %s", c->id, shown);
  }
  if (strcasecmp(verb, "EHLO") == 0)
    cmd_ehlo(c, arg);
  else if (strcasecmp(verb, "HELO") == 0)
    cmd_helo(c);
  else if (strcasecmp(verb, "STARTTLS") == 0)
    cmd_starttls(c);
  else if (strcasecmp(verb, "AUTH") == 0)
    cmd_auth(c, arg);
  else if (strcasecmp(verb, "MAIL") == 0)
    cmd_mail(c);
  else if (strcasecmp(verb, "RCPT") == 0)
    cmd_rcpt(c);
  else if (strcasecmp(verb, "NOOP") == 0)
    reply(c, "250 2.0.0 Ok");
  else if (strcasecmp(verb, "RSET") == 0) {
    c->have_mail = false;
    c->nrcpt = 0;
    reply(c, "250 2.0.0 Ok");
  } else if (strcasecmp(verb, "QUIT") == 0) {
    reply(c, "221 2.0.0 Bye");
    set_state(c, CS_CLOSING);
  } else if (strcasecmp(verb, "DATA") == 0)
    cmd_data(c);
  else
    reply(c, "502 5.5.2 Error: command not recognized");
}

/* Process the complete lines in in[] while the state reads lines. */
static void process_lines(struct conn *c) {
  while (c->state == CS_COMMAND || c->state == CS_AUTH_RESPONSE ||
         c->state == CS_DATA) {
    char *lf = memchr(c->in, '\n', c->in_len);
    if (!lf) {
      if (c->in_len == IN_CAP) {
        reply(c, "500 5.5.0 Error: line too long");
        c->in_len = 0;
        set_state(c, CS_CLOSING);
      }
      return;
    }
    size_t used = (size_t)(lf - c->in) + 1;
    char line[IN_CAP];
    size_t n = used - 1;
    if (n > 0 && c->in[n - 1] == '\r')
      n--;
    memcpy(line, c->in, n);
    line[n] = '\0';
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    if (c->state == CS_AUTH_RESPONSE)
      auth_line(c, line);
    else if (c->state == CS_DATA)
      data_line(c, line);
    else
      smtp_command(c, line);
    OPENSSL_cleanse(line, n);
  }
}

/* ---- State handlers --------------------------------------------------- */

/* CS_TLS_ACCEPT: implicit TLS handshake, then the greeting. */
static void on_tls_accept(struct conn *c) {
  errno = 0;
  int r = SSL_accept(c->ssl);
  if (r == 1) {
    c->tls = true;
    c->ssl_want = 0;
    logf_("conn %u: implicit TLS up, %s", c->id, SSL_get_version(c->ssl));
    greet_or_wait(c);
    return;
  }
  if (ssl_result(c, r, "SSL_accept") != IO_AGAIN)
    set_state(c, CS_DONE);
}

/* CS_GREET_WAIT: read what arrives before the greeting (counted; kept as
 * early commands unless it starts like a TLS record), greet at wake_at,
 * and answer an early ClientHello like an MTA reading it as a command. */
static void on_greet_wait(struct conn *c) {
  char buf[4096];
  for (int i = 0; i < READ_ROUNDS; i++) {
    size_t got;
    enum io_result r = conn_read(c, buf, sizeof buf, &got);
    if (r == IO_AGAIN)
      break;
    if (r != IO_OK) {
      logf_("conn %u: peer %s before the greeting (read %zu bytes)", c->id,
            r == IO_EOF ? "closed" : "error", c->pregreet_bytes);
      set_state(c, CS_DONE);
      return;
    }
    if (c->pregreet_bytes == 0 && !c->tls && (unsigned char)buf[0] == 0x16)
      c->pregreet_tls = true;
    c->pregreet_bytes += got;
    if (!c->pregreet_tls) {
      size_t room = IN_CAP - c->in_len;
      size_t n = got < room ? got : room;
      memcpy(c->in + c->in_len, buf, n);
      c->in_len += n;
    }
  }
  if (now_ms() < c->wake_at)
    return;
  c->wake_at = 0;
  if (c->pregreet_bytes > 0)
    logf_("conn %u: read %zu bytes before the greeting%s", c->id,
          c->pregreet_bytes,
          c->pregreet_tls ? " (a TLS record: answered as a command)" : "");
  greet(c);
  if (c->pregreet_tls && c->state == CS_COMMAND)
    reply(c, "500 5.5.1 Error: command not recognized");
}

/* Parse the ClientHello record in b[0..n) (bounds checked at every
 * field): does it offer TLS 1.1 or lower? The supported_versions
 * extension decides when present, otherwise legacy_version (a pre-1.3
 * client accepts any version up to it). vers gets the versions seen. */
static enum hello_verdict parse_client_hello(const unsigned char *b, size_t n,
                                             char *vers, size_t verslen) {
  vers[0] = '\0';
  if (n >= 1 && b[0] != 0x16)
    return HELLO_BAD;
  if (n < 5)
    return HELLO_MORE;
  size_t reclen = (size_t)b[3] << 8 | b[4];
  if (reclen < 4 || reclen > HELLO_PEEK_CAP - 5)
    return HELLO_BAD;
  if (n < 5 + reclen)
    return HELLO_MORE;
  const unsigned char *p = b + 5, *end = b + 5 + reclen;
  if (p[0] != 1) /* handshake type client_hello */
    return HELLO_BAD;
  size_t hslen = (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
  p += 4;
  if (hslen < (size_t)(end - p))
    end = p + hslen; /* a fragmented hello: parse this record's part */
  if (end - p < 2 + 32 + 1)
    return HELLO_BAD;
  unsigned legacy = (unsigned)p[0] << 8 | p[1];
  snprintf(vers, verslen, "legacy_version 0x%04x", legacy);
  p += 2 + 32;
  size_t skip = p[0]; /* session id */
  p += 1;
  if ((size_t)(end - p) < skip + 2)
    return HELLO_BAD;
  p += skip;
  skip = (size_t)p[0] << 8 | p[1]; /* cipher suites */
  p += 2;
  if ((size_t)(end - p) < skip + 1)
    return HELLO_BAD;
  p += skip;
  skip = p[0]; /* compression methods */
  p += 1;
  if ((size_t)(end - p) < skip)
    return HELLO_BAD;
  p += skip;
  if (end - p >= 2) {
    size_t extlen = (size_t)p[0] << 8 | p[1];
    p += 2;
    if (extlen < (size_t)(end - p))
      end = p + extlen;
    while (end - p >= 4) {
      unsigned type = (unsigned)p[0] << 8 | p[1];
      size_t len = (size_t)p[2] << 8 | p[3];
      p += 4;
      if ((size_t)(end - p) < len)
        break; /* cut by fragmentation: fall back on legacy_version */
      if (type == 0x002b && len >= 1 && (size_t)p[0] + 1 <= len) {
        bool legacy_ok = false;
        size_t used = strlen(vers);
        used += (size_t)snprintf(vers + used, verslen - used,
                                 ", supported_versions");
        for (size_t i = 1; i + 1 <= p[0]; i += 2) {
          unsigned v = (unsigned)p[i] << 8 | p[i + 1];
          if (used < verslen)
            used += (size_t)snprintf(vers + used, verslen - used, " 0x%04x", v);
          if (v >= 0x0300 && v <= 0x0302)
            legacy_ok = true;
        }
        return legacy_ok ? HELLO_LEGACY : HELLO_MODERN_ONLY;
      }
      p += len;
    }
  }
  return legacy >= 0x0300 ? HELLO_LEGACY : HELLO_BAD;
}

/* CS_HELLO_PEEK (tls11-close): peek at the ClientHello before OpenSSL
 * sees it. One offering TLS 1.1 or lower gets the TLS 1.1 handshake;
 * one offering only TLS 1.2+ is consumed and the connection closed with
 * a FIN and no alert, as some old servers and middleboxes do. */
static void on_hello_peek(struct conn *c) {
  unsigned char buf[HELLO_PEEK_CAP];
  char vers[160];
  c->wake_at = 0;
  ssize_t r = recv(c->fd, buf, sizeof buf, MSG_PEEK);
  if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return;
  if (r <= 0) {
    logf_("conn %u: peer %s before its ClientHello", c->id,
          r == 0 ? "closed" : "error");
    set_state(c, CS_DONE);
    return;
  }
  enum hello_verdict v = parse_client_hello(buf, (size_t)r, vers, sizeof vers);
  if (v == HELLO_MORE) {
    if (now_ms() >= c->hello_until) {
      logf_("conn %u: ClientHello incomplete after %d ms", c->id,
            HELLO_WAIT_MS);
      set_state(c, CS_DONE);
      return;
    }
    /* Data stays queued while peeking: poll by timer, not by EPOLLIN. */
    c->wake_at = now_ms() + HELLO_RETRY_MS;
    g.timers = true;
    return;
  }
  if (v == HELLO_LEGACY) {
    logf_("conn %u: ClientHello offers TLS 1.1 or lower (%s): handshake", c->id,
          vers);
    begin_tls(c, true);
    return;
  }
  logf_("conn %u: ClientHello %s (%s): closing without an alert", c->id,
        v == HELLO_BAD ? "unparseable" : "offers only TLS 1.2+",
        vers[0] ? vers : "no version field reached");
  /* Consume what was peeked so close() sends a FIN, not a reset. */
  ssize_t got = recv(c->fd, buf, (size_t)r, 0);
  if (got > 0)
    c->read_total += (size_t)got;
  set_state(c, CS_CLOSING);
}

/* What a peek at a PROXY header found. */
enum proxy_verdict {
  PROXY_MORE, /* not all of it yet */
  PROXY_BAD,  /* not a PROXY header */
  PROXY_OK    /* a whole header of *len bytes */
};

/* The text of an address and port ("127.0.0.1 45678"). */
static void sock_text(const struct sockaddr_storage *ss, char *buf,
                      size_t buflen) {
  char a[INET6_ADDRSTRLEN] = "?";
  unsigned port = 0;
  if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
    inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof a);
    port = ntohs(s6->sin6_port);
  } else {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
    inet_ntop(AF_INET, &s4->sin_addr, a, sizeof a);
    port = ntohs(s4->sin_port);
  }
  snprintf(buf, buflen, "%s %u", a, port);
}

/* Parse a peeked PROXY v1 line or v2 header (bounded by n) into
 * "SRC SPORT -> DST DPORT" text. */
static enum proxy_verdict parse_proxy(const unsigned char *b, size_t n,
                                      size_t *len, int *version, char *desc,
                                      size_t desclen) {
  static const unsigned char sig2[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                         0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
  static const char sig1[] = "PROXY ";
  size_t k = n < 6 ? n : 6;
  if (memcmp(b, sig1, k) == 0) {
    *version = 1;
    size_t end = 0;
    while (end + 1 < n && end < 107 && !(b[end] == '\r' && b[end + 1] == '\n'))
      end++;
    if (end + 1 >= n || end >= 107)
      return n >= 107 ? PROXY_BAD : PROXY_MORE;
    char line[108], proto[8], sa[64], da[64];
    unsigned sp = 0, dp = 0;
    memcpy(line, b, end);
    line[end] = '\0';
    if (sscanf(line, "PROXY %7s %63s %63s %u %u", proto, sa, da, &sp, &dp) != 5)
      return PROXY_BAD;
    snprintf(desc, desclen, "%s %s %u -> %s %u", proto, sa, sp, da, dp);
    *len = end + 2;
    return PROXY_OK;
  }
  k = n < 12 ? n : 12;
  if (memcmp(b, sig2, k) != 0)
    return PROXY_BAD;
  *version = 2;
  if (n < 16)
    return PROXY_MORE;
  size_t alen = ((size_t)b[14] << 8) | b[15];
  if (16 + alen > PROXY_PEEK_CAP || b[12] != 0x21)
    return PROXY_BAD;
  if (n < 16 + alen)
    return PROXY_MORE;
  char sa[INET6_ADDRSTRLEN], da[INET6_ADDRSTRLEN];
  const unsigned char *q = b + 16;
  if (b[13] == 0x11 && alen >= 12) {
    inet_ntop(AF_INET, q, sa, sizeof sa);
    inet_ntop(AF_INET, q + 4, da, sizeof da);
    q += 8;
  } else if (b[13] == 0x21 && alen >= 36) {
    inet_ntop(AF_INET6, q, sa, sizeof sa);
    inet_ntop(AF_INET6, q + 16, da, sizeof da);
    q += 32;
  } else {
    return PROXY_BAD;
  }
  snprintf(desc, desclen, "%s %s %u -> %s %u", b[13] == 0x11 ? "TCP4" : "TCP6",
           sa, (unsigned)((q[0] << 8) | q[1]), da,
           (unsigned)((q[2] << 8) | q[3]));
  *len = 16 + alen;
  return PROXY_OK;
}

/* CS_PROXY_PEEK (proxy listeners): peek for the PROXY header, check its
 * addresses against the socket's own, read exactly the header, then
 * begin as the mode says; none within PROXY_WAIT_MS, or something else:
 * log and close, as Postfix with smtpd_upstream_proxy_protocol does. */
static void on_proxy_peek(struct conn *c) {
  unsigned char buf[PROXY_PEEK_CAP];
  c->wake_at = 0;
  ssize_t r = recv(c->fd, buf, sizeof buf, MSG_PEEK);
  bool none_yet =
      r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
  if (r <= 0 && !none_yet) {
    logf_("conn %u: peer %s before its PROXY header", c->id,
          r == 0 ? "closed" : "error");
    set_state(c, CS_DONE);
    return;
  }
  size_t len = 0;
  int version = 0;
  char desc[200] = "";
  enum proxy_verdict v =
      none_yet ? PROXY_MORE
               : parse_proxy(buf, (size_t)r, &len, &version, desc, sizeof desc);
  if (v == PROXY_MORE) {
    if (now_ms() >= c->hello_until) {
      logf_("conn %u: no PROXY header after %d ms: closing", c->id,
            PROXY_WAIT_MS);
      set_state(c, CS_CLOSING);
      return;
    }
    c->wake_at = now_ms() + HELLO_RETRY_MS;
    g.timers = true;
    return;
  }
  if (v == PROXY_BAD) {
    logf_("conn %u: no PROXY header (first byte 0x%02x): closing", c->id,
          buf[0]);
    set_state(c, CS_CLOSING);
    return;
  }
  ssize_t got = recv(c->fd, buf, len, 0);
  if (got != (ssize_t)len) {
    set_state(c, CS_DONE);
    return;
  }
  c->read_total += len;
  struct sockaddr_storage peer, me;
  socklen_t pl = sizeof peer, ml = sizeof me;
  char ps[96] = "?", ms[96] = "?", want[200];
  if (getpeername(c->fd, (struct sockaddr *)&peer, &pl) == 0)
    sock_text(&peer, ps, sizeof ps);
  if (getsockname(c->fd, (struct sockaddr *)&me, &ml) == 0)
    sock_text(&me, ms, sizeof ms);
  snprintf(want, sizeof want, "%s -> %s", ps, ms);
  const char *proto_end = strchr(desc, ' ');
  bool match = proto_end && strcmp(proto_end + 1, want) == 0;
  logf_("conn %u: PROXY v%d %s: %s the socket's addresses", c->id, version,
        desc, match ? "matches" : "DIFFERS FROM");
  conn_begin(c);
}

/* CS_COMMAND: read command lines, answer them, send the replies. */
static void on_command(struct conn *c) {
  enum conn_state entry = c->state;
  for (int i = 0; i < READ_ROUNDS; i++) {
    process_lines(c);
    if (c->state != entry)
      return;
    if (out_pending(c) > OUT_HIGH)
      break;
    size_t got;
    enum io_result r =
        conn_read(c, c->in + c->in_len, IN_CAP - c->in_len, &got);
    if (r == IO_AGAIN)
      break;
    if (r != IO_OK) {
      logf_("conn %u: peer %s", c->id, r == IO_EOF ? "closed" : "error");
      set_state(c, CS_DONE);
      return;
    }
    c->in_len += got;
  }
  enum io_result w = conn_flush(c);
  if (w == IO_ERROR || w == IO_EOF)
    set_state(c, CS_DONE);
}

/* CS_AUTH_RESPONSE: the same line reading; process_lines() hands each
 * line to auth_line() while in this state. */
static void on_auth_response(struct conn *c) {
  on_command(c);
}

/* CS_DATA: the same line reading; process_lines() hands each line to
 * data_line() while in this state. */
static void on_data(struct conn *c) {
  on_command(c);
}

/* CS_STARTTLS_FLUSH: send the 220, then TLS (or the mode's fault). */
static void on_starttls_flush(struct conn *c) {
  enum io_result w = conn_flush(c);
  if (w == IO_AGAIN)
    return;
  if (w != IO_OK) {
    set_state(c, CS_DONE);
    return;
  }
  switch (c->lst->mode) {
  case M_STARTTLS_STALL:
    set_state(c, CS_SILENT);
    break;
  case M_STARTTLS_GARBAGE:
    set_state(c, CS_GARBAGE_ON_INPUT);
    break;
  default:
    begin_tls(c, false);
    break;
  }
}

/* CS_TLS_HANDSHAKE: STARTTLS handshake, then commands inside TLS. */
static void on_tls_handshake(struct conn *c) {
  errno = 0;
  int r = SSL_accept(c->ssl);
  if (r == 1) {
    c->tls = true;
    c->ssl_want = 0;
    c->have_mail = false;
    logf_("conn %u: STARTTLS TLS up, %s", c->id, SSL_get_version(c->ssl));
    set_state(c, CS_COMMAND);
    return;
  }
  if (ssl_result(c, r, "SSL_accept") != IO_AGAIN)
    set_state(c, CS_DONE);
}

/* CS_SILENT: send anything queued (garbage), discard all input. */
static void on_silent(struct conn *c) {
  enum io_result w = conn_flush(c);
  enum io_result r = discard_input(c);
  if (w == IO_ERROR || r == IO_EOF || r == IO_ERROR)
    set_state(c, CS_DONE);
}

/* CS_GARBAGE_ON_INPUT: the first bytes after STARTTLS get garbage back. */
static void on_garbage_on_input(struct conn *c) {
  char buf[4096];
  size_t got;
  enum io_result r = conn_read(c, buf, sizeof buf, &got);
  if (r == IO_AGAIN)
    return;
  if (r != IO_OK) {
    set_state(c, CS_DONE);
    return;
  }
  logf_("conn %u: answering %zu bytes (ClientHello?) with garbage", c->id, got);
  out_append(c, "this is not TLS\r\n", 17);
  queue_garbage(c);
  set_state(c, CS_SILENT);
}

/* Generate the next chunk of a stream into the output queue. */
static void stream_fill(struct conn *c) {
  char chunk[STREAM_CHUNK];
  size_t n = 0;
  unsigned long long left = c->stream_limit - c->stream_sent;
  size_t want = left < sizeof chunk ? (size_t)left : sizeof chunk;
  if (c->stream == STREAM_ENDLESS_LINE) {
    if (c->stream_sent == 0 && want >= 4) {
      memcpy(chunk, "220 ", 4);
      n = 4;
    }
    memset(chunk + n, 'x', want - n);
    n = want;
  } else {
    /* Whole lines only; a tail shorter than one line ends the stream. */
    while (n + 100 < want) {
      int k;
      if (c->stream == STREAM_ENDLESS_MULTILINE)
        k = snprintf(chunk + n, sizeof chunk - n,
                     "220-%s greeting line %llu\r\n", SERVER_NAME,
                     c->stream_sent + n);
      else
        k = snprintf(chunk + n, sizeof chunk - n,
                     "250-X-FILLER-%llu padding-padding-padding\r\n",
                     c->stream_sent + n);
      if (k <= 0)
        break;
      n += (size_t)k;
    }
    if (n == 0)
      c->stream_limit = c->stream_sent;
  }
  c->stream_sent += n;
  out_append(c, chunk, n);
}

/* CS_STREAM: keep the socket busy with generated bytes up to the cap. */
static void on_stream(struct conn *c) {
  for (int i = 0; i < HANDLER_ROUNDS; i++) {
    enum io_result w = conn_flush(c);
    if (w == IO_AGAIN)
      return;
    if (w != IO_OK) {
      set_state(c, CS_DONE);
      return;
    }
    if (c->stream_sent >= c->stream_limit) {
      logf_("conn %u: stream of %llu bytes done", c->id, c->stream_sent);
      c->stream = STREAM_NONE;
      if (c->lst->mode == M_HUGE_REPLY) {
        reply(c, "250 ENHANCEDSTATUSCODES");
        set_state(c, CS_COMMAND);
      } else {
        set_state(c, CS_CLOSING);
      }
      return;
    }
    stream_fill(c);
  }
}

/* CS_CLOSING: send what is queued, then half-close and linger. */
static void on_closing(struct conn *c) {
  enum io_result w = conn_flush(c);
  if (w == IO_AGAIN)
    return;
  if (w == IO_OK && c->ssl && c->tls)
    SSL_shutdown(c->ssl);
  if (w != IO_OK || shutdown(c->fd, SHUT_WR) < 0) {
    set_state(c, CS_DONE);
    return;
  }
  set_state(c, CS_LINGER);
}

/* CS_LINGER: discard input until the peer closes (or the deadline). */
static void on_linger(struct conn *c) {
  char buf[4096];
  for (int i = 0; i < READ_ROUNDS; i++) {
    ssize_t r = recv(c->fd, buf, sizeof buf, 0);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
      return;
    if (r <= 0) {
      set_state(c, CS_DONE);
      return;
    }
  }
}

/* CS_DONE: nothing; the connection is closed after the handler loop. */
static void on_done(struct conn *c) {
  (void)c;
}

/* One handler per state, indexed by enum conn_state. */
static void (*const handlers[CS_COUNT])(struct conn *) = {
    [CS_TLS_ACCEPT] = on_tls_accept,
    [CS_GREET_WAIT] = on_greet_wait,
    [CS_HELLO_PEEK] = on_hello_peek,
    [CS_PROXY_PEEK] = on_proxy_peek,
    [CS_COMMAND] = on_command,
    [CS_AUTH_RESPONSE] = on_auth_response,
    [CS_DATA] = on_data,
    [CS_STARTTLS_FLUSH] = on_starttls_flush,
    [CS_TLS_HANDSHAKE] = on_tls_handshake,
    [CS_SILENT] = on_silent,
    [CS_GARBAGE_ON_INPUT] = on_garbage_on_input,
    [CS_STREAM] = on_stream,
    [CS_CLOSING] = on_closing,
    [CS_LINGER] = on_linger,
    [CS_DONE] = on_done};

/* ---- Connection lifecycle --------------------------------------------- */

/* The epoll interest the connection's state needs now. */
static uint32_t wanted_events(const struct conn *c) {
  uint32_t ev = 0;
  bool held = c->hold_until != 0;
  if (out_pending(c) > 0 && !held)
    ev |= EPOLLOUT;
  if (c->ssl_want == SSL_ERROR_WANT_WRITE)
    ev |= EPOLLOUT;
  switch (c->state) {
  case CS_TLS_ACCEPT:
  case CS_TLS_HANDSHAKE:
    ev |= c->ssl_want == SSL_ERROR_WANT_WRITE ? EPOLLOUT : EPOLLIN;
    break;
  case CS_COMMAND:
  case CS_AUTH_RESPONSE:
  case CS_DATA:
    if (out_pending(c) <= OUT_HIGH)
      ev |= EPOLLIN;
    break;
  case CS_SILENT:
  case CS_GARBAGE_ON_INPUT:
  case CS_LINGER:
  case CS_GREET_WAIT:
    ev |= EPOLLIN;
    break;
  case CS_HELLO_PEEK:
  case CS_PROXY_PEEK:
    if (!c->wake_at) /* while re-peeking by timer, input is no event */
      ev |= EPOLLIN;
    break;
  case CS_STREAM:
    ev |= EPOLLOUT;
    break;
  default:
    break;
  }
  return ev;
}

/* Close and queue the connection for freeing at the end of this turn. */
static void conn_close(struct conn *c) {
  if (c->fd < 0)
    return;
  logf_("conn %u: closed (read %zu bytes)", c->id, c->read_total);
  epoll_ctl(g.epfd, EPOLL_CTL_DEL, c->fd, NULL);
  if (c->ssl)
    SSL_free(c->ssl);
  c->ssl = NULL;
  close(c->fd);
  c->fd = -1;
  if (c->prev)
    c->prev->next = c->next;
  else
    g.conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  c->dead_next = g.dead;
  g.dead = c;
  g.nconns--;
}

/* Run the state handlers until the state settles, then update epoll. */
static void conn_run(struct conn *c) {
  for (int i = 0; i < HANDLER_ROUNDS && c->state != CS_DONE; i++) {
    enum conn_state before = c->state;
    handlers[c->state](c);
    if (c->state == before)
      break;
  }
  if (c->state == CS_DONE) {
    conn_close(c);
    return;
  }
  uint32_t ev = wanted_events(c);
  if (ev != c->events) {
    struct epoll_event e = {.events = ev, .data.ptr = c};
    epoll_ctl(g.epfd, EPOLL_CTL_MOD, c->fd, &e);
    c->events = ev;
  }
}

/* Out of descriptors: accept one pending connection with the reserve
 * descriptor and close it at once, so the listener does not spin. */
static void shed_one(struct listener *l) {
  logf_("accept on %s: out of file descriptors, shedding one", l->addr);
  if (g.reserve_fd >= 0)
    close(g.reserve_fd);
  int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
  if (fd >= 0)
    close(fd);
  g.reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Accept every pending connection on a listener. */
static void accept_all(struct listener *l) {
  for (int i = 0; i < 64; i++) {
    int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
      shed_one(l);
      return;
    }
    if (fd < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        logf_("accept on %s: %s", l->addr, strerror(errno));
      return;
    }
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
      close(fd);
      return;
    }
    c->kind = ITEM_CONN;
    c->fd = fd;
    c->id = ++g.next_id;
    c->lst = l;
    c->state = CS_COMMAND;
    c->next = g.conns;
    if (g.conns)
      g.conns->prev = c;
    g.conns = c;
    g.nconns++;
    struct epoll_event e = {.events = 0, .data.ptr = c};
    if (epoll_ctl(g.epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
      logf_("epoll_ctl: %s", strerror(errno));
      conn_close(c);
      continue;
    }
    logf_("conn %u: accepted on %s (%s), %d open", c->id, l->addr,
          mode_names[l->mode], g.nconns);
    if (l->proxy) {
      c->hello_until = now_ms() + PROXY_WAIT_MS;
      set_state(c, CS_PROXY_PEEK);
    } else {
      conn_begin(c);
    }
    conn_run(c);
  }
}

/* Milliseconds until the nearest connection deadline, or -1. */
static int next_timeout(void) {
  if (!g.timers)
    return -1;
  long long now = now_ms(), best = -1;
  for (struct conn *c = g.conns; c; c = c->next) {
    long long t = c->hold_until ? c->hold_until : 0;
    if (c->linger_until && (!t || c->linger_until < t))
      t = c->linger_until;
    if (c->wake_at && (!t || c->wake_at < t))
      t = c->wake_at;
    if (t && (best < 0 || t < best))
      best = t;
  }
  if (best < 0) {
    g.timers = false;
    return -1;
  }
  return best <= now ? 0 : (int)(best - now > 60000 ? 60000 : best - now);
}

/* Run the connections whose deadlines have passed. */
static void fire_timers(void) {
  if (!g.timers)
    return;
  long long now = now_ms();
  for (struct conn *c = g.conns, *next; c; c = next) {
    next = c->next;
    if (c->linger_until && c->linger_until <= now) {
      set_state(c, CS_DONE);
      conn_close(c);
    } else if (c->hold_until && c->hold_until <= now) {
      c->hold_until = 0;
      conn_run(c);
    } else if (c->wake_at && c->wake_at <= now) {
      conn_run(c);
    }
  }
}

/* Free the connections closed during this turn. */
static void free_dead(void) {
  while (g.dead) {
    struct conn *c = g.dead;
    g.dead = c->dead_next;
    free(c->out);
    OPENSSL_cleanse(c->in, sizeof c->in);
    free(c);
  }
}

/* ---- Setup ------------------------------------------------------------ */

/* Print usage and exit with status 2. */
static void usage(void) {
  fprintf(stderr,
          "usage: smtp_fault_server --listen ADDR:PORT=MODE[,cert=PREFIX]"
          "[,delay=MS]\n"
          "         [,greet_delay=MS][,software=postfix|exim|haraka]"
          "[,implicit][,mechs=M1+M2]\n"
          "         [--listen ...] [--cert-prefix PREFIX]"
          " [--auth-password-file FILE]\n"
          "         [--ready-file FILE] [--log FILE]\n"
          "modes:");
  for (int i = 0; i < M_COUNT; i++)
    fprintf(stderr, " %s", mode_names[i]);
  fprintf(stderr, "\n");
  exit(2);
}

/* Print an error and exit with status 1. */
static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("smtp_fault_server: ", stderr);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(1);
}

/* Parse a non-negative decimal number; -1 when it is not one. */
static long parse_number(const char *s, long max) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < 0 || v > max)
    return -1;
  return v;
}

/* Parse ADDR:PORT ([v6]:PORT allowed) into a socket address. */
static bool parse_addr(const char *text, struct sockaddr_storage *ss,
                       socklen_t *len) {
  char host[64];
  const char *port;
  if (text[0] == '[') {
    const char *close = strchr(text, ']');
    if (!close || close[1] != ':' || (size_t)(close - text - 1) >= sizeof host)
      return false;
    memcpy(host, text + 1, (size_t)(close - text - 1));
    host[close - text - 1] = '\0';
    port = close + 2;
  } else {
    const char *colon = strrchr(text, ':');
    if (!colon || (size_t)(colon - text) >= sizeof host)
      return false;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    port = colon + 1;
  }
  long p = parse_number(port, 65535);
  if (p <= 0)
    return false;
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)p);
    *len = sizeof *a4;
    return true;
  }
  if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)p);
    *len = sizeof *a6;
    return true;
  }
  return false;
}

/* Parse a mechs= value (M1+M2..., letters, digits and '-') into l->mechs
 * as a space-separated list; false when it is empty or not such a list. */
static bool parse_mechs(struct listener *l, const char *v) {
  if (!v[0] || !copy_str(l->mechs, sizeof l->mechs, v))
    return false;
  for (char *p = l->mechs; *p; p++) {
    if (*p == '+')
      *p = ' ';
    else if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
               *p == '-'))
      return false;
  }
  return true;
}

/* Parse one --listen ADDR:PORT=MODE[,OPTION...] (see usage()). */
static void parse_listen(const char *spec) {
  if (g.nlisteners == MAX_LISTENERS)
    die("too many --listen (max %d)", MAX_LISTENERS);
  struct listener *l = &g.listeners[g.nlisteners];
  char buf[PATH_MAX + 128];
  if (!copy_str(buf, sizeof buf, spec))
    die("--listen too long");
  char *eq = strchr(buf, '=');
  if (!eq)
    die("--listen %s: want ADDR:PORT=MODE", spec);
  *eq = '\0';
  if (!copy_str(l->addr, sizeof l->addr, buf))
    die("--listen %s: address too long", spec);
  char *opts = strchr(eq + 1, ',');
  if (opts)
    *opts++ = '\0';
  int m = -1;
  for (int i = 0; i < M_COUNT; i++)
    if (strcmp(eq + 1, mode_names[i]) == 0)
      m = i;
  if (m < 0)
    die("--listen %s: unknown mode '%s'", spec, eq + 1);
  l->mode = (enum mode)m;
  while (opts && *opts) {
    char *next = strchr(opts, ',');
    if (next)
      *next++ = '\0';
    if (strncmp(opts, "cert=", 5) == 0) {
      if (!copy_str(l->cert_prefix, sizeof l->cert_prefix, opts + 5))
        die("--listen %s: cert prefix too long", spec);
    } else if (strncmp(opts, "delay=", 6) == 0) {
      l->delay_ms = parse_number(opts + 6, 600000);
      if (l->delay_ms < 0)
        die("--listen %s: bad delay", spec);
    } else if (strncmp(opts, "greet_delay=", 12) == 0) {
      l->greet_delay_ms = parse_number(opts + 12, 600000);
      if (l->greet_delay_ms < 0)
        die("--listen %s: bad greet_delay", spec);
    } else if (strncmp(opts, "software=", 9) == 0) {
      int sw = -1;
      for (int i = 1; i < SW_COUNT; i++)
        if (strcmp(opts + 9, software_names[i]) == 0)
          sw = i;
      if (sw < 0)
        die("--listen %s: software must be postfix, exim or haraka", spec);
      l->software = (enum software)sw;
    } else if (strcmp(opts, "proxy") == 0) {
      l->proxy = true;
    } else if (strcmp(opts, "implicit") == 0) {
      if (!mode_has_tls(l->mode))
        die("--listen %s: mode %s has no TLS to make implicit", spec,
            mode_names[l->mode]);
      l->implicit = true;
    } else if (strncmp(opts, "mechs=", 6) == 0) {
      if (!parse_mechs(l, opts + 6))
        die("--listen %s: mechs wants NAME[+NAME...]", spec);
    } else {
      die("--listen %s: unknown option '%s'", spec, opts);
    }
    opts = next;
  }
  if (l->mode == M_IMPLICIT)
    l->implicit = true;
  l->kind = ITEM_LISTENER;
  l->fd = -1;
  g.nlisteners++;
}

/* Read the AUTH password: the first line of the file, at most 255 bytes. */
static void read_password(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f)
    die("%s: %s", path, strerror(errno));
  if (!fgets(g.password, sizeof g.password, f))
    die("%s: empty", path);
  fclose(f);
  g.password[strcspn(g.password, "\r\n")] = '\0';
  g.have_password = true;
}

/* Resolve a listener's certificate prefix into chain and key paths. */
static void cert_paths(const struct listener *l, char *chain, char *key,
                       size_t len) {
  char prefix[PATH_MAX];
  const char *p = l->cert_prefix[0] ? l->cert_prefix : g.default_cert;
  if (!p[0])
    die("--listen %s: mode %s needs a certificate (--cert-prefix or cert=)",
        l->addr, mode_names[l->mode]);
  if (!strchr(p, '/') && strchr(g.default_cert, '/')) {
    int dirlen = (int)(strrchr(g.default_cert, '/') - g.default_cert);
    snprintf(prefix, sizeof prefix, "%.*s/%s", dirlen, g.default_cert, p);
  } else {
    copy_str(prefix, sizeof prefix, p);
  }
  struct stat st;
  snprintf(chain, len, "%s-chain.pem", prefix);
  if (stat(chain, &st) != 0)
    snprintf(chain, len, "%s.pem", prefix);
  snprintf(key, len, "%s.key", prefix);
}

/* tls-alert: refuse every ClientHello with a fatal internal_error alert,
 * as a server whose key or certificate setup is broken does. */
static int hello_alert_cb(SSL *ssl, int *al, void *arg) {
  (void)ssl;
  (void)arg;
  *al = SSL_AD_INTERNAL_ERROR;
  return SSL_CLIENT_HELLO_ERROR;
}

/* Make the listener's TLS context when its mode needs one. */
static void make_ctx(struct listener *l) {
  if (!mode_has_tls(l->mode))
    return;
  char chain[PATH_MAX + 16], key[PATH_MAX + 16];
  cert_paths(l, chain, key, sizeof chain);
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx)
    die("SSL_CTX_new failed");
  switch (l->mode) {
  case M_TLS10:
  case M_TLS11_CLOSE:
    SSL_CTX_set_security_level(ctx, 0);
    SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_1_VERSION);
    SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
    break;
  case M_SHA1_SIGALG:
    /* TLS 1.2 with ECDHE-RSA only (every suite signs the key exchange),
     * and RSA+SHA1 the only signature: a client at security level 1+
     * offers no SHA-1 signature, so there is nothing to agree on. */
    SSL_CTX_set_security_level(ctx, 0);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_set_cipher_list(ctx, "ECDHE+aRSA:@SECLEVEL=0") != 1 ||
        SSL_CTX_set1_sigalgs_list(ctx, "RSA+SHA1") != 1) {
      ERR_print_errors_fp(stderr);
      die("--listen %s: cannot limit the signatures to RSA+SHA1", l->addr);
    }
    break;
  case M_TLS_ALERT:
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_client_hello_cb(ctx, hello_alert_cb, NULL);
    break;
  default:
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    break;
  }
  if (SSL_CTX_use_certificate_chain_file(ctx, chain) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    ERR_print_errors_fp(stderr);
    die("--listen %s: cannot load %s / %s", l->addr, chain, key);
  }
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_options(ctx,
                      SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_num_tickets(ctx, 0);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  l->ctx = ctx;
  logf_("listener %s: certificate %s", l->addr, chain);
}

/* Bind and listen on one listener and register it with epoll. */
static void open_listener(struct listener *l) {
  struct sockaddr_storage ss;
  socklen_t len;
  if (!parse_addr(l->addr, &ss, &len))
    die("--listen %s: bad address (want 1.2.3.4:PORT or [::1]:PORT)", l->addr);
  l->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (l->fd < 0)
    die("socket: %s", strerror(errno));
  int one = 1;
  setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ss.ss_family == AF_INET6)
    setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (bind(l->fd, (struct sockaddr *)&ss, len) < 0)
    die("bind %s: %s", l->addr, strerror(errno));
  if (listen(l->fd, 4096) < 0)
    die("listen %s: %s", l->addr, strerror(errno));
  struct epoll_event e = {.events = EPOLLIN, .data.ptr = l};
  if (epoll_ctl(g.epfd, EPOLL_CTL_ADD, l->fd, &e) < 0)
    die("epoll_ctl: %s", strerror(errno));
  logf_("listening on %s mode %s delay %ld ms greet_delay %ld ms%s%s%s",
        l->addr, mode_names[l->mode], l->delay_ms, l->greet_delay_ms,
        l->implicit ? " implicit" : "", l->software ? " software " : "",
        software_names[l->software]);
}

/* Write the ready file atomically (temporary name, then rename). */
static void write_ready_file(void) {
  if (!g.ready_file[0])
    return;
  char tmp[PATH_MAX + 16];
  snprintf(tmp, sizeof tmp, "%s.tmp", g.ready_file);
  FILE *f = fopen(tmp, "w");
  if (!f)
    die("%s: %s", tmp, strerror(errno));
  fprintf(f, "pid=%ld\nlisteners=%d\n", (long)getpid(), g.nlisteners);
  if (fclose(f) != 0 || rename(tmp, g.ready_file) != 0)
    die("%s: %s", g.ready_file, strerror(errno));
}

/* Raise the open-files limit to its hard maximum (for 1,000+ clients). */
static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

/* Block SIGTERM/SIGINT and receive them through a signalfd in epoll. */
static void setup_signals(void) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigprocmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);
  g.sig.kind = ITEM_SIGNAL;
  g.sig.fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (g.sig.fd < 0)
    die("signalfd: %s", strerror(errno));
  struct epoll_event e = {.events = EPOLLIN, .data.ptr = &g.sig};
  if (epoll_ctl(g.epfd, EPOLL_CTL_ADD, g.sig.fd, &e) < 0)
    die("epoll_ctl: %s", strerror(errno));
}

/* Parse the command line into g. */
static void parse_args(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
      usage();
    if (!v)
      usage();
    i++;
    if (strcmp(a, "--listen") == 0)
      parse_listen(v);
    else if (strcmp(a, "--cert-prefix") == 0) {
      if (!copy_str(g.default_cert, sizeof g.default_cert, v))
        die("--cert-prefix too long");
    } else if (strcmp(a, "--ready-file") == 0) {
      if (!copy_str(g.ready_file, sizeof g.ready_file, v))
        die("--ready-file too long");
    } else if (strcmp(a, "--log") == 0) {
      g.log = fopen(v, "a");
      if (!g.log)
        die("%s: %s", v, strerror(errno));
    } else if (strcmp(a, "--auth-password-file") == 0)
      read_password(v);
    else
      usage();
  }
  if (g.nlisteners == 0)
    usage();
}

/* Dispatch one epoll event. */
static void handle_event(struct epoll_event *e) {
  enum item_kind kind = *(enum item_kind *)e->data.ptr;
  if (kind == ITEM_SIGNAL) {
    struct signalfd_siginfo si;
    if (read(g.sig.fd, &si, sizeof si) == (ssize_t)sizeof si) {
      logf_("signal %u: stopping", si.ssi_signo);
      g.running = false;
    }
    return;
  }
  if (kind == ITEM_LISTENER) {
    accept_all(e->data.ptr);
    return;
  }
  struct conn *c = e->data.ptr;
  if (c->fd < 0)
    return;
  if (e->events & (EPOLLERR | EPOLLHUP)) {
    logf_("conn %u: hangup/error in %s", c->id, state_names[c->state]);
    set_state(c, CS_DONE);
    conn_close(c);
    return;
  }
  conn_run(c);
}

/* Start the listeners, write the ready file, run until a signal. */
int main(int argc, char **argv) {
  g.epfd = epoll_create1(EPOLL_CLOEXEC);
  if (g.epfd < 0)
    die("epoll_create1: %s", strerror(errno));
  parse_args(argc, argv);
  raise_fd_limit();
  g.reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  setup_signals();
  for (int i = 0; i < g.nlisteners; i++) {
    make_ctx(&g.listeners[i]);
    open_listener(&g.listeners[i]);
  }
  write_ready_file();
  g.running = true;
  struct epoll_event events[256];
  while (g.running) {
    int n = epoll_wait(g.epfd, events, 256, next_timeout());
    if (n < 0 && errno != EINTR)
      die("epoll_wait: %s", strerror(errno));
    for (int i = 0; i < n; i++)
      handle_event(&events[i]);
    fire_timers();
    free_dead();
  }
  while (g.conns)
    conn_close(g.conns);
  free_dead();
  for (int i = 0; i < g.nlisteners; i++) {
    close(g.listeners[i].fd);
    SSL_CTX_free(g.listeners[i].ctx);
  }
  OPENSSL_cleanse(g.password, sizeof g.password);
  logf_("stopped");
  if (g.log)
    fclose(g.log);
  return 0;
}
