/*
 * timers_test.c - the engine's timer handling with many probes in flight.
 *
 * A listener on 127.0.80.1 that never accepts: the kernel completes the
 * TCP handshakes and the connections stay silent. One engine gets
 * NBATCH requests at once, each with its own timeout spread between
 * T_MIN and T_MAX, half in plain SMTP (one deadline: the read times out)
 * and half STARTTLS on the submission role (two timers: the banner wait,
 * then a fresh connection testing implicit TLS, then the deadline).
 *
 * Asserts for every request: banner_timeout (no greeting came); it ended
 * no earlier than its own timeout and no later than SLACK_S past it (a
 * probe whose timer is lost or misfiled waits for another's, up to
 * T_MAX - T_MIN late); the in-flight gauge is back to 0.
 *
 * Exit 0 pass, 1 fail (the failures are printed).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "smtp_probe.h"

#define LISTEN_ADDR "127.0.80.1" /* the engine tests' loopback address */
#define NBATCH 60                /* requests in flight at once */
#define T_MIN 0.5                /* shortest timeout, seconds */
#define T_MAX 4.0                /* longest timeout, seconds */
#define SLACK_S 0.75             /* lateness allowed past a deadline */

/* What the test knows of one request. */
struct slot {
  double timeout;           /* its timeout */
  bool starttls;            /* STARTTLS on 587's role, else plain SMTP */
  double t_submit;          /* when it was submitted */
  double elapsed;           /* submit to completion, -1: not completed */
  enum sp_code code;        /* the diagnosis */
  char detail[SP_MAX_TEXT]; /* its detail, for the failure message */
};

/* Monotonic seconds. */
static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Completion callback: record when and how the request ended. */
static void on_done(struct sp_batch *batch, void *user) {
  struct slot *s = user;
  s->elapsed = now_s() - s->t_submit;
  if (batch->nresults == 1) {
    s->code = batch->results[0].code;
    snprintf(s->detail, sizeof(s->detail), "%s", batch->results[0].detail);
  }
  sp_batch_free(batch);
}

/* A listening socket on LISTEN_ADDR that is never accepted from; its port
 * in *port. Returns the fd or -1. */
static int silent_listener(uint16_t *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  socklen_t len = sizeof(sa);
  if (fd < 0 || inet_pton(AF_INET, LISTEN_ADDR, &sa.sin_addr) != 1 ||
      bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
      listen(fd, 4 * NBATCH) != 0 ||
      getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
    perror("timers_test: listener on " LISTEN_ADDR);
    if (fd >= 0)
      close(fd);
    return -1;
  }
  *port = ntohs(sa.sin_port);
  return fd;
}

/* Submit every request, run the engine, check each slot. */
int main(void) {
  uint16_t port = 0;
  int lfd = silent_listener(&port);
  if (lfd < 0)
    return 1;
  char err[256];
  struct sp_engine *eng = sp_engine_new(err, sizeof(err));
  if (!eng) {
    fprintf(stderr, "timers_test: %s\n", err);
    return 1;
  }
  static struct slot slots[NBATCH];
  /* submitted in an order unlike their deadlines', so the heap has to
   * order them: the later half longest first, then the earlier half */
  for (int k = 0; k < NBATCH; k++) {
    int i = k < NBATCH / 2 ? NBATCH - 1 - k : k - NBATCH / 2;
    struct slot *s = &slots[i];
    s->timeout = T_MIN + (T_MAX - T_MIN) * i / (NBATCH - 1);
    s->starttls = i % 2 == 1;
    s->elapsed = -1;
    struct sp_request req;
    sp_request_init(&req);
    req.host = LISTEN_ADDR;
    req.timeout_s = s->timeout;
    if (sp_request_add_port(
            &req, port, s->starttls ? SP_TLS_STARTTLS : SP_TLS_NONE,
            s->starttls ? SP_ROLE_SUBMISSION : SP_ROLE_DEFAULT) != 0) {
      fprintf(stderr, "timers_test: cannot add port %u\n", (unsigned)port);
      return 1;
    }
    s->t_submit = now_s();
    if (sp_engine_submit(eng, &req, on_done, s, err, sizeof(err)) != 0) {
      fprintf(stderr, "timers_test: submit: %s\n", err);
      return 1;
    }
  }
  sp_engine_run(eng);
  int failures = 0;
  for (int i = 0; i < NBATCH; i++) {
    const struct slot *s = &slots[i];
    enum sp_code want = SP_BANNER_TIMEOUT; /* no greeting, either way */
    bool ok = s->elapsed >= s->timeout - 0.005 &&
              s->elapsed <= s->timeout + SLACK_S && s->code == want;
    if (!ok) {
      failures++;
      printf("FAIL request %d (%s, timeout %.3fs): ended after %.3fs with %s "
             "(want %s within %.2fs): %s\n",
             i, s->starttls ? "starttls" : "plain", s->timeout, s->elapsed,
             sp_code_name(s->code), sp_code_name(want), SLACK_S, s->detail);
    }
  }
  if (sp_engine_inflight(eng) != 0) {
    failures++;
    printf("FAIL in-flight gauge is %d after the run, want 0\n",
           sp_engine_inflight(eng));
  }
  sp_engine_free(eng);
  close(lfd);
  printf("%s: %d requests, timeouts %.2f..%.2fs, %d failure(s)\n",
         failures ? "FAIL" : "PASS", NBATCH, T_MIN, T_MAX, failures);
  return failures ? 1 : 0;
}
