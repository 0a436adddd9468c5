/*
 * history.h - the recent probes, as blackbox_exporter's landing page
 * lists them (history.c): a bounded ring of the last N /probe requests,
 * each with its time, module, target, per-port verdicts, duration and the
 * log the debug page shows (secrets masked), so that "why did this alert
 * fire?" can be answered after the fact without probing again.
 */
#ifndef SMTP_EXPORTER_HISTORY_H
#define SMTP_EXPORTER_HISTORY_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "debug.h"
#include "smtp_probe.h"

#define HISTORY_DEFAULT_LIMIT 100 /* --history.limit, as blackbox's */
#define HISTORY_MAX_LIMIT 10000   /* its upper bound */
#define HISTORY_LOG_CAP 65536     /* bytes of one probe's log kept */
#define HISTORY_PORTS 512         /* bytes of the per-port verdicts */

/* One probe in the ring. */
struct history_entry {
  uint64_t id;               /* unique, rising; 0: an empty slot */
  time_t when;               /* when it ended (wall clock) */
  char module[64];           /* the module's name */
  char target[256];          /* the target as asked (sanitised) */
  char ports[HISTORY_PORTS]; /* "587 ok OK; 465 tls_mode_mismatch CRITICAL" */
  int state;                 /* the worst port's enum sp_state */
  double duration_s;         /* the probe's total time */
  char *log;                 /* the debug page text (owned), or NULL */
  size_t log_len;            /* its length */
  struct debug_record *rec;  /* or the page in parts (owned), or NULL */
};

/* The ring. */
struct history {
  pthread_mutex_t lock;          /* guards everything below */
  struct history_entry *entries; /* limit slots */
  int limit;                     /* how many are kept (0: none) */
  int next;                      /* the slot the next probe takes */
  uint64_t last_id;              /* the id given last */
};

/* Set up a ring of limit entries (0: keep nothing). 0, or -1. */
int history_init(struct history *h, int limit);

/* Free the ring and every log in it. */
void history_free(struct history *h);

/* Keep one finished probe: the log is copied (cut at HISTORY_LOG_CAP);
 * the oldest entry goes when the ring is full. */
void history_add(struct history *h, const char *module, const char *target,
                 const struct sp_batch *batch, double duration_s,
                 const char *log, size_t log_len);

/* Keep one finished probe with its log in parts, rendered only when
 * history_log asks (debug_record_new: the trail, malloc'd, and the
 * batch's transcripts are taken); history_log then serves what
 * history_add would have kept of debug_page(trail, batch, NULL). */
void history_add_probe(struct history *h, const char *module,
                       const char *target, struct sp_batch *batch,
                       double duration_s, char *trail);

/* The entries newest first, as HTML table rows (every text escaped). */
void history_rows(struct history *h, struct sp_buf *out);

/* The stored log of entry id into out; false when it is gone. */
bool history_log(struct history *h, uint64_t id, struct sp_buf *out);

#endif /* SMTP_EXPORTER_HISTORY_H */
