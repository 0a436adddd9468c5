/*
 * fuzz_probe.c - fuzz a whole probe: the input is the server's side of
 * one SMTP session.
 *
 * A thread listens on 127.0.0.1:0; every connection the probe opens (at
 * most FP_MAX_CONNS, e.g. the STARTTLS injection test's own one) gets
 * the input's script, and the probe runs once with the public engine
 * (sp_probe_wait, timeout FP_TIMEOUT_S).
 *
 * Input: byte 0 = options (bits 0-1 TLS mode: none, starttls, auto,
 * implicit; bit 2 chunked; bit 3 trace; bit 4 MAIL/RCPT trial; bit 5
 * AUTH credentials; bit 6 injection test; bit 7 relay role). The rest is
 * what the server sends: all at once (then its half of the connection is
 * shut), or, chunked, a sequence of [2-byte big-endian length][bytes]
 * records where each record after the first is sent once the probe has
 * said something (or FP_TURN_MS passed; after the first such silence the
 * rest is sent without waiting) - one record per server turn. A record
 * length of 0xffff (no bytes follow) is the TLS marker: the server does a
 * TLS handshake there (a self-signed P-256 certificate; the probe runs
 * with no_verify) and plays the rest of the records inside TLS - first
 * for implicit TLS, after the 220 to STARTTLS otherwise - so the dialogue
 * after TLS (EHLO, AUTH, MAIL/RCPT, DATA, the injection test) is fuzzed
 * too.
 *
 * Checks: exactly one result with a valid code and state; its detail,
 * reply texts, capabilities, TLS fields, transcript and describe/hint
 * output are NUL-terminated and sanitised (printable ASCII, '\n' where
 * lines are expected); the probe ends by its deadline. Leaks and memory
 * errors are ASan's part.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fuzz_check.h"
#include "smtp_probe.h"

#define FP_TIMEOUT_S 2.0   /* the probe's deadline */
#define FP_MAX_CONNS 4     /* connections served per input */
#define FP_TURN_MS 30      /* longest wait for the probe's next command */
#define FP_DRAIN_MS 3000   /* longest wait for the probe to close */
#define FP_READ_CAP 65536  /* bytes read from the probe per connection */
#define FP_TLS_MARK 0xffff /* record length meaning "TLS handshake now" */

/* The server side of one input. */
struct script {
  const uint8_t *data; /* what to send (after the options byte) */
  size_t size;         /* its length */
  bool chunked;        /* data is length-prefixed records */
  int lfd;             /* listening socket */
  int stopfd[2];       /* pipe: written when the probe has ended */
};

/* One accepted connection being served. */
struct conn {
  const struct script *sc; /* what to send */
  int fd;                  /* the connection */
  SSL *ssl;                /* TLS once a TLS marker record was played */
  size_t got;              /* bytes read from the probe */
  pthread_t tid;           /* its thread */
};

/* Monotonic milliseconds. */
static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The server's TLS context: a throw-away P-256 key and self-signed
 * certificate, made once (the probe runs with no_verify). */
static SSL_CTX *server_ctx(void) {
  static SSL_CTX *ctx;
  static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
  pthread_mutex_lock(&lock);
  if (!ctx) {
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    FUZZ_ASSERT(key && cert, "test key and certificate");
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400L * 365);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *)"fuzz.smtp-probe.test",
                               -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509_set_pubkey(cert, key);
    FUZZ_ASSERT(X509_sign(cert, key, EVP_sha256()) > 0, "self-sign");
    ctx = SSL_CTX_new(TLS_server_method());
    FUZZ_ASSERT(ctx && SSL_CTX_use_certificate(ctx, cert) == 1 &&
                    SSL_CTX_use_PrivateKey(ctx, key) == 1,
                "server TLS context");
    X509_free(cert);
    EVP_PKEY_free(key);
  }
  pthread_mutex_unlock(&lock);
  return ctx;
}

/* Wait up to ms for the connection to be readable or the stop pipe;
 * 1 readable, 0 timeout, -1 stop or error. */
static int wait_readable(struct conn *c, int ms) {
  if (c->ssl && SSL_pending(c->ssl) > 0)
    return 1;
  struct pollfd pf[2] = {{c->fd, POLLIN, 0}, {c->sc->stopfd[0], POLLIN, 0}};
  int r = poll(pf, 2, ms);
  if (r < 0 && errno != EINTR)
    return -1;
  if (r > 0 && pf[1].revents)
    return -1;
  return r > 0 && pf[0].revents ? 1 : 0;
}

/* Write all of buf unless the peer goes away or FP_DRAIN_MS pass. */
static int write_all(struct conn *c, const uint8_t *buf, size_t n) {
  long long end = now_ms() + FP_DRAIN_MS;
  while (n > 0) {
    ssize_t w;
    int want = POLLOUT;
    if (c->ssl) {
      int chunk = n > 16384 ? 16384 : (int)n;
      int r = SSL_write(c->ssl, buf, chunk);
      int e = r > 0 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, r);
      if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ &&
          e != SSL_ERROR_WANT_WRITE)
        return -1;
      w = r > 0 ? r : 0;
      if (e == SSL_ERROR_WANT_READ)
        want = POLLIN;
    } else {
      w = send(c->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        return -1;
    }
    if (w > 0) {
      buf += w;
      n -= (size_t)w;
      continue;
    }
    struct pollfd pf[2] = {{c->fd, (short)want, 0},
                           {c->sc->stopfd[0], POLLIN, 0}};
    long long left = end - now_ms();
    if (left <= 0 || poll(pf, 2, (int)left) <= 0 || pf[1].revents)
      return -1;
  }
  return 0;
}

/* Read and drop what the probe sent; -1 at EOF, error or the read cap. */
static int drain_some(struct conn *c) {
  char buf[4096];
  ssize_t r;
  if (c->ssl) {
    int n = SSL_read(c->ssl, buf, sizeof(buf));
    int e = n > 0 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
      return 0;
    r = n > 0 ? n : -1;
  } else {
    r = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
      return 0;
    if (r == 0)
      r = -1;
  }
  if (r < 0)
    return -1;
  c->got += (size_t)r;
  return c->got > FP_READ_CAP ? -1 : 0;
}

/* True when the probe's next bytes (within ms) start a TLS handshake
 * record. */
static bool client_hello_next(struct conn *c, int ms) {
  unsigned char b = 0;
  if (wait_readable(c, ms) != 1)
    return false;
  return recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 1 && b == 0x16;
}

/* Do the server side of a TLS handshake (the TLS marker record); 0 or
 * -1. Bounded by FP_DRAIN_MS and the stop pipe. */
static int tls_accept(struct conn *c) {
  long long end = now_ms() + FP_DRAIN_MS;
  c->ssl = SSL_new(server_ctx());
  if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1)
    return -1;
  for (;;) {
    int r = SSL_accept(c->ssl);
    if (r == 1)
      return 0;
    int e = SSL_get_error(c->ssl, r);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
      return -1;
    short ev = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
    struct pollfd pf[2] = {{c->fd, ev, 0}, {c->sc->stopfd[0], POLLIN, 0}};
    long long left = end - now_ms();
    if (left <= 0 || poll(pf, 2, (int)left) <= 0 || pf[1].revents)
      return -1;
  }
}

/* Play the script on one connection, then wait for the probe to close. */
static void *serve_conn(void *arg) {
  struct conn *c = arg;
  const struct script *sc = c->sc;
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
  if (!sc->chunked) {
    if (write_all(c, sc->data, sc->size) != 0)
      goto out;
  } else {
    size_t off = 0;
    bool first = true;
    int patience = FP_TURN_MS; /* once the probe stays silent: no waits */
    while (off + 2 <= sc->size) {
      size_t len = ((size_t)sc->data[off] << 8) | sc->data[off + 1];
      off += 2;
      if (len == FP_TLS_MARK) {
        /* Start TLS here (implicit TLS first, or after a 220 to
         * STARTTLS); the records after it go through TLS. A marker where
         * the probe sends no ClientHello is skipped, not waited out. */
        if (c->ssl || !client_hello_next(c, patience)) {
          patience = 0;
          continue;
        }
        if (tls_accept(c) != 0)
          goto out;
        /* Implicit TLS (marker first): the server greets at once; after
         * STARTTLS it waits for the probe's EHLO. */
        first = off == 2;
        continue;
      }
      if (len > sc->size - off)
        len = sc->size - off;
      if (!first) {
        /* A server turn: wait for the probe's next command. */
        int r = wait_readable(c, patience);
        if (r < 0 || (r > 0 && drain_some(c) < 0))
          goto out;
        if (r == 0)
          patience = 0;
      }
      first = false;
      if (write_all(c, sc->data + off, len) != 0)
        goto out;
      off += len;
    }
  }
  if (c->ssl)
    SSL_shutdown(c->ssl); /* close_notify; not waiting for the answer */
  shutdown(c->fd, SHUT_WR);
  long long end = now_ms() + FP_DRAIN_MS;
  while (now_ms() < end) {
    int r = wait_readable(c, (int)(end - now_ms()));
    if (r <= 0 || drain_some(c) < 0)
      break;
  }
out:
  SSL_free(c->ssl);
  c->ssl = NULL;
  close(c->fd);
  return NULL;
}

/* Accept up to FP_MAX_CONNS connections until the probe has ended. */
static void *serve(void *arg) {
  struct script *sc = arg;
  struct conn conns[FP_MAX_CONNS];
  int n = 0;
  while (n < FP_MAX_CONNS) {
    struct pollfd pf[2] = {{sc->lfd, POLLIN, 0}, {sc->stopfd[0], POLLIN, 0}};
    int r = poll(pf, 2, (int)(FP_TIMEOUT_S * 1000) + FP_DRAIN_MS);
    if (r <= 0 || pf[1].revents)
      break;
    int fd = accept(sc->lfd, NULL, NULL);
    if (fd < 0)
      continue;
    conns[n].sc = sc;
    conns[n].fd = fd;
    conns[n].ssl = NULL;
    conns[n].got = 0;
    if (pthread_create(&conns[n].tid, NULL, serve_conn, &conns[n]) != 0) {
      close(fd);
      break;
    }
    n++;
  }
  for (int i = 0; i < n; i++)
    pthread_join(conns[i].tid, NULL);
  return NULL;
}

/* Check every text of one result. */
static void check_result(const struct sp_result *res, double t_s) {
  FUZZ_ASSERT((int)res->code >= 0 && res->code < SP_CODE_COUNT,
              "a valid diagnosis code");
  FUZZ_ASSERT(sp_code_name(res->code) != NULL, "the code has a name");
  FUZZ_ASSERT((int)res->state >= SP_STATE_OK && res->state <= SP_STATE_UNKNOWN,
              "a valid state");
  fuzz_check_text(res->detail, sizeof(res->detail), 0, "detail");
  fuzz_check_text(res->address, sizeof(res->address), 0, "address");
  fuzz_check_text(res->tls_version, sizeof(res->tls_version), 0, "version");
  fuzz_check_text(res->tls_cipher, sizeof(res->tls_cipher), 0, "cipher");
  fuzz_check_text(res->verify_error, sizeof(res->verify_error), 0,
                  "verify error");
  fuzz_check_text(res->auth_mech, sizeof(res->auth_mech), 0, "auth mech");
  fuzz_check_text(res->message_id, sizeof(res->message_id), 0, "message id");
  const struct sp_caps *caps[2] = {&res->caps_plain, &res->caps_tls};
  for (int i = 0; i < 2; i++) {
    fuzz_check_text(caps[i]->ehlo_domain, sizeof(caps[i]->ehlo_domain), 0,
                    "ehlo domain");
    fuzz_check_text(caps[i]->auth_mechs, sizeof(caps[i]->auth_mechs), 0,
                    "auth mechanisms");
  }
  FUZZ_ASSERT(res->ncerts >= 0 && res->ncerts <= SP_MAX_CERTS, "ncerts");
  FUZZ_ASSERT(res->ncerts == 0 || res->certs != NULL, "certs held");
  for (int i = 0; i < SP_PHASE_COUNT; i++) {
    FUZZ_ASSERT(res->reply_code[i] == 0 ||
                    (res->reply_code[i] >= 200 && res->reply_code[i] <= 599),
                "reply codes are SMTP codes");
    FUZZ_ASSERT(res->phase_s[i] >= 0, "phase times not negative");
  }
  if (res->transcript) {
    FUZZ_ASSERT(res->transcript_len <= SP_MAX_TRANSCRIPT,
                "transcript within its cap");
    fuzz_check_text(res->transcript, res->transcript_len + 1, 1, "transcript");
  }
  /* The engine's own deadline, with room for a loaded machine. */
  FUZZ_ASSERT(t_s < FP_TIMEOUT_S + 5.0, "the probe ends by its deadline");
  static char text[16384];
  size_t n = sp_result_describe(res, 1, text, sizeof(text));
  FUZZ_ASSERT(n < sizeof(text), "describe fits");
  fuzz_check_text(text, sizeof(text), 1, "describe output");
  n = sp_result_hint(res, text, sizeof(text));
  FUZZ_ASSERT(n < sizeof(text), "hint fits");
  fuzz_check_text(text, sizeof(text), 0, "hint");
}

/* The engine, made once per process. */
static struct sp_engine *engine(void) {
  static struct sp_engine *eng;
  if (!eng) {
    char err[256];
    signal(SIGPIPE, SIG_IGN);
    eng = sp_engine_new(err, sizeof(err));
    if (!eng) {
      fprintf(stderr, "sp_engine_new: %s\n", err);
      abort();
    }
  }
  return eng;
}

/* libFuzzer entry point: one server script. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const enum sp_tls_mode modes[4] = {SP_TLS_NONE, SP_TLS_STARTTLS,
                                            SP_TLS_AUTO, SP_TLS_IMPLICIT};
  if (size < 1)
    return 0;
  uint8_t opt = data[0];
  struct script sc = {data + 1, size - 1, (opt & 4) != 0, -1, {-1, -1}};
  struct sockaddr_in sa;
  socklen_t salen = sizeof(sa);
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sc.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  FUZZ_ASSERT(sc.lfd >= 0, "socket");
  FUZZ_ASSERT(bind(sc.lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind");
  FUZZ_ASSERT(listen(sc.lfd, 8) == 0, "listen");
  FUZZ_ASSERT(getsockname(sc.lfd, (struct sockaddr *)&sa, &salen) == 0,
              "getsockname");
  FUZZ_ASSERT(pipe(sc.stopfd) == 0, "pipe");
  pthread_t tid;
  FUZZ_ASSERT(pthread_create(&tid, NULL, serve, &sc) == 0, "thread");

  struct sp_request req;
  sp_request_init(&req);
  req.host = "127.0.0.1";
  req.ehlo_name = "fuzz.smtp-probe.test";
  req.timeout_s = FP_TIMEOUT_S;
  req.banner_wait_s = 0.5;
  req.no_verify = true;
  req.trace = (opt & 8) != 0;
  if (opt & 16) {
    req.mail_from = "probe@smtp-probe.test";
    req.rcpt_to = "postmaster@smtp-probe.test";
  }
  if (opt & 32) {
    req.auth_user = "probe@smtp-probe.test";
    req.auth_secret = "fuzz-secret";
  }
  req.check_injection = (opt & 64) != 0;
  sp_request_add_port(&req, ntohs(sa.sin_port), modes[opt & 3],
                      (opt & 128) ? SP_ROLE_RELAY : SP_ROLE_DEFAULT);
  char err[256];
  if (sp_request_validate(&req, err, sizeof(err)) != 0) {
    /* AUTH and the injection test need TLS: drop them for mode none. */
    req.auth_user = NULL;
    req.auth_secret = NULL;
    req.check_injection = false;
  }
  FUZZ_ASSERT(sp_request_validate(&req, err, sizeof(err)) == 0,
              "the harness builds valid requests");
  long long t0 = now_ms();
  struct sp_batch *batch = sp_probe_wait(engine(), &req, err, sizeof(err));
  double t_s = (double)(now_ms() - t0) / 1000.0;
  FUZZ_ASSERT(write(sc.stopfd[1], "x", 1) == 1, "stop the server");
  pthread_join(tid, NULL);
  close(sc.lfd);
  close(sc.stopfd[0]);
  close(sc.stopfd[1]);
  if (!batch) {
    fprintf(stderr, "sp_probe_wait: %s\n", err);
    FUZZ_ASSERT(0, "the request is accepted");
  }
  FUZZ_ASSERT(batch->nresults == 1, "one result for one port");
  if (getenv("FUZZ_VERBOSE"))
    fprintf(stderr, "probe: %s (%s) after %.3fs\n",
            sp_code_name(batch->results[0].code), batch->results[0].detail,
            t_s);
  check_result(&batch->results[0], t_s);
  sp_batch_free(batch);
  return 0;
}
