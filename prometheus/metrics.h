/*
 * metrics.h - what the exporter exposes: probe results turned into
 * samples (/probe), and the exporter's own counters and process metrics
 * (/metrics). Metric names are a contract, documented in USAGE.md.
 */
#ifndef SMTP_EXPORTER_METRICS_H
#define SMTP_EXPORTER_METRICS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "exposition.h"
#include "smtp_probe.h"

/* Module names the probe counters remember (later names are folded). */
#define STATS_MAX_MODULES 256

/* Probe counts of one module name, by diagnosis code. */
struct module_counts {
  char name[64];                 /* module name */
  uint64_t codes[SP_CODE_COUNT]; /* probes that ended with each code */
};

/* The exporter's own state for /metrics; every field under lock. */
struct exporter_stats {
  pthread_mutex_t lock;                            /* guards everything below */
  struct module_counts modules[STATS_MAX_MODULES]; /* per-module counts */
  int nmodules;             /* how many of modules[] are used */
  uint64_t requests_200;    /* /probe answered 200 */
  uint64_t requests_400;    /* /probe answered 400 */
  uint64_t requests_403;    /* /probe refused: target not allowed */
  uint64_t requests_503;    /* /probe rejected: no slot in time */
  uint64_t requests_500;    /* /probe failed inside the exporter */
  uint64_t unauthorized;    /* requests answered 401 (basic auth) */
  int inflight;             /* /probe requests holding a slot */
  int waiting;              /* /probe requests waiting for a slot */
  int max_concurrent;       /* the slot count (--probe.max-concurrent) */
  bool reload_ok;           /* the last (re)load succeeded */
  double reload_success_ts; /* time of the last good (re)load */
  int nconfig_modules;      /* modules in the loaded configuration */
};

/* Set up the stats; max_concurrent is the slot count. */
void stats_init(struct exporter_stats *st, int max_concurrent);

/* Count one finished probe (one result) of a module. */
void stats_count_probe(struct exporter_stats *st, const char *module,
                       enum sp_code code);

/* Declare the /probe families and add the samples of every result of a
 * batch. Returns 0, or -1 when the writer refused something. */
int metrics_probe(struct expo_set *set, const struct sp_batch *batch);

/* Add one smtp_probe_policy_deviation_info sample per port and rule of
 * the deviations (sp_policy_check). */
int metrics_policy(struct expo_set *set, const struct sp_deviation *devs,
                   int ndevs);

/* Versions named by smtp_exporter_build_info. */
struct build_versions {
  const char *version;       /* smtp-probe version */
  const char *libmicrohttpd; /* MHD_get_version() */
  const char *libyaml;       /* yaml_get_version_string() */
};

/* Add the exporter's own metrics: build info, counters, gauges, reload
 * status, the engine's in-flight count. */
int metrics_self(struct expo_set *set, struct exporter_stats *st,
                 const struct build_versions *versions, int engine_inflight);

/* Remember the start time (call once at start-up): process_start_time_seconds
 * falls back to it when /proc/stat is hidden (systemd ProcSubset=pid). */
void metrics_note_start(void);

/* Add process_* metrics read from /proc/self (CPU, memory, fds, start). */
int metrics_process(struct expo_set *set);

#endif /* SMTP_EXPORTER_METRICS_H */
