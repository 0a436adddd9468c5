/*
 * check_smtp_ports.c - Nagios/Icinga plugin: probe a mail server's SMTP
 * ports with the smtp-probe engine and report one state.
 *
 * Flow: options -> request -> engine -> output -> exit code.
 * All SMTP and TLS work is in the core library (common/smtp_probe.h).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "options.h"
#include "output.h"
#include "smtp_probe.h"

/* Seconds the safety alarm allows past the engine's own deadline. */
#define ALARM_GRACE_S 5

/* Policy deviations reported at most (every port can fail every rule). */
#define SP_MAX_DEVIATIONS (SP_MAX_PORTS * 6)

/* State the safety alarm exits with (set before the alarm is armed). */
static volatile sig_atomic_t alarm_state = SP_STATE_CRITICAL;

/* Last resort when the engine overruns its deadline: say so and exit. */
static void on_alarm(int sig) {
  static const char *const msgs[] = {
      "SMTP OK - plugin timed out (engine overran its deadline)\n",
      "SMTP WARNING - plugin timed out (engine overran its deadline)\n",
      "SMTP CRITICAL - plugin timed out (engine overran its deadline)\n",
      "SMTP UNKNOWN - plugin timed out (engine overran its deadline)\n"};
  int st = alarm_state;
  ssize_t w;

  (void)sig;
  if (st < 0 || st > 3)
    st = SP_STATE_CRITICAL;
  w = write(STDOUT_FILENO, msgs[st], strlen(msgs[st]));
  (void)w;
  _exit(st);
}

/* Print an UNKNOWN line with a message and the usage line; return 3. */
static int unknown(const char *msg, bool usage) {
  printf("SMTP UNKNOWN - %s\n", msg);
  if (usage)
    fputs(opts_usage(), stdout);
  return SP_STATE_UNKNOWN;
}

/* Arm the safety alarm a little after the engine's deadline. */
static void arm_alarm(const struct check_opts *o) {
  struct sigaction sa;
  /* the timeout rounded up (at most 3600 s: validated) */
  unsigned secs = (unsigned)o->req.timeout_s;

  if (secs < o->req.timeout_s)
    secs++;
  secs += ALARM_GRACE_S;

  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_alarm;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGALRM, &sa, NULL);
  alarm_state = o->timeout_state;
  alarm(secs);
}

/* Compare the app settings with each result of their port: a mismatch
 * becomes tls_mode_mismatch with the fix as its detail; an ok port's
 * verdict goes on the first line after it. */
static void app_verdicts(struct check_opts *o, struct sp_batch *batch) {
  for (int i = 0; i < batch->nresults; i++) {
    struct sp_app_verdict v;
    sp_app_verdict(&o->app_settings, &batch->results[i], &v);
    sp_app_apply(&v, &batch->results[i]);
    if (batch->results[i].code == SP_OK && !o->app_verdict[0])
      snprintf(o->app_verdict, sizeof(o->app_verdict), "%s", v.text);
  }
}

/* The SRV records --domain-submission found, a line each, and what was
 * left out. */
static void srv_lines(const struct check_opts *o) {
  const struct sp_srv_service *svc[2] = {&o->srv.submissions,
                                         &o->srv.submission};
  static const char *const names[2] = {"_submissions", "_submission"};
  for (int k = 0; k < 2; k++) {
    const struct sp_srv_record *best = sp_srv_best(svc[k]);
    printf("srv: %s._tcp.%s: ", names[k], o->srv.domain);
    if (best)
      printf("%s port %u (priority %u, weight %u%s)\n", best->target,
             (unsigned)best->port, (unsigned)best->priority,
             (unsigned)best->weight,
             svc[k]->n > 1 ? ", the best of several" : "");
    else
      printf("%s\n", svc[k]->none ? "\".\" (no service)" : "no record");
  }
  printf("srv: the certificate is verified for %s (RFC 6186 section 6)\n",
         o->req.sni ? o->req.sni : o->srv.domain);
  if (o->srv_text[0])
    printf("srv: %s\n", o->srv_text);
}

/* Options, request, engine, output, exit. */
int main(int argc, char **argv) {
  struct check_opts opts;
  struct sp_engine *eng;
  struct sp_batch *batch;
  enum sp_state state = SP_STATE_UNKNOWN;
  char err[256];
  char *text;

  switch (opts_parse(argc, argv, &opts, err, sizeof(err))) {
  case OPTS_HELP:
    fputs(opts_help(), stdout);
    return SP_STATE_UNKNOWN;
  case OPTS_VERSION:
    printf("check_smtp_ports v%s\n", SP_VERSION);
    return SP_STATE_UNKNOWN;
  case OPTS_ERROR:
    opts_free(&opts);
    return unknown(err, true);
  case OPTS_RUN:
    break;
  }

  if (opts.srv_none) { /* the domain says it offers no submission */
    printf("SMTP CRITICAL - %s\n", opts.srv_text);
    opts_free(&opts);
    return SP_STATE_CRITICAL;
  }
  arm_alarm(&opts);
  sp_oneshot_process();
  eng = sp_engine_new(err, sizeof(err));
  if (eng == NULL) {
    opts_free(&opts);
    return unknown(err, false);
  }
  batch = sp_probe_wait(eng, &opts.req, err, sizeof(err));
  if (batch == NULL) {
    sp_engine_free(eng);
    opts_free(&opts);
    return unknown(err, false);
  }
  struct sp_deviation dev[SP_MAX_DEVIATIONS];
  int ndev = opts.policy
                 ? sp_policy_check(opts.policy, batch, dev, SP_MAX_DEVIATIONS)
                 : 0;
  if (opts.app) /* the app settings' verdict is the port's detail */
    app_verdicts(&opts, batch);
  if (opts.policy || opts.app) /* codes may have changed */
    sp_recommend(batch, &batch->recommendation);
  text = output_build(&opts, batch->results, batch->nresults,
                      &batch->recommendation, time(NULL), &state);
  sp_batch_free(batch);
  sp_engine_free(eng);
  alarm(0);
  if (text == NULL) {
    opts_free(&opts);
    return unknown("out of memory while formatting the output", false);
  }
  fputs(text, stdout);
  free(text);
  for (int i = 0; i < ndev; i++)
    printf("policy_violation: port %u rule %s: %s\n", (unsigned)dev[i].port,
           dev[i].rule, dev[i].detail);
  if (opts.app)
    printf("app settings: %s reads %s as %s to %s port %u\n",
           sp_app_framework_name(opts.app_settings.framework),
           opts.app_settings.said, sp_app_tls_name(opts.app_settings.tls),
           opts.req.host, (unsigned)opts.app_settings.port);
  if (opts.srv_domain)
    srv_lines(&opts);
  if (opts.secret_warning[0])
    printf("note: %s\n", opts.secret_warning);
  opts_free(&opts);
  return (int)state;
}
