/*
 * exporter.h - the exporter's shared state: the loaded modules (swapped
 * whole on reload, reference-counted), the probe slots that cap
 * concurrency, the self-metrics and the log.
 */
#ifndef SMTP_EXPORTER_EXPORTER_H
#define SMTP_EXPORTER_EXPORTER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "history.h"
#include "metrics.h"
#include "modules.h"
#include "smtp_probe.h"

/* The exporter's default listen port (blackbox_exporter uses 9115). */
#define EXPORTER_DEFAULT_PORT 9587

/* Log levels, least to most verbose. */
enum log_level { XLOG_ERROR, XLOG_WARN, XLOG_INFO, XLOG_DEBUG };

struct web_config;

/* Everything the HTTP handlers share. */
struct exporter {
  struct sp_engine *engine;     /* the one probe engine (own thread) */
  const char *config_file;      /* --config.file */
  double timeout_offset_s;      /* subtracted from the scrape timeout */
  pthread_mutex_t config_lock;  /* guards modules and its refs */
  struct module_set *modules;   /* the current configuration */
  pthread_mutex_t reload_lock;  /* one reload at a time */
  pthread_mutex_t slot_lock;    /* guards slots_free */
  pthread_cond_t slot_cond;     /* signalled when a slot frees */
  int slots_free;               /* probe slots not taken */
  struct exporter_stats stats;  /* counters for /metrics */
  const struct web_config *web; /* TLS and basic auth, or NULL: none */
  unsigned idle_timeout_s;      /* --web.idle-timeout */
  struct history history;       /* the recent probes (--history.limit) */
};

/* The verbosity of the log (set from --log.level). */
extern enum log_level exporter_log_level;

/* Log one logfmt line to stderr when level is enabled. */
void exporter_log(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parse a log level word; -1 when unknown. */
int exporter_log_level_from_name(const char *name);

/* Set up the shared state with max_concurrent probe slots. */
void exporter_init(struct exporter *ex, int max_concurrent);

/* (Re)load the configuration file. A bad file is rejected and the old
 * configuration kept. Returns 0, or -1 with a message in err. */
int exporter_reload(struct exporter *ex, char *err, size_t errlen);

/* Take a reference on the current configuration (never NULL once loaded). */
struct module_set *exporter_modules_get(struct exporter *ex);

/* Drop a reference taken with exporter_modules_get. */
void exporter_modules_put(struct exporter *ex, struct module_set *set);

/* Wait for a probe slot until the monotonic deadline (seconds). Returns
 * true with a slot taken, false when the deadline passed. */
bool exporter_slot_acquire(struct exporter *ex, double deadline);

/* Give a probe slot back. */
void exporter_slot_release(struct exporter *ex);

/* Seconds on the monotonic clock. */
double exporter_now(void);

#endif /* SMTP_EXPORTER_EXPORTER_H */
