/*
 * exporter.c - the exporter's shared state (see exporter.h).
 */
#include "exporter.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum log_level exporter_log_level = XLOG_INFO;

/* Level words as they appear in the log and in --log.level. */
static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* Parse a log level word; -1 when unknown. */
int exporter_log_level_from_name(const char *name) {
  for (int i = 0; i <= XLOG_DEBUG; i++)
    if (strcmp(name, level_names[i]) == 0)
      return i;
  return -1;
}

/* Log one logfmt line to stderr when level is enabled. */
void exporter_log(enum log_level level, const char *fmt, ...) {
  if (level > exporter_log_level)
    return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  for (char *p = msg; *p; p++) /* keep one line, no quote breaking out */
    if ((unsigned char)*p < 0x20 || *p == '"')
      *p = (*p == '"') ? '\'' : ' ';
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char when[32];
  strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
  fprintf(stderr, "ts=%s.%03ldZ caller=smtp_exporter level=%s msg=\"%s\"\n",
          when, ts.tv_nsec / 1000000, level_names[level], msg);
}

/* Seconds on the monotonic clock. */
double exporter_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Set up the shared state with max_concurrent probe slots. */
void exporter_init(struct exporter *ex, int max_concurrent) {
  memset(ex, 0, sizeof(*ex));
  pthread_mutex_init(&ex->config_lock, NULL);
  pthread_mutex_init(&ex->reload_lock, NULL);
  pthread_mutex_init(&ex->slot_lock, NULL);
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&ex->slot_cond, &attr);
  pthread_condattr_destroy(&attr);
  ex->slots_free = max_concurrent;
  ex->timeout_offset_s = 0.5;
  stats_init(&ex->stats, max_concurrent);
}

/* Drop one reference; the caller holds config_lock. Frees at zero. */
static void put_locked(struct module_set *set) {
  if (set != NULL && --set->refs == 0)
    modules_free(set);
}

/* (Re)load the configuration file (see exporter.h). */
int exporter_reload(struct exporter *ex, char *err, size_t errlen) {
  pthread_mutex_lock(&ex->reload_lock);
  struct module_set *set = modules_load(ex->config_file, err, errlen);
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  pthread_mutex_lock(&ex->stats.lock);
  ex->stats.reload_ok = set != NULL;
  if (set != NULL) {
    ex->stats.reload_success_ts = (double)now.tv_sec;
    ex->stats.nconfig_modules = set->nmodules;
  }
  pthread_mutex_unlock(&ex->stats.lock);
  if (set != NULL) {
    set->refs = 1; /* the exporter's own reference */
    pthread_mutex_lock(&ex->config_lock);
    struct module_set *old = ex->modules;
    ex->modules = set;
    put_locked(old);
    pthread_mutex_unlock(&ex->config_lock);
    exporter_log(XLOG_INFO, "loaded configuration file %s (%d modules)",
                 ex->config_file, set->nmodules);
    if (set->warning[0] != '\0')
      exporter_log(XLOG_WARN, "%s: %s", ex->config_file, set->warning);
  } else {
    exporter_log(XLOG_ERROR, "configuration rejected%s: %s",
                 ex->modules != NULL ? ", keeping the old one"
                                     : " (--config.file), nothing to run",
                 err);
  }
  pthread_mutex_unlock(&ex->reload_lock);
  return set != NULL ? 0 : -1;
}

/* Take a reference on the current configuration. */
struct module_set *exporter_modules_get(struct exporter *ex) {
  pthread_mutex_lock(&ex->config_lock);
  struct module_set *set = ex->modules;
  if (set != NULL)
    set->refs++;
  pthread_mutex_unlock(&ex->config_lock);
  return set;
}

/* Drop a reference taken with exporter_modules_get. */
void exporter_modules_put(struct exporter *ex, struct module_set *set) {
  pthread_mutex_lock(&ex->config_lock);
  put_locked(set);
  pthread_mutex_unlock(&ex->config_lock);
}

/* Wait for a probe slot until the monotonic deadline (see exporter.h). */
bool exporter_slot_acquire(struct exporter *ex, double deadline) {
  struct timespec ts;
  double whole = floor(deadline);
  ts.tv_sec = (time_t)whole;
  ts.tv_nsec = (long)((deadline - whole) * 1e9);
  if (ts.tv_nsec >= 1000000000L)
    ts.tv_nsec = 999999999L;
  bool counted_waiting = false;
  pthread_mutex_lock(&ex->slot_lock);
  while (ex->slots_free == 0) {
    if (!counted_waiting) {
      pthread_mutex_lock(&ex->stats.lock);
      ex->stats.waiting++;
      pthread_mutex_unlock(&ex->stats.lock);
      counted_waiting = true;
    }
    int rc = pthread_cond_timedwait(&ex->slot_cond, &ex->slot_lock, &ts);
    if (rc == ETIMEDOUT && ex->slots_free == 0)
      break;
  }
  bool got = ex->slots_free > 0;
  if (got)
    ex->slots_free--;
  pthread_mutex_unlock(&ex->slot_lock);
  pthread_mutex_lock(&ex->stats.lock);
  if (counted_waiting)
    ex->stats.waiting--;
  if (got)
    ex->stats.inflight++;
  pthread_mutex_unlock(&ex->stats.lock);
  return got;
}

/* Give a probe slot back. */
void exporter_slot_release(struct exporter *ex) {
  pthread_mutex_lock(&ex->stats.lock);
  ex->stats.inflight--;
  pthread_mutex_unlock(&ex->stats.lock);
  pthread_mutex_lock(&ex->slot_lock);
  ex->slots_free++;
  pthread_cond_signal(&ex->slot_cond);
  pthread_mutex_unlock(&ex->slot_lock);
}
