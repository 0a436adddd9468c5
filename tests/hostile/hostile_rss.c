/*
 * hostile_rss.c - memory bounds under hostile servers.
 *
 * Runs N probes at once (one engine, N submitted requests) against a
 * well-behaved server, then the same number against a hostile one, in one
 * process, and measures the peak resident set of each phase. Asserts:
 *   - every probe ends with the expected diagnosis within its deadline
 *     (the engine's total time <= timeout + HR_SLACK_S);
 *   - the hostile phase's peak RSS growth exceeds the well-behaved
 *     phase's by no more than
 *       N x (SP_MAX_PROBE_BUFFER + SP_MAX_REPLY_BYTES + SP_MAX_TRANSCRIPT)
 *       + 2 MiB.
 *
 * Peak per phase: freed heap memory is returned (malloc_trim) and VmHWM
 * is reset before each phase by writing "5" to /proc/self/clear_refs
 * (Linux >= 4.0), so a phase's growth is its own VmHWM minus the VmRSS it
 * started from. Where that reset is refused the
 * growth is measured against the process's earlier peak (still an upper
 * bound for the comparison, but coarser; the output says so).
 *
 * The hostile side is an external server (our fault server) or, with
 * --serve KIND, a tiny server of this program's own in a child process
 * (its memory is not ours): flood-binary streams binary garbage from the
 * first byte, flood-after-banner sends a valid 220 greeting and then
 * binary garbage with line ends (both up to 16 MiB per connection).
 *
 * usage: hostile_rss --ok ADDR:PORT --hostile ADDR:PORT --expect CODE
 *          [--tls none|starttls|auto|implicit] [--serve KIND] [--probes N]
 *          [--timeout S] [--cafile FILE] [--rounds R] [--label TEXT]
 *          [--self-test-inflate KIB]
 *
 * --self-test-inflate holds KIB more per hostile probe (what a leaking
 * engine would do), to show the bound check fails when it should.
 *
 * Prints one line per phase with the figures; exit 0 pass, 1 fail.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "smtp_probe.h"

#define HR_MAX_PROBES 200       /* probes per phase at most */
#define HR_SLACK_S 2.0          /* engine lateness allowed past a deadline */
#define HR_CONST_KIB 2048       /* the bound's constant: 2 MiB */
#define HR_FLOOD_CAP (16 << 20) /* bytes the built-in server sends per conn */
#define HR_FLOOD_CONNS 256      /* connections the built-in server serves */
#define HR_LINE 256             /* bytes of one /proc/self/status line */

#if defined(__SANITIZE_ADDRESS__)
#define HR_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HR_ASAN 1
#endif
#endif
#ifndef HR_ASAN
#define HR_ASAN 0
#endif

/* Command-line options. */
struct opts {
  char ok_host[64];     /* well-behaved server address */
  uint16_t ok_port;     /* its port */
  char bad_host[64];    /* hostile server address */
  uint16_t bad_port;    /* its port */
  int expect;           /* enum sp_code the hostile probes must end with */
  enum sp_tls_mode tls; /* TLS mode of the hostile probes */
  const char *serve;    /* built-in hostile server kind, or NULL */
  int probes;           /* N */
  double timeout_s;     /* each probe's deadline */
  const char *cafile;   /* trust anchors for the well-behaved server */
  int rounds;           /* hostile phases run one after the other */
  const char *label;    /* name printed with the figures */
  long inflate_kib;     /* self-test: extra KiB held per hostile probe */
};

/* What one phase saw. */
struct phase {
  int done;                 /* probes finished */
  int matched;              /* probes that ended with the expected code */
  int late;                 /* probes that ended past deadline + slack */
  double max_total_s;       /* slowest probe's total time */
  int codes[SP_CODE_COUNT]; /* how many ended with each code */
  char first_bad[SP_MAX_TEXT + 64]; /* first unexpected result, if any */
  int expect;                       /* the expected code */
  double timeout_s;                 /* the deadline */
  long inflate_kib;          /* self-test: KiB to hold per finished probe */
  char *held[HR_MAX_PROBES]; /* the self-test's blocks, freed after */
};

/* Read a "Key:   123 kB" field of /proc/self/status in KiB; -1 if absent. */
static long status_kib(const char *key) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[HR_LINE];
  long v = -1;
  size_t kl = strlen(key);
  if (!f)
    return -1;
  while (fgets(line, sizeof(line), f)) {
    if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
      char *end = NULL;
      errno = 0;
      long x = strtol(line + kl + 1, &end, 10);
      if (errno == 0 && end != line + kl + 1)
        v = x;
      break;
    }
  }
  fclose(f);
  return v;
}

/* Give freed heap memory back to the kernel (glibc), then reset the peak
 * RSS (VmHWM) to the current RSS; true when the reset was done. Without
 * the trim, memory freed by an earlier phase would stay resident and hide
 * a later phase's use of it. */
static bool reset_peak(void) {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
  int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  bool ok = write(fd, "5", 1) == 1;
  close(fd);
  return ok;
}

/* The process's peak RSS from getrusage, KiB. */
static long maxrss_kib(void) {
  struct rusage ru;
  return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

/* Parse ADDR:PORT (IPv4) into host and port; 0 or -1. */
static int parse_addr(const char *s, char *host, size_t hostlen,
                      uint16_t *port) {
  const char *colon = strrchr(s, ':');
  struct in_addr a;
  if (!colon || (size_t)(colon - s) >= hostlen)
    return -1;
  memcpy(host, s, (size_t)(colon - s));
  host[colon - s] = '\0';
  if (inet_pton(AF_INET, host, &a) != 1)
    return -1;
  char *end = NULL;
  errno = 0;
  long p = strtol(colon + 1, &end, 10);
  if (errno != 0 || *end != '\0' || p < 1 || p > 65535)
    return -1;
  *port = (uint16_t)p;
  return 0;
}

/* Parse a positive number with strtod; -1 when it is not one. */
static double parse_num(const char *s) {
  char *end = NULL;
  errno = 0;
  double v = strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0' || !(v > 0))
    return -1;
  return v;
}

/* Record one finished batch into its phase (engine thread callback). */
static void on_done(struct sp_batch *batch, void *user) {
  struct phase *ph = user;
  for (int i = 0; i < batch->nresults; i++) {
    const struct sp_result *r = &batch->results[i];
    double total = r->phase_s[SP_PHASE_TOTAL];
    ph->done++;
    if ((int)r->code >= 0 && r->code < SP_CODE_COUNT)
      ph->codes[r->code]++;
    if (total > ph->max_total_s)
      ph->max_total_s = total;
    if (total > ph->timeout_s + HR_SLACK_S)
      ph->late++;
    if ((int)r->code == ph->expect) {
      ph->matched++;
    } else if (ph->first_bad[0] == '\0') {
      snprintf(ph->first_bad, sizeof(ph->first_bad), "%s (%s)",
               sp_code_name(r->code), r->detail);
    }
  }
  sp_batch_free(batch);
  if (ph->inflate_kib > 0 && ph->done <= HR_MAX_PROBES) {
    /* Self-test of the bound: memory a leaky engine would keep. */
    char *block = malloc((size_t)ph->inflate_kib * 1024);
    if (block)
      memset(block, 0x5a, (size_t)ph->inflate_kib * 1024);
    ph->held[ph->done - 1] = block;
  }
}

/* Free the self-test's blocks of a phase. */
static void release_held(struct phase *ph) {
  for (int i = 0; i < HR_MAX_PROBES; i++) {
    free(ph->held[i]);
    ph->held[i] = NULL;
  }
}

/* Run n probes at once against host:port and wait for all of them. */
static int run_phase(struct sp_engine *eng, const char *host, uint16_t port,
                     enum sp_tls_mode tls, const char *cafile, int n,
                     double timeout_s, int expect, long inflate_kib,
                     struct phase *ph) {
  memset(ph, 0, sizeof(*ph));
  ph->inflate_kib = inflate_kib;
  ph->timeout_s = timeout_s;
  ph->expect = expect;
  for (int i = 0; i < n; i++) {
    struct sp_request req;
    char err[256];
    sp_request_init(&req);
    req.host = host;
    req.cafile = cafile;
    req.ehlo_name = "hostile.smtp-probe.test";
    req.timeout_s = timeout_s;
    req.trace = true; /* the transcript buffer counts in the bound */
    sp_request_add_port(&req, port, tls, SP_ROLE_SUBMISSION);
    if (sp_engine_submit(eng, &req, on_done, ph, err, sizeof(err)) != 0) {
      fprintf(stderr, "hostile_rss: submit: %s\n", err);
      return -1;
    }
  }
  sp_engine_run(eng);
  return 0;
}

/* ---- The built-in hostile server (child process) -------------------- */

/* One connection of the built-in server. */
struct flood_conn {
  int fd;      /* the connection, -1 when free */
  size_t sent; /* bytes sent so far */
  size_t off;  /* offset into the pattern */
};

/* Fill buf with the flood pattern of a kind. */
static void flood_pattern(const char *kind, unsigned char *buf, size_t n) {
  uint32_t x = 2463534242u;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    buf[i] = (unsigned char)x;
    /* flood-after-banner: line ends now and then, so the probe sees
     * "lines" of garbage rather than one endless line. */
    if (strcmp(kind, "flood-after-banner") == 0 && i % 97 == 96)
      buf[i] = '\n';
  }
}

/* Serve floods on lfd until killed (runs in the child). */
static void flood_serve(int lfd, const char *kind) {
  static unsigned char pat[65536];
  static struct flood_conn conns[HR_FLOOD_CONNS];
  static const char banner[] = "220 flood.smtp-probe.test ESMTP\r\n";
  bool after_banner = strcmp(kind, "flood-after-banner") == 0;
  signal(SIGPIPE, SIG_IGN);
  flood_pattern(kind, pat, sizeof(pat));
  for (int i = 0; i < HR_FLOOD_CONNS; i++)
    conns[i].fd = -1;
  for (;;) {
    struct pollfd pf[HR_FLOOD_CONNS + 1];
    int map[HR_FLOOD_CONNS + 1];
    int n = 0;
    pf[n].fd = lfd;
    pf[n].events = POLLIN;
    map[n++] = -1;
    for (int i = 0; i < HR_FLOOD_CONNS; i++) {
      if (conns[i].fd < 0)
        continue;
      pf[n].fd = conns[i].fd;
      pf[n].events = POLLOUT;
      map[n++] = i;
    }
    if (poll(pf, (nfds_t)n, -1) < 0) {
      if (errno == EINTR)
        continue;
      _exit(1);
    }
    if (pf[0].revents & POLLIN) {
      int fd = accept(lfd, NULL, NULL);
      int slot = -1;
      for (int i = 0; fd >= 0 && i < HR_FLOOD_CONNS && slot < 0; i++)
        if (conns[i].fd < 0)
          slot = i;
      if (fd >= 0 && slot < 0)
        close(fd);
      if (slot >= 0) {
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        conns[slot].fd = fd;
        conns[slot].sent = 0;
        conns[slot].off = 0;
        if (after_banner &&
            send(fd, banner, sizeof(banner) - 1, MSG_NOSIGNAL) < 0) {
          close(fd);
          conns[slot].fd = -1;
        }
      }
    }
    for (int k = 1; k < n; k++) {
      struct flood_conn *c = &conns[map[k]];
      if (!(pf[k].revents & (POLLOUT | POLLERR | POLLHUP)))
        continue;
      ssize_t w = send(c->fd, pat + c->off, sizeof(pat) - c->off,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w > 0) {
        c->sent += (size_t)w;
        c->off = (c->off + (size_t)w) % sizeof(pat);
      }
      if ((w < 0 && errno != EAGAIN && errno != EINTR) ||
          c->sent >= HR_FLOOD_CAP) {
        close(c->fd);
        c->fd = -1;
      }
    }
  }
}

/* Start the built-in server on host:port in a child; its pid or -1. */
static pid_t flood_start(const char *kind, const char *host, uint16_t port) {
  struct sockaddr_in sa;
  int one = 1;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
    return -1;
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0)
    return -1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
      listen(lfd, HR_MAX_PROBES) != 0) {
    fprintf(stderr, "hostile_rss: listen %s:%u: %s\n", host, port,
            strerror(errno));
    close(lfd);
    return -1;
  }
  /* Listening before the fork: the probes can connect at once. */
  pid_t pid = fork();
  if (pid == 0) {
    flood_serve(lfd, kind);
    _exit(0);
  }
  close(lfd);
  return pid;
}

/* ---- Main ------------------------------------------------------------- */

/* Print how to call this program. */
static void usage(void) {
  fprintf(
      stderr,
      "usage: hostile_rss --ok ADDR:PORT --hostile ADDR:PORT --expect CODE\n"
      "         [--tls none|starttls|auto|implicit] [--serve "
      "flood-binary|flood-after-banner]\n"
      "         [--probes N] [--timeout S] [--cafile FILE] [--rounds R] "
      "[--label TEXT]\n");
}

/* Parse the command line into o; 0 or -1. */
static int parse_opts(int argc, char **argv, struct opts *o) {
  static const struct option lo[] = {
      {"ok", required_argument, NULL, 'o'},
      {"hostile", required_argument, NULL, 'h'},
      {"expect", required_argument, NULL, 'e'},
      {"tls", required_argument, NULL, 't'},
      {"serve", required_argument, NULL, 's'},
      {"probes", required_argument, NULL, 'n'},
      {"timeout", required_argument, NULL, 'T'},
      {"cafile", required_argument, NULL, 'c'},
      {"rounds", required_argument, NULL, 'r'},
      {"label", required_argument, NULL, 'l'},
      {"self-test-inflate", required_argument, NULL, 'I'},
      {NULL, 0, NULL, 0}};
  int c;
  bool have_ok = false, have_bad = false;
  memset(o, 0, sizeof(*o));
  o->expect = -1;
  o->tls = SP_TLS_STARTTLS;
  o->probes = 50;
  o->timeout_s = 10;
  o->rounds = 2;
  o->label = "hostile";
  while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    double v;
    switch (c) {
    case 'o':
      have_ok =
          parse_addr(optarg, o->ok_host, sizeof(o->ok_host), &o->ok_port) == 0;
      break;
    case 'h':
      have_bad = parse_addr(optarg, o->bad_host, sizeof(o->bad_host),
                            &o->bad_port) == 0;
      break;
    case 'e':
      o->expect = sp_code_from_name(optarg);
      break;
    case 't': {
      int m = sp_tls_mode_from_name(optarg);
      if (m < 0)
        return -1;
      o->tls = (enum sp_tls_mode)m;
      break;
    }
    case 's':
      if (strcmp(optarg, "flood-binary") != 0 &&
          strcmp(optarg, "flood-after-banner") != 0)
        return -1;
      o->serve = optarg;
      break;
    case 'n':
      v = parse_num(optarg);
      if (v < 1 || v > HR_MAX_PROBES || v != (int)v)
        return -1;
      o->probes = (int)v;
      break;
    case 'T':
      o->timeout_s = parse_num(optarg);
      if (o->timeout_s <= 0 || o->timeout_s > 120)
        return -1;
      break;
    case 'c':
      o->cafile = optarg;
      break;
    case 'r':
      v = parse_num(optarg);
      if (v < 1 || v > 10 || v != (int)v)
        return -1;
      o->rounds = (int)v;
      break;
    case 'l':
      o->label = optarg;
      break;
    case 'I':
      v = parse_num(optarg);
      if (v < 1 || v > 4096 || v != (int)v)
        return -1;
      o->inflate_kib = (long)v;
      break;
    default:
      return -1;
    }
  }
  return have_ok && have_bad && o->expect >= 0 && optind == argc ? 0 : -1;
}

/* Check one phase's diagnoses and deadlines; prints; true when good. */
static bool judge_phase(const char *name, const struct phase *ph, int n) {
  bool good = ph->done == n && ph->matched == n && ph->late == 0;
  printf("hostile_rss: %s: %d/%d probes ended with %s, %d past deadline "
         "(slowest %.2fs of %.1fs)",
         name, ph->matched, n, sp_code_name((enum sp_code)ph->expect), ph->late,
         ph->max_total_s, ph->timeout_s);
  for (int c = 0; c < SP_CODE_COUNT; c++)
    if (ph->codes[c] && c != ph->expect)
      printf(" [%d x %s]", ph->codes[c], sp_code_name((enum sp_code)c));
  printf("\n");
  if (ph->first_bad[0])
    printf("hostile_rss: %s: first unexpected result: %s\n", name,
           ph->first_bad);
  return good;
}

/* Run the phases, print the figures and judge them. */
int main(int argc, char **argv) {
  struct opts o;
  char err[256];
  if (parse_opts(argc, argv, &o) != 0) {
    usage();
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  pid_t child = -1;
  if (o.serve) {
    child = flood_start(o.serve, o.bad_host, o.bad_port);
    if (child < 0)
      return 1;
  }
  struct sp_engine *eng = sp_engine_new(err, sizeof(err));
  if (!eng) {
    fprintf(stderr, "hostile_rss: engine: %s\n", err);
    if (child > 0)
      kill(child, SIGTERM);
    return 1;
  }
  const long cap_kib =
      (long)o.probes *
      (SP_MAX_PROBE_BUFFER + SP_MAX_REPLY_BYTES + SP_MAX_TRANSCRIPT) / 1024;
  const long bound_kib = cap_kib + HR_CONST_KIB;
  bool pass = true;
  static struct phase ph; /* reused by every phase */

  /* Warm-up: one well-behaved probe, so lazily made state (contexts,
   * trust store, allocator arenas) is not counted in the first phase. */
  run_phase(eng, o.ok_host, o.ok_port, SP_TLS_STARTTLS, o.cafile, 1, 10.0,
            SP_OK, 0, &ph);

  if (HR_ASAN)
    printf("hostile_rss: %s: built with AddressSanitizer: RSS figures are "
           "printed, the bound is not judged under AddressSanitizer "
           "(quarantine and shadow memory)\n",
           o.label);
  bool exact = reset_peak();
  long base = exact ? status_kib("VmRSS") : status_kib("VmHWM");
  if (run_phase(eng, o.ok_host, o.ok_port, SP_TLS_STARTTLS, o.cafile, o.probes,
                10.0, SP_OK, 0, &ph) != 0)
    return 1;
  long ok_growth = status_kib("VmHWM") - base;
  printf("hostile_rss: %s: well-behaved phase: peak RSS growth %ld KiB for "
         "%d probes (%.1f KiB/probe)%s\n",
         o.label, ok_growth, o.probes, (double)ok_growth / o.probes,
         exact ? "" : " [VmHWM reset refused: coarse figures]");
  pass = judge_phase("well-behaved", &ph, o.probes) && pass;

  for (int round = 1; round <= o.rounds; round++) {
    if (exact)
      reset_peak();
    base = exact ? status_kib("VmRSS") : status_kib("VmHWM");
    if (run_phase(eng, o.bad_host, o.bad_port, o.tls, NULL, o.probes,
                  o.timeout_s, o.expect, o.inflate_kib, &ph) != 0)
      return 1;
    long growth = status_kib("VmHWM") - base;
    release_held(&ph);
    long excess = growth - ok_growth;
    printf("hostile_rss: %s: hostile round %d: peak RSS growth %ld KiB for "
           "%d probes (%.1f KiB/probe); excess over well-behaved %ld KiB "
           "(%.1f KiB/probe); bound %ld KiB = %d x %d KiB caps + %d KiB; "
           "VmRSS now %ld KiB, ru_maxrss %ld KiB\n",
           o.label, round, growth, o.probes, (double)growth / o.probes, excess,
           (double)excess / o.probes, bound_kib, o.probes,
           (SP_MAX_PROBE_BUFFER + SP_MAX_REPLY_BYTES + SP_MAX_TRANSCRIPT) /
               1024,
           HR_CONST_KIB, status_kib("VmRSS"), maxrss_kib());
    char name[64];
    snprintf(name, sizeof(name), "%s round %d", o.label, round);
    pass = judge_phase(name, &ph, o.probes) && pass;
    if (excess > bound_kib && !HR_ASAN) {
      printf("hostile_rss: %s: FAIL: RSS excess %ld KiB > bound %ld KiB\n",
             name, excess, bound_kib);
      pass = false;
    }
  }
  sp_engine_free(eng);
  if (child > 0) {
    kill(child, SIGTERM);
    waitpid(child, NULL, 0);
  }
  printf("hostile_rss: %s: %s\n", o.label, pass ? "PASS" : "FAIL");
  return pass ? 0 : 1;
}
