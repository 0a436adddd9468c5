/*
 * probe_bench.c - in-process probe benchmarks: the "floor" (a minimal
 * blocking STARTTLS probe written for the benchmark) and the smtp-probe
 * engine driven through its public API, against the same server.
 *
 * usage: probe_bench floor  --host IP --port N --sni NAME --cafile FILE
 *                           [--count N] [--ehlo NAME]
 *        probe_bench hold   (same options; --count = connections held open)
 *        probe_bench engine (same options) [--inflight N]
 *                           [--idle N --idle-port P]
 *
 * Every mode prints one line of key=value pairs on stdout (see print_*).
 * The floor is the physical limit of one exchange on this machine:
 * connect, greeting, EHLO, STARTTLS, TLS handshake with chain and name
 * verification, EHLO, QUIT; TCP_NODELAY, and TCP_QUICKACK re-armed before
 * every read so no reply waits on a delayed ACK.
 *
 * engine --idle N keeps N more probes in flight for the whole run, waiting
 * on a server that never speaks (--idle-port, plain SMTP, 600 s timeout),
 * and runs the loop in the engine's own thread (also with --idle 0, the
 * reference): what the measured probes cost beside them shows whether the
 * loop's work grows with what is in flight or only with what is ready.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "smtp_probe.h"

#define REPLY_CAP 8192      /* bytes of one SMTP reply we accept */
#define MAX_COUNT 1000000   /* probes in one run at most */
#define MAX_HOLD 20000      /* connections held open at most */
#define MAX_INFLIGHT 10000  /* engine probes in flight at most */
#define RSS_SAMPLE_EVERY 16 /* engine: sample RSS every this many probes */
#define FLOOR_TIMEOUT_S 10  /* floor: seconds any one socket call may wait */

/* Command-line options shared by every mode. */
struct opts {
  const char *mode;   /* floor, hold or engine */
  const char *host;   /* server IP literal */
  long port;          /* server port */
  const char *sni;    /* SNI and verification name */
  const char *cafile; /* trust anchor */
  const char *ehlo;   /* EHLO argument */
  long count;         /* probes (floor, engine) or connections (hold) */
  long inflight;      /* engine: probes in flight at once */
  long idle;          /* engine: idle probes beside them, -1: none, no thread */
  long idle_port;     /* engine: the silent server's port for them */
};

/* One floor connection: socket and TLS session. */
struct fconn {
  int fd;   /* the socket, -1 when closed */
  SSL *ssl; /* TLS session after STARTTLS, or NULL */
};

/* Counters of a whole run. */
struct tally {
  long ok;               /* probes that ended well */
  long failed;           /* probes that did not */
  char first_error[256]; /* why the first failure failed */
};

/* State of an engine run shared with the completion callback. */
struct engine_run {
  struct sp_engine *eng;  /* the engine */
  struct sp_request *req; /* the request submitted over and over */
  long submitted;         /* requests submitted so far */
  long target;            /* requests to submit in all */
  long done;              /* requests completed */
  struct tally tally;     /* outcome counts */
  long rss_max_kb;        /* largest VmRSS sampled during the run */
  long inflight_at_max;   /* probes in flight at that sample */
  bool submit_failed;     /* a submit was refused */
  char submit_error[256]; /* its message */
  pthread_mutex_t lock;   /* threaded runs: guards done and submit_failed */
  pthread_cond_t ended;   /* threaded runs: signalled when the run ends */
};

/* ---- Small helpers ---------------------------------------------------- */

/* Monotonic time in seconds. */
static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* User and system CPU seconds of this process so far. */
static void cpu_s(double *user, double *sys) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  *user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
  *sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* A "VmXXX:" value of /proc/self/status in kB, or -1. */
static long proc_status_kb(const char *key) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f)
    return -1;
  char line[256];
  long kb = -1;
  size_t klen = strlen(key);
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
      char *end;
      errno = 0;
      long v = strtol(line + klen + 1, &end, 10);
      if (errno == 0 && end != line + klen + 1)
        kb = v;
      break;
    }
  }
  fclose(f);
  return kb;
}

/* Record the first failure's reason in a tally. */
static void tally_fail(struct tally *t, const char *why) {
  if (t->failed++ == 0)
    snprintf(t->first_error, sizeof t->first_error, "%s", why);
}

/* Replace every non-printable byte and space of s with '_' (for output). */
static void sanitize_token(char *s) {
  for (; *s; s++)
    if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
      *s = '_';
}

/* Parse a decimal number within [min, max]; exits on anything else. */
static long parse_long(const char *what, const char *s, long min, long max) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < min || v > max) {
    fprintf(stderr, "probe_bench: %s: want %ld..%ld, got '%s'\n", what, min,
            max, s);
    exit(2);
  }
  return v;
}

/* Raise the open-files limit to its hard maximum (1,000+ connections). */
static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

/* ---- The floor: one blocking probe ------------------------------------ */

/* Re-arm TCP_QUICKACK: the kernel clears it by itself. */
static void quickack(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
}

/* Read one whole SMTP reply (through TLS when c->ssl) into buf, at most
 * buflen - 1 bytes; its code, or -1. */
static int read_reply(struct fconn *c, char *buf, size_t buflen) {
  size_t len = 0;
  for (;;) {
    if (len + 1 >= buflen)
      return -1;
    quickack(c->fd);
    int n = c->ssl ? SSL_read(c->ssl, buf + len, (int)(buflen - 1 - len))
                   : (int)recv(c->fd, buf + len, buflen - 1 - len, 0);
    if (n <= 0)
      return -1;
    len += (size_t)n;
    buf[len] = '\0';
    /* The reply is complete when its last line is "DDD text\r\n". */
    if (len < 2 || buf[len - 1] != '\n')
      continue;
    char *last = buf + len - 1;
    while (last > buf && last[-1] != '\n')
      last--;
    if (last == buf + len - 1) /* empty line: keep reading */
      continue;
    if (strlen(last) >= 4 && last[3] == ' ') {
      char *end;
      long code = strtol(last, &end, 10);
      if (end == last + 3 && code >= 200 && code <= 599)
        return (int)code;
      return -1;
    }
    if (strlen(last) >= 4 && last[3] != '-')
      return -1;
  }
}

/* Send one command line (CRLF appended). */
static bool send_line(struct fconn *c, const char *cmd) {
  char line[512];
  int n = snprintf(line, sizeof line, "%s\r\n", cmd);
  if (n < 0 || (size_t)n >= sizeof line)
    return false;
  if (c->ssl)
    return SSL_write(c->ssl, line, n) == n;
  return send(c->fd, line, (size_t)n, MSG_NOSIGNAL) == n;
}

/* Connect with TCP_NODELAY; false with why on failure. */
static bool floor_connect(struct fconn *c, const struct sockaddr_in *sa,
                          char *why, size_t whylen) {
  c->ssl = NULL;
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c->fd < 0) {
    snprintf(why, whylen, "socket: %s", strerror(errno));
    return false;
  }
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  /* Bounded: no read, write or connect waits longer than this. */
  struct timeval tv = {FLOOR_TIMEOUT_S, 0};
  setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(c->fd, (const struct sockaddr *)sa, sizeof *sa) != 0) {
    snprintf(why, whylen, "connect: %s", strerror(errno));
    return false;
  }
  return true;
}

/* Everything up to and including EHLO inside TLS; false with why. */
static bool floor_open(struct fconn *c, SSL_CTX *ctx, const struct opts *o,
                       const struct sockaddr_in *sa, char *why, size_t whylen) {
  char buf[REPLY_CAP];
  char ehlo[300];
  snprintf(ehlo, sizeof ehlo, "EHLO %s", o->ehlo);
  if (!floor_connect(c, sa, why, whylen))
    return false;
  if (read_reply(c, buf, sizeof buf) != 220) {
    snprintf(why, whylen, "greeting");
    return false;
  }
  if (!send_line(c, ehlo) || read_reply(c, buf, sizeof buf) != 250) {
    snprintf(why, whylen, "EHLO");
    return false;
  }
  if (!strstr(buf, "STARTTLS")) {
    snprintf(why, whylen, "no STARTTLS in EHLO reply");
    return false;
  }
  if (!send_line(c, "STARTTLS") || read_reply(c, buf, sizeof buf) != 220) {
    snprintf(why, whylen, "STARTTLS");
    return false;
  }
  c->ssl = SSL_new(ctx);
  if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1 ||
      SSL_set_tlsext_host_name(c->ssl, o->sni) != 1 ||
      SSL_set1_host(c->ssl, o->sni) != 1) {
    snprintf(why, whylen, "SSL setup");
    return false;
  }
  quickack(c->fd);
  if (SSL_connect(c->ssl) != 1 || SSL_get_verify_result(c->ssl) != X509_V_OK) {
    unsigned long e = ERR_get_error();
    snprintf(why, whylen, "TLS handshake: %s",
             e ? ERR_reason_error_string(e) : "failed");
    ERR_clear_error();
    return false;
  }
  if (!send_line(c, ehlo) || read_reply(c, buf, sizeof buf) != 250) {
    snprintf(why, whylen, "EHLO inside TLS");
    return false;
  }
  return true;
}

/* QUIT, wait for its reply; false when it does not come. */
static bool floor_quit(struct fconn *c) {
  char buf[REPLY_CAP];
  return send_line(c, "QUIT") && read_reply(c, buf, sizeof buf) == 221;
}

/* Close a floor connection (no close_notify, as the engine). */
static void floor_close(struct fconn *c) {
  SSL_free(c->ssl);
  c->ssl = NULL;
  if (c->fd >= 0)
    close(c->fd);
  c->fd = -1;
}

/* One whole floor probe; records its outcome. */
static void floor_probe(SSL_CTX *ctx, const struct opts *o,
                        const struct sockaddr_in *sa, struct tally *t) {
  struct fconn c = {-1, NULL};
  char why[256];
  if (floor_open(&c, ctx, o, sa, why, sizeof why)) {
    if (floor_quit(&c))
      t->ok++;
    else
      tally_fail(t, "QUIT");
  } else {
    tally_fail(t, why);
  }
  floor_close(&c);
}

/* The client context of the floor: chain verification against cafile. */
static SSL_CTX *floor_ctx(const struct opts *o) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx || SSL_CTX_load_verify_locations(ctx, o->cafile, NULL) != 1) {
    fprintf(stderr, "probe_bench: cannot load %s\n", o->cafile);
    exit(1);
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  return ctx;
}

/* Fill the server's address from the options; exits when it is bad. */
static void server_addr(const struct opts *o, struct sockaddr_in *sa) {
  memset(sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  sa->sin_port = htons((uint16_t)o->port);
  if (inet_pton(AF_INET, o->host, &sa->sin_addr) != 1) {
    fprintf(stderr, "probe_bench: --host must be an IPv4 literal\n");
    exit(2);
  }
}

/* Print a run's results as one key=value line. */
static void print_run(const char *mode, long inflight, const struct tally *t,
                      double wall, double user, double sys, long rss_base,
                      long rss_peak) {
  char err[256];
  snprintf(err, sizeof err, "%s", t->failed ? t->first_error : "-");
  sanitize_token(err);
  long n = t->ok + t->failed;
  printf("mode=%s inflight=%ld probes=%ld ok=%ld failed=%ld wall_s=%.6f "
         "user_s=%.6f sys_s=%.6f wall_per_probe_ms=%.4f "
         "cpu_per_probe_ms=%.4f rss_base_kb=%ld rss_peak_kb=%ld "
         "first_error=%s\n",
         mode, inflight, n, t->ok, t->failed, wall, user, sys,
         n ? wall * 1e3 / (double)n : 0.0,
         n ? (user + sys) * 1e3 / (double)n : 0.0, rss_base, rss_peak, err);
}

/* floor: count sequential probes against the server. */
static int run_floor(const struct opts *o) {
  SSL_CTX *ctx = floor_ctx(o);
  struct sockaddr_in sa;
  server_addr(o, &sa);
  struct tally warm = {0};
  floor_probe(ctx, o, &sa, &warm); /* load everything lazily loaded */
  if (warm.failed) {
    fprintf(stderr, "probe_bench: warm-up probe failed: %s\n",
            warm.first_error);
    return 1;
  }
  long rss_base = proc_status_kb("VmRSS");
  struct tally t = {0};
  double u0, s0, u1, s1;
  cpu_s(&u0, &s0);
  double t0 = now_s();
  for (long i = 0; i < o->count; i++)
    floor_probe(ctx, o, &sa, &t);
  double wall = now_s() - t0;
  cpu_s(&u1, &s1);
  print_run("floor", 1, &t, wall, u1 - u0, s1 - s0, rss_base,
            proc_status_kb("VmHWM"));
  SSL_CTX_free(ctx);
  return t.failed ? 1 : 0;
}

/* hold: open count connections through EHLO inside TLS, keep them all
 * open, measure the RSS they add, then QUIT each. */
static int run_hold(const struct opts *o) {
  SSL_CTX *ctx = floor_ctx(o);
  struct sockaddr_in sa;
  server_addr(o, &sa);
  struct fconn *conns = calloc((size_t)o->count, sizeof *conns);
  if (!conns)
    return 1;
  struct tally warm = {0};
  floor_probe(ctx, o, &sa, &warm);
  long rss_base = proc_status_kb("VmRSS");
  struct tally t = {0};
  double u0, s0, u1, s1;
  cpu_s(&u0, &s0);
  double t0 = now_s();
  long open_n = 0;
  char why[256];
  for (long i = 0; i < o->count; i++) {
    conns[i].fd = -1;
    if (floor_open(&conns[i], ctx, o, &sa, why, sizeof why))
      open_n++;
    else {
      tally_fail(&t, why);
      floor_close(&conns[i]);
    }
  }
  long rss_held = proc_status_kb("VmRSS");
  for (long i = 0; i < o->count; i++) {
    if (conns[i].fd < 0)
      continue;
    if (floor_quit(&conns[i]))
      t.ok++;
    else
      tally_fail(&t, "QUIT");
    floor_close(&conns[i]);
  }
  double wall = now_s() - t0;
  cpu_s(&u1, &s1);
  print_run("hold", open_n, &t, wall, u1 - u0, s1 - s0, rss_base, rss_held);
  free(conns);
  SSL_CTX_free(ctx);
  return t.failed ? 1 : 0;
}

/* ---- The engine ------------------------------------------------------- */

/* Submit the next request of an engine run, when any is left. */
static void engine_submit_next(struct engine_run *r);

/* Completion callback: count the outcome, sample RSS, submit the next. */
static void engine_done(struct sp_batch *batch, void *user) {
  struct engine_run *r = user;
  long done = r->done + 1; /* only this thread writes it */
  for (int i = 0; i < batch->nresults; i++) {
    const struct sp_result *res = &batch->results[i];
    if (res->code == SP_OK && res->verified && res->tls)
      r->tally.ok++;
    else {
      char why[256];
      snprintf(why, sizeof why, "%s:%s", sp_code_name(res->code), res->detail);
      tally_fail(&r->tally, why);
    }
  }
  sp_batch_free(batch);
  pthread_mutex_lock(&r->lock); /* a threaded run's waiter reads done */
  r->done = done;
  if (done >= r->target)
    pthread_cond_signal(&r->ended);
  pthread_mutex_unlock(&r->lock);
  if (r->done % RSS_SAMPLE_EVERY == 0) {
    long rss = proc_status_kb("VmRSS");
    if (rss > r->rss_max_kb) {
      r->rss_max_kb = rss;
      r->inflight_at_max = sp_engine_inflight(r->eng);
    }
  }
  engine_submit_next(r);
}

/* Submit the next request of an engine run, when any is left. */
static void engine_submit_next(struct engine_run *r) {
  if (r->submitted >= r->target || r->submit_failed)
    return;
  char err[256];
  if (sp_engine_submit(r->eng, r->req, engine_done, r, err, sizeof err) != 0) {
    pthread_mutex_lock(&r->lock);
    r->submit_failed = true;
    snprintf(r->submit_error, sizeof r->submit_error, "%s", err);
    pthread_cond_signal(&r->ended);
    pthread_mutex_unlock(&r->lock);
    return;
  }
  r->submitted++;
}

/* Completion of an idle probe (only when the engine stops): drop it. */
static void idle_done(struct sp_batch *batch, void *user) {
  (void)user;
  sp_batch_free(batch);
}

/* Submit o->idle probes that wait on the silent server all run long. */
static int submit_idle(struct sp_engine *eng, const struct opts *o) {
  struct sp_request req;
  sp_request_init(&req);
  req.host = o->host;
  req.family = SP_FAMILY_IPV4;
  req.timeout_s = 600.0;
  sp_request_add_port(&req, (uint16_t)o->idle_port, SP_TLS_NONE, SP_ROLE_RELAY);
  for (long i = 0; i < o->idle; i++) {
    char err[256];
    if (sp_engine_submit(eng, &req, idle_done, NULL, err, sizeof err) != 0) {
      fprintf(stderr, "probe_bench: idle probe: %s\n", err);
      return -1;
    }
  }
  return 0;
}

/* Run the measured probes in the engine's own thread beside the idle ones;
 * returns when all completed (or a submit failed). */
static void run_threaded(struct engine_run *r, const struct opts *o) {
  /* the first ones are queued before the thread starts: from then on only
   * its completion callbacks submit */
  for (long i = 0; i < o->inflight && i < o->count; i++)
    engine_submit_next(r);
  sp_engine_start(r->eng);
  pthread_mutex_lock(&r->lock);
  while (r->done < r->target && !r->submit_failed)
    pthread_cond_wait(&r->ended, &r->lock);
  pthread_mutex_unlock(&r->lock);
}

/* engine: count probes through the public API, inflight at a time, all in
 * this thread's event loop (sp_engine_run), or with --idle in the engine's
 * thread beside the idle probes. */
static int run_engine(const struct opts *o) {
  char err[256];
  struct sp_engine *eng = sp_engine_new(err, sizeof err);
  if (!eng) {
    fprintf(stderr, "probe_bench: sp_engine_new: %s\n", err);
    return 1;
  }
  struct sp_request req;
  sp_request_init(&req);
  req.host = o->host;
  req.sni = o->sni;
  req.cafile = o->cafile;
  req.ehlo_name = o->ehlo;
  req.family = SP_FAMILY_IPV4;
  req.timeout_s = 30.0;
  sp_request_add_port(&req, (uint16_t)o->port, SP_TLS_STARTTLS,
                      SP_ROLE_SUBMISSION);
  if (sp_request_validate(&req, err, sizeof err) != 0) {
    fprintf(stderr, "probe_bench: request: %s\n", err);
    return 2;
  }
  /* Warm-up: one probe loads the CA file, OpenSSL's tables, the engine. */
  struct engine_run r = {.eng = eng, .req = &req, .target = 1};
  pthread_mutex_init(&r.lock, NULL);
  pthread_cond_init(&r.ended, NULL);
  engine_submit_next(&r);
  sp_engine_run(eng);
  if (r.tally.failed || r.submit_failed) {
    fprintf(stderr, "probe_bench: warm-up probe failed: %s%s\n",
            r.tally.first_error, r.submit_error);
    return 1;
  }
  if (o->idle > 0 && submit_idle(eng, o) != 0)
    return 1;
  long rss_base = proc_status_kb("VmRSS");
  pthread_mutex_destroy(&r.lock);
  pthread_cond_destroy(&r.ended);
  memset(&r, 0, sizeof r);
  r.eng = eng;
  r.req = &req;
  r.target = o->count;
  r.rss_max_kb = rss_base;
  pthread_mutex_init(&r.lock, NULL);
  pthread_cond_init(&r.ended, NULL);
  double u0, s0, u1, s1;
  cpu_s(&u0, &s0);
  double t0 = now_s();
  if (o->idle >= 0) {
    run_threaded(&r, o);
  } else {
    for (long i = 0; i < o->inflight && i < o->count; i++)
      engine_submit_next(&r);
    sp_engine_run(eng);
  }
  double wall = now_s() - t0;
  cpu_s(&u1, &s1);
  if (o->idle >= 0) /* ends the idle probes (not measured) */
    sp_engine_stop(eng);
  if (r.submit_failed)
    tally_fail(&r.tally, r.submit_error);
  print_run(o->idle > 0 ? "engine-idle" : "engine", o->inflight, &r.tally, wall,
            u1 - u0, s1 - s0, rss_base, r.rss_max_kb);
  sp_engine_free(eng);
  pthread_mutex_destroy(&r.lock);
  pthread_cond_destroy(&r.ended);
  return r.tally.failed ? 1 : 0;
}

/* ---- main ------------------------------------------------------------- */

/* Print usage and exit 2. */
static void usage(void) {
  fprintf(stderr,
          "usage: probe_bench floor|hold|engine --host IP --port N --sni NAME "
          "--cafile FILE\n"
          "                   [--count N] [--inflight N] [--ehlo NAME]\n"
          "                   [--idle N --idle-port P]\n");
  exit(2);
}

/* Parse the command line into o. */
static void parse_args(int argc, char **argv, struct opts *o) {
  if (argc < 2)
    usage();
  o->mode = argv[1];
  for (int i = 2; i < argc; i += 2) {
    const char *k = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v)
      usage();
    if (strcmp(k, "--host") == 0)
      o->host = v;
    else if (strcmp(k, "--port") == 0)
      o->port = parse_long("--port", v, 1, 65535);
    else if (strcmp(k, "--sni") == 0)
      o->sni = v;
    else if (strcmp(k, "--cafile") == 0)
      o->cafile = v;
    else if (strcmp(k, "--ehlo") == 0)
      o->ehlo = v;
    else if (strcmp(k, "--count") == 0)
      o->count = parse_long("--count", v, 1, MAX_COUNT);
    else if (strcmp(k, "--inflight") == 0)
      o->inflight = parse_long("--inflight", v, 1, MAX_INFLIGHT);
    else if (strcmp(k, "--idle") == 0)
      o->idle = parse_long("--idle", v, 0, MAX_INFLIGHT);
    else if (strcmp(k, "--idle-port") == 0)
      o->idle_port = parse_long("--idle-port", v, 1, 65535);
    else
      usage();
  }
  if (!o->host || !o->port || !o->sni || !o->cafile ||
      (o->idle > 0 && !o->idle_port))
    usage();
}

/* Run the mode named on the command line. */
int main(int argc, char **argv) {
  struct opts o = {
      .ehlo = "bench.smtp-probe.test", .count = 100, .inflight = 1, .idle = -1};
  parse_args(argc, argv, &o);
  raise_fd_limit();
  if (strcmp(o.mode, "floor") == 0)
    return run_floor(&o);
  if (strcmp(o.mode, "hold") == 0) {
    if (o.count > MAX_HOLD)
      usage();
    return run_hold(&o);
  }
  if (strcmp(o.mode, "engine") == 0)
    return run_engine(&o);
  usage();
  return 2;
}
