/*
 * plugin_internal.h - the collectd plugin's internals (plugin.c), shared
 * with its cmocka tests (tests/unit_collectd). Nothing here is exported
 * from smtp_probe.so: only module_register is.
 */
#ifndef SPC_PLUGIN_INTERNAL_H
#define SPC_PLUGIN_INTERNAL_H

#include "collectd.h"

#include "plugin.h"

#include <pthread.h>

#include "smtp_probe.h"

#define SPC_PLUGIN "smtp_probe" /* plugin name in every identifier */
#define SPC_MAX_NAME 64         /* target name, with its NUL */
#define SPC_MAX_ERR 512         /* one configuration error message */
#define SPC_MAX_VALUE 4352      /* one option's value as text, with its NUL */
#define SPC_MAX_STATES (SP_MAX_PORTS * SP_MAX_ADDRESSES) /* per target */
#define SPC_MAX_SECRET 512   /* bytes of a password, with its NUL */
#define SPC_MAX_DEVIATIONS 8 /* policy deviations kept per result */

/* The last state seen for one target-port (and address). */
struct spc_state {
  bool used;           /* the slot holds a target-port */
  uint16_t port;       /* the port */
  char address[64];    /* the address with AllAddresses, else "" */
  enum sp_state state; /* last state dispatched */
  enum sp_code code;   /* last diagnosis dispatched */
  uint64_t seen;       /* round in which it was last seen (slot reuse) */
  uint64_t deviations[SPC_MAX_DEVIATIONS]; /* hashes of the policy
                                              deviations (rule, detail)
                                              last notified */
  int ndeviations;                         /* how many of deviations[] */
};

/* One <Target> block: its request, its read schedule, its last round. */
struct spc_target {
  char name[SPC_MAX_NAME];  /* the block's name, safe for instance names */
  char **texts;             /* the values' texts (owned): the request's
                               strings point into them */
  size_t ntexts;            /* how many texts[] holds */
  const char *auth_file;    /* AuthPasswordFile (in texts) or NULL */
  char *auth_secret;        /* the password read from it (owned, wiped on
                               free, never logged) or NULL */
  const char *policy_file;  /* PolicyFile (in texts) or NULL */
  struct sp_policy *policy; /* the loaded policy (owned) or NULL */
  struct sp_request req;    /* the request, set through sp_request_set */
  cdtime_t interval;        /* this block's read interval */

  pthread_mutex_t lock;  /* guards in_flight, done and done_time */
  bool in_flight;        /* a round is submitted and not yet done */
  struct sp_batch *done; /* last completed round, not yet dispatched */
  cdtime_t done_time;    /* when that round completed */

  uint64_t rounds; /* rounds dispatched so far (read thread only) */
  char recommended[SP_MAX_TEXT]; /* the recommendation last notified, ""
                                    before the first (read thread) */
  struct spc_state states[SPC_MAX_STATES]; /* per instance (read thread) */

  struct spc_target *next; /* next configured target */
};

/* collectd's complex-config callback for <Plugin smtp_probe>. */
int spc_config(oconfig_item_t *ci);

/* Parse one <Target> block; NULL with a message naming block and key. */
struct spc_target *spc_target_parse(const oconfig_item_t *ci,
                                    cdtime_t default_interval, char *err,
                                    size_t errlen);

/* The i-th key a <Target> block accepts (the name map's, then the
 * plugin's own), NULL past the end: for the docs test. */
const char *spc_key_at(size_t i);

/* Free one target and anything it still holds. */
void spc_target_free(struct spc_target *t);

/* The configured targets, in configuration order (tests look at them). */
struct spc_target *spc_targets(void);

/* collectd's init callback: start the engine, register the reads. */
int spc_init(void);

/* collectd's read callback for one target. */
int spc_read(user_data_t *ud);

/* collectd's shutdown callback: stop the engine, free everything. */
int spc_shutdown(void);

/* The engine's completion callback for one target's round. */
void spc_done(struct sp_batch *batch, void *user);

/* Dispatch the values and notifications of one completed round. With a
 * PolicyFile the results are checked against the policy first (which turns
 * a deviating result into policy_violation). */
void spc_dispatch_batch(struct spc_target *t, struct sp_batch *batch,
                        cdtime_t when);

/* The plugin_instance for one result: "<target>-<port>", plus
 * "-<address>" (':' and other unsafe bytes as '_') when with_address and
 * the result has an address; -1 when it does not fit. */
int spc_instance_name(const char *target, const struct sp_result *res,
                      bool with_address, char *buf, size_t buflen);

#endif /* SPC_PLUGIN_INTERNAL_H */
