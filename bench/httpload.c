/*
 * httpload.c - a small closed-loop HTTP load generator for the exporter
 * benchmarks: C threads each send GET requests (one connection per
 * request, "Connection: close") until count requests are done, and check
 * every answer for status 200 and an expected string in the body.
 *
 * usage: httpload --addr IP --port N --path PATH --expect STRING
 *                 [--count N] [--concurrency N] [--timeout SECONDS]
 *
 * Prints one key=value line: requests, ok, failed, wall_s, mean_ms,
 * p50_ms, p90_ms, p99_ms, rps, first_error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define BODY_CAP (1 << 20) /* bytes of one answer we read at most */
#define MAX_COUNT 1000000  /* requests in one run at most */
#define MAX_THREADS 512    /* concurrency at most */

/* The whole run: options, shared counters, per-request latencies. */
struct load {
  struct sockaddr_in sa; /* server */
  const char *path;      /* request path with query */
  const char *expect;    /* string the body must contain */
  char host_hdr[64];     /* Host: header value, ADDR:PORT */
  long count;            /* requests in all */
  long concurrency;      /* threads */
  double timeout_s;      /* per-request socket timeout */
  atomic_long next;      /* next request index to take */
  atomic_long ok;        /* answers that passed */
  atomic_long failed;    /* answers that did not */
  double *lat_ms;        /* latency per request index */
  pthread_mutex_t lock;  /* guards first_error */
  char first_error[200]; /* why the first failure failed */
};

/* Monotonic time in seconds. */
static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Record a failure, keeping the first reason. */
static void fail(struct load *l, const char *why) {
  if (atomic_fetch_add(&l->failed, 1) == 0) {
    pthread_mutex_lock(&l->lock);
    snprintf(l->first_error, sizeof l->first_error, "%s", why);
    pthread_mutex_unlock(&l->lock);
  }
}

/* One request: connect, send, read to EOF, check; true when it passed. */
static bool one_request(struct load *l, char *buf, char *why, size_t whylen) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(why, whylen, "socket: %s", strerror(errno));
    return false;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct timeval tv = {
      (time_t)l->timeout_s,
      (suseconds_t)((l->timeout_s - (long)l->timeout_s) * 1e6)};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  bool ok = false;
  if (connect(fd, (struct sockaddr *)&l->sa, sizeof l->sa) != 0) {
    snprintf(why, whylen, "connect: %s", strerror(errno));
    goto out;
  }
  char req[2048];
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: httpload\r\n"
                   "Connection: close\r\n\r\n",
                   l->path, l->host_hdr);
  if (n < 0 || (size_t)n >= sizeof req ||
      send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
    snprintf(why, whylen, "send failed");
    goto out;
  }
  size_t len = 0;
  for (;;) {
    if (len + 1 >= BODY_CAP) {
      snprintf(why, whylen, "answer over %d bytes", BODY_CAP);
      goto out;
    }
    ssize_t r = recv(fd, buf + len, BODY_CAP - 1 - len, 0);
    if (r < 0) {
      snprintf(why, whylen, "recv: %s", strerror(errno));
      goto out;
    }
    if (r == 0)
      break;
    len += (size_t)r;
  }
  buf[len] = '\0';
  if (strncmp(buf, "HTTP/1.1 200", 12) != 0 &&
      strncmp(buf, "HTTP/1.0 200", 12) != 0) {
    snprintf(why, whylen, "status: %.40s", buf);
    goto out;
  }
  if (!strstr(buf, l->expect)) {
    snprintf(why, whylen, "body lacks '%.60s'", l->expect);
    goto out;
  }
  ok = true;
out:
  close(fd);
  return ok;
}

/* A worker thread: take request indexes until all are taken. */
static void *worker(void *arg) {
  struct load *l = arg;
  char *buf = malloc(BODY_CAP);
  if (!buf)
    return NULL;
  char why[200];
  for (;;) {
    long i = atomic_fetch_add(&l->next, 1);
    if (i >= l->count)
      break;
    double t0 = now_s();
    bool ok = one_request(l, buf, why, sizeof why);
    l->lat_ms[i] = (now_s() - t0) * 1e3;
    if (ok)
      atomic_fetch_add(&l->ok, 1);
    else
      fail(l, why);
  }
  free(buf);
  return NULL;
}

/* qsort comparator for doubles. */
static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Parse a decimal number within [min, max]; exits on anything else. */
static long parse_long(const char *what, const char *s, long min, long max) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < min || v > max) {
    fprintf(stderr, "httpload: %s: want %ld..%ld, got '%s'\n", what, min, max,
            s);
    exit(2);
  }
  return v;
}

/* Print usage and exit 2. */
static void usage(void) {
  fprintf(stderr, "usage: httpload --addr IP --port N --path PATH --expect "
                  "STRING [--count N] [--concurrency N] [--timeout S]\n");
  exit(2);
}

/* Run the load and print its line. */
int main(int argc, char **argv) {
  static struct load l;
  const char *addr = NULL;
  long port = 0;
  l.count = 100;
  l.concurrency = 1;
  l.timeout_s = 30;
  for (int i = 1; i < argc; i += 2) {
    const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v)
      usage();
    if (strcmp(k, "--addr") == 0)
      addr = v;
    else if (strcmp(k, "--port") == 0)
      port = parse_long("--port", v, 1, 65535);
    else if (strcmp(k, "--path") == 0)
      l.path = v;
    else if (strcmp(k, "--expect") == 0)
      l.expect = v;
    else if (strcmp(k, "--count") == 0)
      l.count = parse_long("--count", v, 1, MAX_COUNT);
    else if (strcmp(k, "--concurrency") == 0)
      l.concurrency = parse_long("--concurrency", v, 1, MAX_THREADS);
    else if (strcmp(k, "--timeout") == 0)
      l.timeout_s = (double)parse_long("--timeout", v, 1, 600);
    else
      usage();
  }
  if (!addr || !port || !l.path || !l.expect || strlen(l.path) > 1500)
    usage();
  l.sa.sin_family = AF_INET;
  l.sa.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, addr, &l.sa.sin_addr) != 1)
    usage();
  snprintf(l.host_hdr, sizeof l.host_hdr, "%s:%ld", addr, port);
  l.lat_ms = calloc((size_t)l.count, sizeof *l.lat_ms);
  pthread_t th[MAX_THREADS];
  if (!l.lat_ms)
    return 1;
  pthread_mutex_init(&l.lock, NULL);
  double t0 = now_s();
  long started = 0;
  for (long i = 0; i < l.concurrency; i++)
    if (pthread_create(&th[i], NULL, worker, &l) == 0)
      started++;
  for (long i = 0; i < started; i++)
    pthread_join(th[i], NULL);
  double wall = now_s() - t0;
  qsort(l.lat_ms, (size_t)l.count, sizeof *l.lat_ms, cmp_double);
  double sum = 0;
  for (long i = 0; i < l.count; i++)
    sum += l.lat_ms[i];
  char err[200];
  snprintf(err, sizeof err, "%s", l.first_error[0] ? l.first_error : "-");
  for (char *p = err; *p; p++)
    if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
      *p = '_';
  printf("requests=%ld ok=%ld failed=%ld concurrency=%ld wall_s=%.6f "
         "mean_ms=%.4f p50_ms=%.4f p90_ms=%.4f p99_ms=%.4f rps=%.2f "
         "first_error=%s\n",
         l.count, atomic_load(&l.ok), atomic_load(&l.failed), l.concurrency,
         wall, sum / (double)l.count, l.lat_ms[l.count / 2],
         l.lat_ms[l.count * 9 / 10], l.lat_ms[l.count * 99 / 100],
         (double)l.count / wall, err);
  free(l.lat_ms);
  return atomic_load(&l.failed) ? 1 : 0;
}
