/*
 * test_collectd_plugin.c - cmocka tests of the collectd plugin: every bad
 * configuration input, the init/read/shutdown life cycle, and the value
 * lists and notifications built from results.
 *
 * collectd's daemon functions are stubbed below (Debian ships no plugin
 * mock); the engine is replaced with --wrap so no probe runs: the tests
 * play the engine and call the plugin's completion callback themselves.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "plugin_internal.h"

/* ---- Stubs of the collectd daemon ------------------------------------- */

#define MAX_LOG 64
#define MAX_VALUES 512
#define MAX_NOTIFS 64
#define MAX_READS 16

/* What the plugin handed to the stubbed daemon. */
static struct {
  char log[MAX_LOG][1024];            /* plugin_log messages */
  int nlog;                           /* how many */
  value_list_t values[MAX_VALUES];    /* dispatched value lists */
  double gauges[MAX_VALUES];          /* their (single) values */
  int nvalues;                        /* how many stored */
  int values_total;                   /* how many dispatched */
  notification_t notifs[MAX_NOTIFS];  /* dispatched notifications */
  int nnotifs;                        /* how many stored */
  int notifs_total;                   /* how many dispatched */
  char read_names[MAX_READS][128];    /* registered read callbacks */
  char read_groups[MAX_READS][128];   /* their groups */
  cdtime_t read_intervals[MAX_READS]; /* their intervals */
  user_data_t read_uds[MAX_READS];    /* their user data */
  int nreads;                         /* how many */
  int config_registered;              /* register_complex_config calls */
  int init_registered;                /* register_init calls */
  int shutdown_registered;            /* register_shutdown calls */
} cd;

char *hostname_g = "testhost"; /* collectd's global host name */
static cdtime_t fake_now;      /* what cdtime() returns */
static cdtime_t fake_interval; /* what plugin_get_interval() returns */

/* Record a log message. */
void plugin_log(int level, const char *format, ...) {
  (void)level;
  if (cd.nlog >= MAX_LOG)
    return;
  va_list ap;
  va_start(ap, format);
  vsnprintf(cd.log[cd.nlog++], sizeof(cd.log[0]), format, ap);
  va_end(ap);
}

/* Record the config callback registration. */
int plugin_register_complex_config(const char *type,
                                   int (*callback)(oconfig_item_t *)) {
  assert_string_equal(type, "smtp_probe");
  assert_ptr_equal(callback, spc_config);
  cd.config_registered++;
  return 0;
}

/* Record the init callback registration. */
int plugin_register_init(const char *name, plugin_init_cb callback) {
  assert_string_equal(name, "smtp_probe");
  assert_ptr_equal(callback, spc_init);
  cd.init_registered++;
  return 0;
}

/* Record the shutdown callback registration. */
int plugin_register_shutdown(const char *name, plugin_shutdown_cb callback) {
  assert_string_equal(name, "smtp_probe");
  assert_ptr_equal(callback, spc_shutdown);
  cd.shutdown_registered++;
  return 0;
}

/* Record a read callback registration. */
int plugin_register_complex_read(const char *group, const char *name,
                                 plugin_read_cb callback, cdtime_t interval,
                                 user_data_t const *user_data) {
  assert_ptr_equal(callback, spc_read);
  assert_true(cd.nreads < MAX_READS);
  snprintf(cd.read_groups[cd.nreads], sizeof(cd.read_groups[0]), "%s", group);
  snprintf(cd.read_names[cd.nreads], sizeof(cd.read_names[0]), "%s", name);
  cd.read_intervals[cd.nreads] = interval;
  cd.read_uds[cd.nreads] = *user_data;
  cd.nreads++;
  return 0;
}

/* Record a dispatched value list (copying its single value). */
int plugin_dispatch_values(value_list_t const *vl) {
  assert_int_equal(vl->values_len, 1);
  assert_non_null(vl->values);
  cd.values_total++;
  if (cd.nvalues >= MAX_VALUES)
    return 0;
  cd.values[cd.nvalues] = *vl;
  cd.values[cd.nvalues].values = NULL;
  cd.gauges[cd.nvalues] = vl->values[0].gauge;
  cd.nvalues++;
  return 0;
}

/* Record a dispatched notification. */
int plugin_dispatch_notification(const notification_t *notif) {
  cd.notifs_total++;
  if (cd.nnotifs < MAX_NOTIFS)
    cd.notifs[cd.nnotifs++] = *notif;
  return 0;
}

/* The fake clock. */
cdtime_t cdtime(void) {
  return fake_now;
}

/* The fake global interval. */
cdtime_t plugin_get_interval(void) {
  return fake_interval;
}

/* collectd's bounded string copy. */
char *sstrncpy(char *dest, const char *src, size_t n) {
  snprintf(dest, n, "%s", src);
  return dest;
}

/* ---- The engine, played by the tests ---------------------------------- */

/* What the plugin asked of the engine. */
static struct {
  int news, starts, stops, frees; /* life-cycle calls */
  int submits;                    /* sp_engine_submit calls */
  int fail_submit;                /* make the next submit fail */
  int fail_new;                   /* make sp_engine_new fail */
  sp_done_fn last_done;           /* callback of the last submit */
  void *last_user;                /* its user pointer */
  struct sp_request last_req;     /* the last request submitted */
  int batch_frees;                /* sp_batch_free calls */
} eng;

static int fake_engine_object; /* what sp_engine_new hands out */

/* Stand-in for sp_engine_new. */
struct sp_engine *__wrap_sp_engine_new(char *err, size_t errlen) {
  eng.news++;
  if (eng.fail_new) {
    snprintf(err, errlen, "no engine today");
    return NULL;
  }
  return (struct sp_engine *)&fake_engine_object;
}

/* Stand-in for sp_engine_start. */
int __wrap_sp_engine_start(struct sp_engine *e) {
  assert_ptr_equal(e, &fake_engine_object);
  eng.starts++;
  return 0;
}

/* Stand-in for sp_engine_stop. */
void __wrap_sp_engine_stop(struct sp_engine *e) {
  assert_ptr_equal(e, &fake_engine_object);
  eng.stops++;
}

/* Stand-in for sp_engine_free. */
void __wrap_sp_engine_free(struct sp_engine *e) {
  assert_ptr_equal(e, &fake_engine_object);
  eng.frees++;
}

/* Stand-in for sp_engine_submit: remember the request and callback. */
int __wrap_sp_engine_submit(struct sp_engine *e, const struct sp_request *req,
                            sp_done_fn done, void *user, char *err,
                            size_t errlen) {
  assert_ptr_equal(e, &fake_engine_object);
  eng.submits++;
  if (eng.fail_submit) {
    eng.fail_submit = 0;
    snprintf(err, errlen, "queue full");
    return -1;
  }
  eng.last_done = done;
  eng.last_user = user;
  eng.last_req = *req;
  return 0;
}

/* Stand-in for sp_batch_free: the tests' batches are two callocs. */
void __wrap_sp_batch_free(struct sp_batch *batch) {
  eng.batch_frees++;
  if (batch == NULL)
    return;
  free(batch->results);
  free(batch);
}

/* ---- Helpers ---------------------------------------------------------- */

#define SV(x)                                                                  \
  { .value = {.string = (char *)(x)}, .type = OCONFIG_TYPE_STRING }
#define NV(x)                                                                  \
  { .value = {.number = (x)}, .type = OCONFIG_TYPE_NUMBER }
#define BV(x)                                                                  \
  { .value = {.boolean = (x)}, .type = OCONFIG_TYPE_BOOLEAN }

/* One option line of a test block. */
struct opt {
  const char *key;       /* option name; NULL ends a list */
  int n;                 /* values used */
  oconfig_value_t v[20]; /* its values */
};

/* Storage for built config trees (freed by reset). */
static oconfig_item_t *built[64];
static int nbuilt;

/* Build an item with values and children (children copied by value). */
static oconfig_item_t *item(const char *key, const oconfig_value_t *vals,
                            int nvals, oconfig_item_t *children,
                            int nchildren) {
  assert_true(nbuilt < 64);
  oconfig_item_t *it = calloc(1, sizeof(*it));
  assert_non_null(it);
  built[nbuilt++] = it;
  it->key = (char *)key;
  it->values = (oconfig_value_t *)vals;
  it->values_num = nvals;
  it->children = children;
  it->children_num = nchildren;
  return it;
}

/* Build a <Target name> block from a base option list plus extra options;
 * an extra option with the same key as a base one replaces it, and a base
 * key listed in drop is left out. */
static oconfig_item_t *target_block(const oconfig_value_t *name, int nnames,
                                    const struct opt *base,
                                    const struct opt *extra, const char *drop) {
  static oconfig_item_t children[64][40];
  static int nblocks;
  oconfig_item_t *kids = children[nblocks++ % 64];
  int n = 0;
  for (const struct opt *o = base; o != NULL && o->key != NULL; o++) {
    bool replaced = false;
    for (const struct opt *e = extra; e != NULL && e->key != NULL; e++)
      replaced = replaced || strcasecmp(e->key, o->key) == 0;
    if (replaced || (drop != NULL && strcasecmp(drop, o->key) == 0))
      continue;
    kids[n++] = (oconfig_item_t){.key = (char *)o->key,
                                 .values = (oconfig_value_t *)o->v,
                                 .values_num = o->n};
  }
  for (const struct opt *e = extra; e != NULL && e->key != NULL; e++) {
    kids[n++] = (oconfig_item_t){.key = (char *)e->key,
                                 .values = (oconfig_value_t *)e->v,
                                 .values_num = e->n};
  }
  return item("Target", name, nnames, kids, n);
}

/* A complete, valid block's options. */
static const struct opt good_opts[] = {
    {"Host", 1, {SV("mail.example.com")}},
    {"Port", 4, {NV(25), NV(465), NV(587), NV(2525)}},
    {"TLS", 1, {SV("starttls")}},
    {"Role", 1, {SV("submission")}},
    {"SNI", 1, {SV("mx.example.com")}},
    {"CAFile", 1, {SV("/etc/ssl/certs/ca-certificates.crt")}},
    {"Verify", 1, {BV(0)}},
    {"EHLO", 1, {SV("probe.example.net")}},
    {"AddressFamily", 1, {SV("ipv6")}},
    {"AllAddresses", 1, {BV(1)}},
    {"Source", 1, {SV("192.0.2.10")}},
    {"BannerWait", 1, {NV(2)}},
    {"DNSServer", 1, {SV("127.0.0.1:53")}},
    {"Timeout", 1, {NV(5)}},
    {"Interval", 1, {NV(30)}},
    {"CertWarningDays", 1, {NV(21)}},
    {"CertCriticalDays", 1, {NV(3)}},
    {NULL, 0, {{{0}, 0}}},
};

static const oconfig_value_t name_mx1[] = {SV("mx1")};

/* Parse a block; return the target (or NULL) and the error text. */
static struct spc_target *parse(oconfig_item_t *block, char *err,
                                size_t errlen) {
  err[0] = '\0';
  return spc_target_parse(block, fake_interval, err, errlen);
}

/* Forget everything the stubs recorded and free built trees. */
static int reset(void **state) {
  (void)state;
  spc_shutdown();
  memset(&cd, 0, sizeof(cd));
  memset(&eng, 0, sizeof(eng));
  for (int i = 0; i < nbuilt; i++)
    free(built[i]);
  nbuilt = 0;
  fake_now = TIME_T_TO_CDTIME_T_STATIC(1700000000);
  fake_interval = TIME_T_TO_CDTIME_T_STATIC(10);
  return 0;
}

/* True when some log message contains every given fragment. */
static bool logged(const char *a, const char *b) {
  for (int i = 0; i < cd.nlog; i++) {
    if (strstr(cd.log[i], a) != NULL && (b == NULL || strstr(cd.log[i], b)))
      return true;
  }
  return false;
}

/* A private directory for the password and policy files of the tests. */
static char tmpdir[] = "/tmp/spc-unit.XXXXXX";

/* The path of a file in tmpdir (a static buffer per slot 0..7). */
static const char *tmp_path(int slot, const char *name) {
  static char paths[8][128];
  snprintf(paths[slot], sizeof(paths[slot]), "%s/%s", tmpdir, name);
  return paths[slot];
}

/* Write a file in tmpdir with the given content and mode; its path. */
static const char *write_tmp(int slot, const char *name, const char *content,
                             mode_t mode) {
  const char *path = tmp_path(slot, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  assert_true(fputs(content, f) >= 0);
  assert_int_equal(fclose(f), 0);
  assert_int_equal(chmod(path, mode), 0);
  return path;
}

/* The test password: it must never show in a log line or notification. */
#define SECRET "s3cret-PW-7f1c"

/* True when the secret is in some log message or notification. */
static bool secret_leaked(void) {
  for (int i = 0; i < cd.nlog; i++)
    if (strstr(cd.log[i], SECRET) != NULL)
      return true;
  for (int i = 0; i < cd.nnotifs; i++)
    if (strstr(cd.notifs[i].message, SECRET) != NULL)
      return true;
  return false;
}

/* ---- Configuration tests ---------------------------------------------- */

/* module_register registers config, init and shutdown, nothing else. */
static void test_module_register(void **state) {
  (void)state;
  module_register();
  assert_int_equal(cd.config_registered, 1);
  assert_int_equal(cd.init_registered, 1);
  assert_int_equal(cd.shutdown_registered, 1);
  assert_int_equal(cd.nreads, 0);
}

/* Every key of the full block lands in the request. */
static void test_config_full_block(void **state) {
  (void)state;
  char err[SPC_MAX_ERR];
  struct spc_target *t =
      parse(target_block(name_mx1, 1, good_opts, NULL, NULL), err, sizeof(err));
  assert_non_null(t);
  assert_string_equal(err, "");
  assert_string_equal(t->name, "mx1");
  assert_string_equal(t->req.host, "mail.example.com");
  assert_int_equal(t->req.nports, 4);
  const uint16_t want[] = {25, 465, 587, 2525};
  for (int i = 0; i < 4; i++) {
    assert_int_equal(t->req.ports[i].port, want[i]);
    /* TLS and Role are request-wide (the core's); the engine applies them
     * to every port whose own is auto/default. */
    assert_int_equal(t->req.ports[i].tls_mode, SP_TLS_AUTO);
    assert_int_equal(t->req.ports[i].role, SP_ROLE_DEFAULT);
  }
  assert_int_equal(t->req.tls_mode, SP_TLS_STARTTLS);
  assert_int_equal(t->req.role, SP_ROLE_SUBMISSION);
  assert_string_equal(t->req.sni, "mx.example.com");
  assert_string_equal(t->req.cafile, "/etc/ssl/certs/ca-certificates.crt");
  assert_true(t->req.no_verify);
  assert_string_equal(t->req.ehlo_name, "probe.example.net");
  assert_int_equal(t->req.family, SP_FAMILY_IPV6);
  assert_true(t->req.all_addresses);
  assert_string_equal(t->req.source, "192.0.2.10");
  assert_true(t->req.banner_wait_s == 2.0);
  assert_string_equal(t->req.dns_server, "127.0.0.1:53");
  assert_true(t->req.timeout_s == 5.0);
  assert_int_equal(t->interval, TIME_T_TO_CDTIME_T_STATIC(30));
  assert_int_equal(t->req.cert_warn_days, 21);
  assert_int_equal(t->req.cert_crit_days, 3);
  spc_target_free(t);
}

/* A block with only Host gets the four ports, auto TLS, default roles,
 * the global interval, a timeout below it and (as in the core) no
 * certificate thresholds; keys are case-insensitive. */
static void test_config_defaults(void **state) {
  (void)state;
  char err[SPC_MAX_ERR];
  const struct opt only_host[] = {{"hOsT", 1, {SV("127.0.0.1")}},
                                  {NULL, 0, {{{0}, 0}}}};
  fake_interval = TIME_T_TO_CDTIME_T_STATIC(5);
  struct spc_target *t =
      parse(target_block(name_mx1, 1, only_host, NULL, NULL), err, sizeof(err));
  assert_non_null(t);
  assert_int_equal(t->req.nports, 4);
  assert_int_equal(t->req.ports[0].port, 25);
  assert_int_equal(t->req.ports[1].port, 465);
  assert_int_equal(t->req.ports[2].port, 587);
  assert_int_equal(t->req.ports[3].port, 2525);
  assert_int_equal(t->req.ports[0].tls_mode, SP_TLS_AUTO);
  assert_false(t->req.no_verify);
  assert_false(t->req.all_addresses);
  assert_int_equal(t->interval, TIME_T_TO_CDTIME_T_STATIC(5));
  assert_true(t->req.timeout_s > 0 && t->req.timeout_s < 5.0);
  assert_int_equal(t->req.cert_warn_days, -1);
  assert_int_equal(t->req.cert_crit_days, -1);
  spc_target_free(t);

  /* A long interval caps the default timeout at 10 s. */
  fake_interval = TIME_T_TO_CDTIME_T_STATIC(60);
  t = parse(target_block(name_mx1, 1, only_host, NULL, NULL), err, sizeof(err));
  assert_non_null(t);
  assert_true(t->req.timeout_s == 10.0);
  spc_target_free(t);
}

/* Repeated Port lines add up, a port listed again is ignored (the core's
 * rule); Verify takes yes/no strings too. */
static void test_config_port_lines_and_bool_words(void **state) {
  (void)state;
  char err[SPC_MAX_ERR];
  const struct opt opts[] = {{"Host", 1, {SV("127.0.0.1")}},
                             {"Port", 1, {NV(25)}},
                             {"Port", 3, {NV(587), NV(10025), NV(25)}},
                             {"Verify", 1, {SV("no")}},
                             {"Role", 1, {SV("relay")}},
                             {"TLS", 1, {SV("none")}},
                             {NULL, 0, {{{0}, 0}}}};
  struct spc_target *t =
      parse(target_block(name_mx1, 1, opts, NULL, NULL), err, sizeof(err));
  assert_non_null(t);
  assert_int_equal(t->req.nports, 3);
  assert_int_equal(t->req.ports[2].port, 10025);
  assert_int_equal(t->req.role, SP_ROLE_RELAY);
  assert_int_equal(t->req.tls_mode, SP_TLS_NONE);
  assert_true(t->req.no_verify);
  spc_target_free(t);
}

/* Parse Host plus one certificate option; return warn and crit days. */
static void cert_days(const char *key, double value, int *warn, int *crit) {
  char err[SPC_MAX_ERR];
  struct opt opts[] = {{"Host", 1, {SV("127.0.0.1")}},
                       {key, 1, {NV(value)}},
                       {NULL, 0, {{{0}, 0}}}};
  struct spc_target *t =
      parse(target_block(name_mx1, 1, opts, NULL, NULL), err, sizeof(err));
  if (t == NULL)
    fail_msg("%s %g: %s", key, value, err);
  *warn = t->req.cert_warn_days;
  *crit = t->req.cert_crit_days;
  spc_target_free(t);
}

/* One threshold set alone leaves the other off, as in the core (no
 * default of collectd's own). */
static void test_config_cert_days_defaults(void **state) {
  (void)state;
  int warn = 0, crit = 0;
  cert_days("CertWarningDays", 30, &warn, &crit);
  assert_int_equal(warn, 30);
  assert_int_equal(crit, -1);
  cert_days("CertCriticalDays", 3, &warn, &crit);
  assert_int_equal(warn, -1);
  assert_int_equal(crit, 3);
  cert_days("CertWarningDays", 0, &warn, &crit);
  assert_int_equal(warn, 0);
}

/* Values come typed from collectd and are handed to the core as text, so
 * a string where a number was (and the reverse) means the same, and the
 * core's grammars apply: durations, comma lists, boolean words. */
static void test_config_values_as_text(void **state) {
  (void)state;
  char err[SPC_MAX_ERR];
  const struct opt opts[] = {{"Host", 1, {SV("127.0.0.1")}},
                             {"Port", 1, {SV("25,465")}},
                             {"Port", 2, {NV(465), NV(587)}},
                             {"Timeout", 1, {SV("1m")}},
                             {"Interval", 1, {SV("2m")}},
                             {"BannerWait", 1, {SV("500ms")}},
                             {"CertWarningDays", 1, {SV("30")}},
                             {"CertCriticalDays", 1, {NV(10)}},
                             {"Verify", 1, {NV(0)}},
                             {"CheckInjection", 1, {SV("on")}},
                             {"TLSTrial", 1, {BV(0)}},
                             {"AllAddresses", 1, {NV(1)}},
                             {NULL, 0, {{{0}, 0}}}};
  struct spc_target *t =
      parse(target_block(name_mx1, 1, opts, NULL, NULL), err, sizeof(err));
  if (t == NULL)
    fail_msg("%s", err);
  assert_int_equal(t->req.nports, 3); /* 465 again is ignored */
  assert_int_equal(t->req.ports[2].port, 587);
  assert_true(t->req.timeout_s == 60.0);
  assert_int_equal(t->interval, TIME_T_TO_CDTIME_T_STATIC(120));
  assert_true(t->req.banner_wait_s == 0.5);
  assert_int_equal(t->req.cert_warn_days, 30);
  assert_int_equal(t->req.cert_crit_days, 10);
  assert_true(t->req.no_verify);
  assert_true(t->req.check_injection);
  assert_true(t->req.no_tls_trial);
  assert_true(t->req.all_addresses);
  spc_target_free(t);
}

/* One bad-input case: an option replacing or adding to the good block. */
struct bad_case {
  const char *what;    /* description */
  struct opt extra[2]; /* the bad option (and terminator) */
  const char *drop;    /* a good key to leave out, or NULL */
  const char *key;     /* the key the message must name */
  const char *why;     /* a fragment of the reason */
};

/* Every bad value of every key is refused, naming the block and the key. */
static void test_config_bad_inputs(void **state) {
  (void)state;
  static const struct bad_case cases[] = {
      {"unknown key", {{"Hots", 1, {SV("x")}}}, NULL, "Hots", "unknown"},
      {"missing Host", {{NULL, 0, {{{0}, 0}}}}, "Host", "Host", "missing"},
      {"Host empty",
       {{"Host", 1, {SV("")}}},
       NULL,
       "Host",
       "'' is not a host name or IP address"},
      {"Host two values",
       {{"Host", 2, {SV("a"), SV("b")}}},
       NULL,
       "Host",
       "exactly one"},
      {"Host no value", {{"Host", 0, {{{0}, 0}}}}, NULL, "Host", "exactly one"},
      {"Port 0",
       {{"Port", 1, {NV(0)}}},
       NULL,
       "Port",
       "'0' is not a list of ports 1-65535"},
      {"Port 65536",
       {{"Port", 1, {NV(65536)}}},
       NULL,
       "Port",
       "'65536' is not a list of ports"},
      {"Port -25", {{"Port", 1, {NV(-25)}}}, NULL, "Port", "not a list of"},
      {"Port 25.5",
       {{"Port", 1, {NV(25.5)}}},
       NULL,
       "Port",
       "'25.5' is not a list of ports"},
      {"Port string",
       {{"Port", 1, {SV("smtp")}}},
       NULL,
       "Port",
       "'smtp' is not a list"},
      {"Port one bad of two",
       {{"Port", 2, {NV(25), NV(70000)}}},
       NULL,
       "Port",
       "'25,70000' is not a list of ports 1-65535"},
      {"Port empty", {{"Port", 0, {{{0}, 0}}}}, NULL, "Port", "one or more"},
      {"Port x17",
       {{"Port",
         17,
         {NV(1), NV(2), NV(3), NV(4), NV(5), NV(6), NV(7), NV(8), NV(9), NV(10),
          NV(11), NV(12), NV(13), NV(14), NV(15), NV(16), NV(17)}}},
       NULL,
       "Port",
       "more than 16 ports"},
      {"TLS word",
       {{"TLS", 1, {SV("maybe")}}},
       NULL,
       "TLS",
       "'maybe' is not auto, none, starttls or implicit"},
      {"TLS number", {{"TLS", 1, {NV(1)}}}, NULL, "TLS", "'1' is not auto"},
      {"Role word",
       {{"Role", 1, {SV("mx")}}},
       NULL,
       "Role",
       "'mx' is not default, submission, implicit or relay"},
      {"AddressFamily word",
       {{"AddressFamily", 1, {SV("ipv5")}}},
       NULL,
       "AddressFamily",
       "'ipv5' is not any, ipv4 or ipv6"},
      {"Verify word",
       {{"Verify", 1, {SV("perhaps")}}},
       NULL,
       "Verify",
       "'perhaps' is not true or false"},
      {"Verify number",
       {{"Verify", 1, {NV(2)}}},
       NULL,
       "Verify",
       "'2' is not true or false"},
      {"AllAddresses word",
       {{"AllAddresses", 1, {SV("all")}}},
       NULL,
       "AllAddresses",
       "'all' is not true or false"},
      {"Source name",
       {{"Source", 1, {SV("probe.example.net")}}},
       NULL,
       "Source",
       "'probe.example.net' is not an IP address"},
      {"SNI empty", {{"SNI", 1, {SV("")}}}, NULL, "SNI", "is not a host name"},
      {"CAFile two",
       {{"CAFile", 2, {SV("/a"), SV("/b")}}},
       NULL,
       "CAFile",
       "exactly one"},
      {"CAFile empty",
       {{"CAFile", 1, {SV("")}}},
       NULL,
       "CAFile",
       "an empty or overlong path"},
      {"DNSServer empty",
       {{"DNSServer", 1, {SV("")}}},
       NULL,
       "DNSServer",
       "is not IP[:PORT]"},
      {"BannerWait negative",
       {{"BannerWait", 1, {NV(-1)}}},
       NULL,
       "BannerWait",
       "'-1' is not a number of seconds 0-3600"},
      {"BannerWait word",
       {{"BannerWait", 1, {SV("soon")}}},
       NULL,
       "BannerWait",
       "'soon' is not a number of seconds"},
      {"Timeout 0",
       {{"Timeout", 1, {NV(0)}}},
       NULL,
       "Timeout",
       "must be above 0"},
      {"Timeout negative",
       {{"Timeout", 1, {NV(-3)}}},
       NULL,
       "Timeout",
       "'-3' is not a number of seconds"},
      {"Timeout units rising",
       {{"Timeout", 1, {SV("1s1m")}}},
       NULL,
       "Timeout",
       "(or a duration such as 500ms, 1m30s)"},
      {"Timeout = Interval",
       {{"Timeout", 1, {NV(30)}}},
       NULL,
       "Timeout",
       "below Interval"},
      {"Timeout > Interval",
       {{"Timeout", 1, {NV(31)}}},
       NULL,
       "Timeout",
       "below Interval"},
      {"Interval 0",
       {{"Interval", 1, {NV(0)}}},
       NULL,
       "Interval",
       "'0' is not a number of seconds above 0"},
      {"Interval below Timeout",
       {{"Interval", 1, {NV(4)}}},
       NULL,
       "Timeout",
       "below Interval"},
      {"Timeout above global interval",
       {{NULL, 0, {{{0}, 0}}}},
       "Interval",
       "Timeout",
       "below Interval"},
      {"CertWarningDays fraction",
       {{"CertWarningDays", 1, {NV(1.5)}}},
       NULL,
       "CertWarningDays",
       "'1.5' is not a whole number 0-36500"},
      {"CertWarningDays -2",
       {{"CertWarningDays", 1, {NV(-2)}}},
       NULL,
       "CertWarningDays",
       "'-2' is not a whole number 0-36500, or off"},
      {"CertCriticalDays word",
       {{"CertCriticalDays", 1, {SV("seven")}}},
       NULL,
       "CertCriticalDays",
       "'seven' is not a whole number"},
      {"CertWarningDays huge",
       {{"CertWarningDays", 1, {NV(1e9)}}},
       NULL,
       "CertWarningDays",
       "'1000000000' is not a whole number"},
      {"Host not a name",
       {{"Host", 1, {SV("bad host!")}}},
       NULL,
       "Host",
       "'bad host!' is not a host name"},
      {"SNI not a name",
       {{"SNI", 1, {SV("a b")}}},
       NULL,
       "SNI",
       "is not a host name"},
      {"EHLO not a name",
       {{"EHLO", 1, {SV("x/y")}}},
       NULL,
       "EHLO",
       "is not a host name"},
      {"DNSServer name",
       {{"DNSServer", 1, {SV("resolver.example")}}},
       NULL,
       "DNSServer",
       "is not IP[:PORT] with an IP address"},
      /* Caught by the core's sp_request_validate, reported with our keys. */
      {"CertCriticalDays above warning",
       {{"CertCriticalDays", 1, {NV(30)}}},
       NULL,
       "CertCriticalDays",
       "must not exceed the warning days"},
      {"BannerWait above Timeout",
       {{"BannerWait", 1, {NV(6)}}},
       NULL,
       "BannerWait",
       "must not exceed the timeout"},
      {"CAFile missing",
       {{"CAFile", 1, {SV("/nonexistent/ca.pem")}}},
       NULL,
       "CAFile",
       "cannot open"},
  };
  /* The global interval is 10 s; the good block's Timeout is 5 s; the
   * "Timeout above global interval" case drops Interval with Timeout 5...
   * so that case sets a global interval of 5 s below. */
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const struct bad_case *c = &cases[i];
    char err[SPC_MAX_ERR];
    fake_interval = TIME_T_TO_CDTIME_T_STATIC(10);
    if (strcmp(c->what, "Timeout above global interval") == 0)
      fake_interval = TIME_T_TO_CDTIME_T_STATIC(5);
    struct spc_target *t =
        parse(target_block(name_mx1, 1, good_opts, c->extra, c->drop), err,
              sizeof(err));
    if (t != NULL || strstr(err, "Target \"mx1\"") == NULL ||
        strstr(err, c->key) == NULL || strstr(err, c->why) == NULL)
      fail_msg("case \"%s\": target %p, message \"%s\"", c->what, (void *)t,
               err);
  }
}

/* An option written as a block (<Host "a"> ... </Host>) is refused, and so
 * is a block nested in a Port line. */
static void test_config_option_as_block(void **state) {
  (void)state;
  char err[SPC_MAX_ERR];
  const struct opt host[] = {{"Host", 1, {SV("127.0.0.1")}},
                             {NULL, 0, {{{0}, 0}}}};
  const char *keys[] = {"Host", "Port", "Timeout", "Verify"};
  const oconfig_value_t vals[] = {SV("a"), NV(25), NV(1), BV(1)};
  for (size_t i = 0; i < 4; i++) {
    oconfig_item_t *block = target_block(name_mx1, 1, host, NULL, NULL);
    oconfig_item_t *inner = item("Inner", NULL, 0, NULL, 0);
    oconfig_item_t *opt = &block->children[block->children_num++];
    *opt = (oconfig_item_t){.key = (char *)keys[i],
                            .values = (oconfig_value_t *)&vals[i],
                            .values_num = 1,
                            .children = inner,
                            .children_num = 1};
    assert_null(parse(block, err, sizeof(err)));
    assert_non_null(strstr(err, "Target \"mx1\""));
    assert_non_null(strstr(err, keys[i]));
    assert_non_null(strstr(err, "not a block"));
  }
}

/* Bad block names are refused. */
static void test_config_bad_names(void **state) {
  (void)state;
  char err[SPC_MAX_ERR];
  const struct opt host[] = {{"Host", 1, {SV("127.0.0.1")}},
                             {NULL, 0, {{{0}, 0}}}};
  const oconfig_value_t slash[] = {SV("mx/1")};
  const oconfig_value_t empty[] = {SV("")};
  const oconfig_value_t number[] = {NV(1)};
  const oconfig_value_t two[] = {SV("a"), SV("b")};
  const oconfig_value_t longname[] = {
      SV("a123456789b123456789c123456789d123456789e123456789f123456789g123")};

  assert_null(
      parse(target_block(slash, 1, host, NULL, NULL), err, sizeof(err)));
  assert_non_null(strstr(err, "Target \"mx/1\""));
  assert_null(
      parse(target_block(empty, 1, host, NULL, NULL), err, sizeof(err)));
  assert_non_null(strstr(err, "Target"));
  assert_null(
      parse(target_block(number, 1, host, NULL, NULL), err, sizeof(err)));
  assert_non_null(strstr(err, "one quoted name"));
  assert_null(parse(target_block(two, 2, host, NULL, NULL), err, sizeof(err)));
  assert_non_null(strstr(err, "one quoted name"));
  assert_null(parse(target_block(NULL, 0, host, NULL, NULL), err, sizeof(err)));
  assert_non_null(strstr(err, "one quoted name"));
  assert_null(
      parse(target_block(longname, 1, host, NULL, NULL), err, sizeof(err)));
  assert_non_null(strstr(err, "1 to 63"));
}

/* A <Plugin> block with good, bad, duplicate blocks and a stray key keeps
 * only the good blocks, logs each problem, and does not fail. */
static void test_config_mixed_blocks(void **state) {
  (void)state;
  const oconfig_value_t n_a[] = {SV("a")};
  const oconfig_value_t n_bad[] = {SV("bad")};
  const oconfig_value_t n_b[] = {SV("b")};
  const struct opt bad_timeout[] = {{"Timeout", 1, {NV(40)}},
                                    {NULL, 0, {{{0}, 0}}}};
  oconfig_item_t kids[5];
  kids[0] = *target_block(n_a, 1, good_opts, NULL, NULL);
  kids[1] = *target_block(n_bad, 1, good_opts, bad_timeout, NULL);
  kids[2] = *target_block(n_b, 1, good_opts, NULL, NULL);
  kids[3] = *target_block(n_a, 1, good_opts, NULL, NULL);
  const oconfig_value_t one[] = {NV(1)};
  kids[4] = (oconfig_item_t){
      .key = "Verbose", .values = (oconfig_value_t *)one, .values_num = 1};
  oconfig_item_t *plugin = item("Plugin", NULL, 0, kids, 5);

  assert_int_equal(spc_config(plugin), 0);
  struct spc_target *t = spc_targets();
  assert_non_null(t);
  assert_string_equal(t->name, "a");
  assert_non_null(t->next);
  assert_string_equal(t->next->name, "b");
  assert_null(t->next->next);
  assert_true(logged("Target \"bad\"", "Timeout"));
  assert_true(logged("Target \"bad\"", "skipping this block"));
  assert_true(logged("Target \"a\"", "used by an earlier block"));
  assert_true(logged("\"Verbose\"", "not a known option"));
}

/* When every block is bad, init fails without starting an engine. */
static void test_init_fails_when_all_blocks_bad(void **state) {
  (void)state;
  const oconfig_value_t n_x[] = {SV("x")};
  const struct opt bad[] = {{"TLS", 1, {SV("sometimes")}},
                            {NULL, 0, {{{0}, 0}}}};
  oconfig_item_t kids[1];
  kids[0] = *target_block(n_x, 1, good_opts, bad, NULL);
  assert_int_equal(spc_config(item("Plugin", NULL, 0, kids, 1)), 0);
  assert_null(spc_targets());
  assert_int_not_equal(spc_init(), 0);
  assert_int_equal(eng.news, 0);
  assert_int_equal(cd.nreads, 0);
  assert_true(logged("no usable <Target> block", "1 configured"));
}

/* With no <Plugin> block at all, init fails too. */
static void test_init_fails_without_config(void **state) {
  (void)state;
  assert_int_not_equal(spc_init(), 0);
  assert_int_equal(cd.nreads, 0);
}

/* An engine that cannot be created fails init and registers nothing. */
static void test_init_fails_without_engine(void **state) {
  (void)state;
  oconfig_item_t kids[1];
  kids[0] = *target_block(name_mx1, 1, good_opts, NULL, NULL);
  assert_int_equal(spc_config(item("Plugin", NULL, 0, kids, 1)), 0);
  eng.fail_new = 1;
  assert_int_not_equal(spc_init(), 0);
  assert_int_equal(cd.nreads, 0);
  assert_true(logged("no engine today", NULL));
}

/* ---- Life cycle and dispatch tests ------------------------------------ */

/* Configure the good block "mx1" plus a second target "mx2" (Interval 7)
 * and run init. */
static void configure_two(void) {
  const oconfig_value_t n_mx2[] = {SV("mx2")};
  static const struct opt mx2_opts[] = {{"Host", 1, {SV("127.0.0.1")}},
                                        {"Port", 1, {NV(25)}},
                                        {"Interval", 1, {NV(7)}},
                                        {"Timeout", 1, {NV(3)}},
                                        {NULL, 0, {{{0}, 0}}}};
  oconfig_item_t *kids = calloc(2, sizeof(*kids));
  assert_non_null(kids);
  kids[0] = *target_block(name_mx1, 1, good_opts, NULL, NULL);
  kids[1] = *target_block(n_mx2, 1, mx2_opts, NULL, NULL);
  assert_int_equal(spc_config(item("Plugin", NULL, 0, kids, 2)), 0);
  free(kids);
  assert_int_equal(spc_init(), 0);
}

/* init starts one engine and registers one read per block with its own
 * interval; shutdown stops and frees it. */
static void test_init_registers_reads(void **state) {
  (void)state;
  configure_two();
  assert_int_equal(eng.news, 1);
  assert_int_equal(eng.starts, 1);
  assert_int_equal(cd.nreads, 2);
  assert_string_equal(cd.read_names[0], "smtp_probe/mx1");
  assert_string_equal(cd.read_groups[0], "smtp_probe");
  assert_int_equal(cd.read_intervals[0], TIME_T_TO_CDTIME_T_STATIC(30));
  assert_string_equal(cd.read_names[1], "smtp_probe/mx2");
  assert_int_equal(cd.read_intervals[1], TIME_T_TO_CDTIME_T_STATIC(7));
  assert_ptr_equal(cd.read_uds[0].data, spc_targets());
  assert_ptr_equal(cd.read_uds[1].data, spc_targets()->next);
  assert_null(cd.read_uds[0].free_func);
  assert_true(logged("probing 2 target(s) of 2 configured", NULL));
  assert_int_equal(spc_shutdown(), 0);
  assert_int_equal(eng.stops, 1);
  assert_int_equal(eng.frees, 1);
  assert_null(spc_targets());
}

/* Make a batch of n zeroed results. */
static struct sp_batch *new_batch(int n) {
  struct sp_batch *b = calloc(1, sizeof(*b));
  assert_non_null(b);
  b->results = calloc((size_t)n, sizeof(*b->results));
  assert_non_null(b->results);
  b->nresults = n;
  b->dns_s = -1;
  return b;
}

/* Fill a result as a good STARTTLS probe of a port. */
static void good_result(struct sp_result *r, uint16_t port) {
  memset(r, 0, sizeof(*r));
  snprintf(r->host, sizeof(r->host), "mail.example.com");
  r->port = port;
  r->role = SP_ROLE_SUBMISSION;
  r->code = SP_OK;
  r->state = SP_STATE_OK;
  const enum sp_phase done[] = {SP_PHASE_CONNECT,       SP_PHASE_BANNER,
                                SP_PHASE_EHLO,          SP_PHASE_STARTTLS,
                                SP_PHASE_TLS_HANDSHAKE, SP_PHASE_EHLO_TLS,
                                SP_PHASE_TOTAL};
  for (size_t i = 0; i < sizeof(done) / sizeof(done[0]); i++) {
    r->phase_done[done[i]] = true;
    r->phase_s[done[i]] = 0.001 * (double)(i + 1);
  }
  r->tls = true;
  r->leaf_not_after = 1700000000 + 86400 * 30;
  r->chain_not_after = 1700000000 + 86400 * 20;
}

/* Find a dispatched value; NULL when absent. */
static const value_list_t *find_value(const char *inst, const char *type,
                                      const char *tinst, double *value) {
  for (int i = 0; i < cd.nvalues; i++) {
    const value_list_t *vl = &cd.values[i];
    if (strcmp(vl->plugin_instance, inst) == 0 && strcmp(vl->type, type) == 0 &&
        strcmp(vl->type_instance, tinst) == 0) {
      if (value != NULL)
        *value = cd.gauges[i];
      return vl;
    }
  }
  return NULL;
}

/* The read callback: first read submits and dispatches nothing; a read
 * while a round is in flight neither submits nor blocks; the next read
 * after completion dispatches that round and submits again. */
static void test_read_cycle(void **state) {
  (void)state;
  configure_two();
  user_data_t ud = cd.read_uds[1]; /* mx2: port 25 */
  struct spc_target *t = ud.data;

  assert_int_equal(spc_read(&ud), 0);
  assert_int_equal(eng.submits, 1);
  assert_ptr_equal(eng.last_user, t);
  assert_string_equal(eng.last_req.host, "127.0.0.1");
  assert_int_equal(eng.last_req.nports, 1);
  assert_int_equal(cd.nvalues, 0);

  assert_int_equal(spc_read(&ud), 0); /* still in flight */
  assert_int_equal(eng.submits, 1);
  assert_int_equal(cd.nvalues, 0);

  struct sp_batch *b = new_batch(1);
  good_result(&b->results[0], 25);
  fake_now = TIME_T_TO_CDTIME_T_STATIC(1700000000);
  eng.last_done(b, eng.last_user);

  fake_now = TIME_T_TO_CDTIME_T_STATIC(1700000003);
  assert_int_equal(spc_read(&ud), 0);
  assert_int_equal(eng.submits, 2);
  assert_int_equal(eng.batch_frees, 1);
  assert_true(cd.nvalues > 0);
  const value_list_t *vl = find_value("mx2-25", "bool", "success", NULL);
  assert_non_null(vl);
  /* Stamped with the completion time, with the block's interval. */
  assert_int_equal(vl->time, TIME_T_TO_CDTIME_T_STATIC(1700000000));
  assert_int_equal(vl->interval, TIME_T_TO_CDTIME_T_STATIC(7));

  /* The same round is never dispatched twice. */
  int before = cd.nvalues;
  assert_int_equal(spc_read(&ud), 0);
  assert_int_equal(cd.nvalues, before);
}

/* A failed submit is an internal error (non-zero) and does not wedge the
 * target: the next read submits again. */
static void test_read_submit_failure(void **state) {
  (void)state;
  configure_two();
  user_data_t ud = cd.read_uds[0];
  eng.fail_submit = 1;
  assert_int_not_equal(spc_read(&ud), 0);
  assert_true(logged("Target \"mx1\"", "queue full"));
  assert_int_equal(spc_read(&ud), 0);
  assert_int_equal(eng.submits, 2);
}

/* The value lists of a good round: one latency per phase done (and none
 * for phases not done), success 1, timeleft cert and cert_chain, the right
 * identifiers; no notification for a first OK. */
static void test_values_of_good_round(void **state) {
  (void)state;
  configure_two();
  struct spc_target *t = spc_targets(); /* mx1, AllAddresses on */
  t->req.all_addresses = false;
  struct sp_batch *b = new_batch(2);
  good_result(&b->results[0], 587);
  good_result(&b->results[1], 2525);
  cdtime_t when = TIME_T_TO_CDTIME_T_STATIC(1700000000);
  spc_dispatch_batch(t, b, when);

  double v = -1;
  const value_list_t *vl = find_value("mx1-587", "latency", "connect", &v);
  assert_non_null(vl);
  assert_string_equal(vl->plugin, "smtp_probe");
  assert_string_equal(vl->host, ""); /* collectd fills in hostname_g */
  assert_true(v == 0.001);
  assert_non_null(find_value("mx1-587", "latency", "total", &v));
  assert_true(v == 0.007);
  const char *done[] = {"connect",       "banner",   "ehlo", "starttls",
                        "tls_handshake", "ehlo_tls", "total"};
  for (size_t i = 0; i < sizeof(done) / sizeof(done[0]); i++) {
    assert_non_null(find_value("mx1-587", "latency", done[i], NULL));
    assert_non_null(find_value("mx1-2525", "latency", done[i], NULL));
  }
  const char *not_done[] = {"dns", "auth", "mail_from", "rcpt_to"};
  for (size_t i = 0; i < sizeof(not_done) / sizeof(not_done[0]); i++)
    assert_null(find_value("mx1-587", "latency", not_done[i], NULL));

  assert_non_null(find_value("mx1-587", "bool", "success", &v));
  assert_true(v == 1.0);
  assert_non_null(find_value("mx1-587", "timeleft", "cert", &v));
  assert_true(v == 86400.0 * 30);
  assert_non_null(find_value("mx1-587", "timeleft", "cert_chain", &v));
  assert_true(v == 86400.0 * 20);
  /* 2 results x (7 latencies + success + 2 timeleft) */
  assert_int_equal(cd.nvalues, 20);
  assert_int_equal(cd.nnotifs, 0);
  spc_dispatch_batch(t, b, when + TIME_T_TO_CDTIME_T_STATIC(30));
  assert_int_equal(cd.nnotifs, 0); /* still OK: no change */
  __wrap_sp_batch_free(b);
}

/* The recommendation is notified once when it first comes and again only
 * when it changes: OKAY with a port, WARNING when none works. */
static void test_recommendation_notifications(void **state) {
  (void)state;
  configure_two();
  struct spc_target *t = spc_targets(); /* mx1: 587 and 2525 */
  struct sp_batch *b = new_batch(2);
  good_result(&b->results[0], 587);
  good_result(&b->results[1], 2525);
  sp_recommend(b, &b->recommendation);
  cdtime_t when = TIME_T_TO_CDTIME_T_STATIC(1700000000);
  spc_dispatch_batch(t, b, when);
  assert_int_equal(cd.nnotifs, 1);
  assert_int_equal(cd.notifs[0].severity, NOTIF_OKAY);
  assert_string_equal(cd.notifs[0].type_instance, "recommendation");
  assert_non_null(strstr(cd.notifs[0].message, "recommend: use 587 starttls"));
  spc_dispatch_batch(t, b, when + 1);
  assert_int_equal(cd.nnotifs, 1); /* unchanged: no repeat */
  b->results[0].code = SP_CONNECT_TIMEOUT;
  b->results[0].state = SP_STATE_CRITICAL;
  b->results[0].tls = false;
  sp_recommend(b, &b->recommendation);
  spc_dispatch_batch(t, b, when + 2);
  /* the port's own FAILURE, then the new recommendation */
  assert_int_equal(cd.nnotifs, 3);
  assert_non_null(strstr(cd.notifs[2].message, "egress blocks 587"));
  assert_int_equal(cd.notifs[2].severity, NOTIF_OKAY);
  b->results[1].code = SP_CONNECT_TIMEOUT;
  b->results[1].state = SP_STATE_CRITICAL;
  sp_recommend(b, &b->recommendation);
  spc_dispatch_batch(t, b, when + 3);
  assert_int_equal(cd.notifs[cd.nnotifs - 1].severity, NOTIF_WARNING);
  assert_non_null(
      strstr(cd.notifs[cd.nnotifs - 1].message, "no port works for an app"));
  __wrap_sp_batch_free(b);
}

/* A failing port: success 0, no timeleft, a FAILURE notification at the
 * first round, none while it stays the same, OKAY when it recovers, and
 * a WARNING on the next change. */
static void test_notifications_on_state_change(void **state) {
  (void)state;
  configure_two();
  struct spc_target *t = spc_targets()->next; /* mx2 */
  struct sp_batch *b = new_batch(1);
  struct sp_result *r = &b->results[0];
  memset(r, 0, sizeof(*r));
  r->port = 25;
  r->code = SP_CONNECT_REFUSED;
  r->state = SP_STATE_CRITICAL;
  r->phase_done[SP_PHASE_CONNECT] = true;
  r->phase_done[SP_PHASE_TOTAL] = true;
  snprintf(r->detail, sizeof(r->detail), "Connection refused");
  cdtime_t when = TIME_T_TO_CDTIME_T_STATIC(1700000000);

  spc_dispatch_batch(t, b, when);
  double v = -1;
  assert_non_null(find_value("mx2-25", "bool", "success", &v));
  assert_true(v == 0.0);
  assert_null(find_value("mx2-25", "timeleft", "cert", NULL));
  assert_null(find_value("mx2-25", "latency", "banner", NULL));
  assert_int_equal(cd.nnotifs, 1);
  notification_t *n = &cd.notifs[0];
  assert_int_equal(n->severity, NOTIF_FAILURE);
  assert_int_equal(n->time, when);
  assert_string_equal(n->host, "testhost");
  assert_string_equal(n->plugin, "smtp_probe");
  assert_string_equal(n->plugin_instance, "mx2-25");
  assert_non_null(strstr(n->message, "mx2 port 25"));
  assert_non_null(strstr(n->message, "CRITICAL"));
  assert_non_null(strstr(n->message, "connect_refused"));
  assert_non_null(strstr(n->message, "Connection refused"));
  /* and the code's generic hint (what to check first) */
  assert_non_null(strstr(n->message, "nothing listens there"));

  spc_dispatch_batch(t, b, when + 1);
  assert_int_equal(cd.nnotifs, 1); /* unchanged: no repeat */

  good_result(r, 25);
  spc_dispatch_batch(t, b, when + 2);
  assert_int_equal(cd.nnotifs, 2);
  assert_int_equal(cd.notifs[1].severity, NOTIF_OKAY);
  assert_non_null(strstr(cd.notifs[1].message, "OK ok"));

  r->code = SP_CERT_EXPIRING;
  r->state = SP_STATE_WARNING;
  spc_dispatch_batch(t, b, when + 3);
  assert_int_equal(cd.nnotifs, 3);
  assert_int_equal(cd.notifs[2].severity, NOTIF_WARNING);
  assert_non_null(strstr(cd.notifs[2].message, "cert_expiring"));
  __wrap_sp_batch_free(b);
}

/* An expired certificate: timeleft clamped at 0 and a FAILURE. */
static void test_expired_cert(void **state) {
  (void)state;
  configure_two();
  struct spc_target *t = spc_targets()->next;
  struct sp_batch *b = new_batch(1);
  struct sp_result *r = &b->results[0];
  good_result(r, 25);
  r->code = SP_CERT_EXPIRED;
  r->state = SP_STATE_CRITICAL;
  r->leaf_not_after = 1600000000;
  r->chain_not_after = 1600000000;
  spc_dispatch_batch(t, b, TIME_T_TO_CDTIME_T_STATIC(1700000000));
  double v = -1;
  assert_non_null(find_value("mx2-25", "timeleft", "cert", &v));
  assert_true(v == 0.0);
  assert_non_null(find_value("mx2-25", "timeleft", "cert_chain", &v));
  assert_true(v == 0.0);
  assert_non_null(find_value("mx2-25", "bool", "success", &v));
  assert_true(v == 0.0);
  assert_int_equal(cd.nnotifs, 1);
  assert_int_equal(cd.notifs[0].severity, NOTIF_FAILURE);
  assert_non_null(strstr(cd.notifs[0].message, "cert_expired"));
  __wrap_sp_batch_free(b);
}

/* A notification whose hint is long and holds control bytes is cut to
 * fit and sanitised. */
static void test_notification_sanitised(void **state) {
  (void)state;
  configure_two();
  struct spc_target *t = spc_targets()->next;
  struct sp_batch *b = new_batch(1);
  struct sp_result *r = &b->results[0];
  memset(r, 0, sizeof(*r));
  r->port = 25;
  r->code = SP_REJECTED;
  r->state = SP_STATE_CRITICAL;
  memset(r->detail, 'x', sizeof(r->detail) - 1);
  r->detail[3] = '\033';
  r->detail[4] = '\n';
  spc_dispatch_batch(t, b, TIME_T_TO_CDTIME_T_STATIC(1700000000));
  assert_int_equal(cd.nnotifs, 1);
  const char *m = cd.notifs[0].message;
  assert_true(strlen(m) < NOTIF_MAX_MSG_LEN);
  for (const char *p = m; *p != '\0'; p++)
    assert_true(*p >= 0x20 && *p <= 0x7e);
  __wrap_sp_batch_free(b);
}

/* AllAddresses: the address is appended, ':' and other unsafe bytes
 * replaced with '_'; each address has its own state. */
static void test_all_addresses_instances(void **state) {
  (void)state;
  struct sp_result r;
  memset(&r, 0, sizeof(r));
  char buf[DATA_MAX_NAME_LEN];
  r.port = 25;
  snprintf(r.address, sizeof(r.address), "127.0.0.1");
  assert_int_equal(spc_instance_name("mx1", &r, false, buf, sizeof(buf)), 0);
  assert_string_equal(buf, "mx1-25");
  assert_int_equal(spc_instance_name("mx1", &r, true, buf, sizeof(buf)), 0);
  assert_string_equal(buf, "mx1-25-127.0.0.1");
  snprintf(r.address, sizeof(r.address), "2001:db8::1");
  assert_int_equal(spc_instance_name("mx1", &r, true, buf, sizeof(buf)), 0);
  assert_string_equal(buf, "mx1-25-2001_db8__1");
  snprintf(r.address, sizeof(r.address), "fe80::1%%eth0");
  assert_int_equal(spc_instance_name("mx1", &r, true, buf, sizeof(buf)), 0);
  assert_string_equal(buf, "mx1-25-fe80__1_eth0");
  r.address[0] = '\0'; /* resolution failed: no address */
  assert_int_equal(spc_instance_name("mx1", &r, true, buf, sizeof(buf)), 0);
  assert_string_equal(buf, "mx1-25");
  assert_int_equal(spc_instance_name("mx1", &r, true, buf, 4), -1);

  configure_two();
  struct spc_target *t = spc_targets();
  struct sp_batch *b = new_batch(2);
  good_result(&b->results[0], 25);
  good_result(&b->results[1], 25);
  b->results[0].per_address = b->results[1].per_address = true;
  snprintf(b->results[0].address, sizeof(b->results[0].address), "::1");
  snprintf(b->results[1].address, sizeof(b->results[1].address), "127.0.0.1");
  b->results[0].code = SP_CONNECT_REFUSED;
  b->results[0].state = SP_STATE_CRITICAL;
  spc_dispatch_batch(t, b, TIME_T_TO_CDTIME_T_STATIC(1700000000));
  assert_non_null(find_value("mx1-25-__1", "bool", "success", NULL));
  assert_non_null(find_value("mx1-25-127.0.0.1", "bool", "success", NULL));
  assert_int_equal(cd.nnotifs, 1);
  assert_string_equal(cd.notifs[0].plugin_instance, "mx1-25-__1");
  assert_non_null(strstr(cd.notifs[0].message, "address ::1"));

  /* The core marks per_address only for hosts with several addresses: a
   * single-address result of an AllAddresses block keeps its address in
   * the name all the same, and a block without AllAddresses never has it. */
  b->nresults = 1;
  b->results[0].per_address = false;
  snprintf(b->results[0].address, sizeof(b->results[0].address), "192.0.2.7");
  spc_dispatch_batch(t, b, TIME_T_TO_CDTIME_T_STATIC(1700000001));
  assert_non_null(find_value("mx1-25-192.0.2.7", "bool", "success", NULL));
  assert_null(find_value("mx1-25", "bool", "success", NULL));
  spc_dispatch_batch(spc_targets()->next, b,
                     TIME_T_TO_CDTIME_T_STATIC(1700000001));
  assert_non_null(find_value("mx2-25", "bool", "success", NULL));
  __wrap_sp_batch_free(b);
}

/* Many changing addresses reuse a bounded set of state slots. */
static void test_state_slots_bounded(void **state) {
  (void)state;
  configure_two();
  struct spc_target *t = spc_targets();
  struct sp_batch *b = new_batch(1);
  struct sp_result *r = &b->results[0];
  for (int i = 0; i < SPC_MAX_STATES * 3; i++) {
    good_result(r, 25);
    r->per_address = true;
    snprintf(r->address, sizeof(r->address), "10.0.%d.%d", i / 250, i % 250);
    r->code = SP_CONNECT_TIMEOUT;
    r->state = SP_STATE_CRITICAL;
    spc_dispatch_batch(t, b, TIME_T_TO_CDTIME_T_STATIC(1700000000 + i));
  }
  int used = 0;
  for (int i = 0; i < SPC_MAX_STATES; i++)
    used += t->states[i].used ? 1 : 0;
  assert_int_equal(used, SPC_MAX_STATES);
  /* Each new address was announced once (it was not OK). */
  assert_int_equal(cd.notifs_total, SPC_MAX_STATES * 3);
  /* 10 values per result, none lost or added. */
  assert_int_equal(cd.values_total, SPC_MAX_STATES * 3 * 10);
  __wrap_sp_batch_free(b);
}

/* Shutdown frees a round that completed but was never dispatched, and a
 * completion replacing an undispatched round frees the old one. */
static void test_shutdown_frees_pending_round(void **state) {
  (void)state;
  configure_two();
  user_data_t ud = cd.read_uds[0];
  assert_int_equal(spc_read(&ud), 0);
  eng.last_done(new_batch(1), eng.last_user);
  eng.last_done(new_batch(1), eng.last_user);
  assert_int_equal(eng.batch_frees, 1);
  assert_int_equal(spc_shutdown(), 0);
  assert_int_equal(eng.batch_frees, 2);
  assert_int_equal(eng.stops, 1);
}

/* ---- Authentication, posture and policy keys ------------------------- */

/* The policy the tests use: 587 STARTTLS, at least TLS 1.2, only PLAIN;
 * 2525 closed. */
static const char policy_yaml[] = "ports:\n"
                                  "  587:\n"
                                  "    tls: starttls\n"
                                  "    min_tls: \"1.2\"\n"
                                  "    mechanisms: [PLAIN]\n"
                                  "  2525:\n"
                                  "    state: closed\n";

/* Every new key lands in the request; the password is read from its file
 * (mode 600: no warning) and never logged; the policy gives the ports. */
static void test_config_auth_keys(void **state) {
  (void)state;
  char err[SPC_MAX_ERR];
  const char *pw = write_tmp(0, "pw", SECRET "\nsecond line\n", 0600);
  const struct opt opts[] = {{"Host", 1, {SV("127.0.0.1")}},
                             {"Port", 1, {NV(587)}},
                             {"AuthUser", 1, {SV("probe@smtp-probe.test")}},
                             {"AuthPasswordFile", 1, {SV(pw)}},
                             {"authmechanism", 1, {SV("cram-md5")}},
                             {"MailFrom", 1, {SV("probe@smtp-probe.test")}},
                             {"RcptTo", 1, {SV("postmaster@smtp-probe.test")}},
                             {"CheckInjection", 1, {SV("yes")}},
                             {"MinTLS", 1, {SV("1.3")}},
                             {NULL, 0, {{{0}, 0}}}};
  struct spc_target *t =
      parse(target_block(name_mx1, 1, opts, NULL, NULL), err, sizeof(err));
  if (t == NULL)
    fail_msg("%s", err);
  assert_string_equal(t->req.auth_user, "probe@smtp-probe.test");
  assert_string_equal(t->req.auth_secret, SECRET); /* first line only */
  assert_string_equal(t->req.auth_mech, "CRAM-MD5");
  assert_string_equal(t->req.mail_from, "probe@smtp-probe.test");
  assert_string_equal(t->req.rcpt_to, "postmaster@smtp-probe.test");
  assert_true(t->req.check_injection);
  assert_false(t->req.send_message);
  assert_int_equal(t->req.min_tls_version, 0x0304);
  assert_int_equal(cd.nlog, 0); /* mode 600: no warning */
  spc_target_free(t);

  /* MinTLS as a bare number, and the TLSv spelling. */
  const struct {
    oconfig_value_t v; /* the value */
    int want;          /* the version number */
  } tls[] = {{NV(1.0), 0x0301},
             {NV(1.1), 0x0302},
             {NV(1.2), 0x0303},
             {SV("1.0"), 0x0301},
             {SV("TLSv1.2"), 0x0303}};
  for (size_t i = 0; i < sizeof(tls) / sizeof(tls[0]); i++) {
    struct opt o[] = {{"Host", 1, {SV("127.0.0.1")}},
                      {"MinTLS", 1, {tls[i].v}},
                      {NULL, 0, {{{0}, 0}}}};
    t = parse(target_block(name_mx1, 1, o, NULL, NULL), err, sizeof(err));
    if (t == NULL)
      fail_msg("MinTLS case %zu: %s", i, err);
    assert_int_equal(t->req.min_tls_version, tls[i].want);
    spc_target_free(t);
  }

  /* PolicyFile: the policy's ports with their TLS modes, the block's Role
   * for all (request-wide: the engine applies it to each). */
  const char *pol = write_tmp(1, "policy.yml", policy_yaml, 0644);
  const struct opt popts[] = {{"Host", 1, {SV("127.0.0.1")}},
                              {"PolicyFile", 1, {SV(pol)}},
                              {"Role", 1, {SV("relay")}},
                              {NULL, 0, {{{0}, 0}}}};
  t = parse(target_block(name_mx1, 1, popts, NULL, NULL), err, sizeof(err));
  if (t == NULL)
    fail_msg("%s", err);
  assert_non_null(t->policy);
  assert_int_equal(t->req.nports, 2);
  assert_int_equal(t->req.ports[0].port, 587);
  assert_int_equal(t->req.ports[0].tls_mode, SP_TLS_STARTTLS);
  assert_int_equal(t->req.role, SP_ROLE_RELAY); /* request-wide */
  assert_int_equal(t->req.ports[1].port, 2525);
  spc_target_free(t);
}

/* A password file group or others can read is used, with a warning that
 * names block and key; the password shows in no log message. */
static void test_config_password_file_readable(void **state) {
  (void)state;
  char err[SPC_MAX_ERR];
  const char *pw = write_tmp(0, "pw-open", SECRET "\n", 0644);
  const struct opt opts[] = {{"Host", 1, {SV("127.0.0.1")}},
                             {"Port", 1, {NV(587)}},
                             {"AuthUser", 1, {SV("probe@smtp-probe.test")}},
                             {"AuthPasswordFile", 1, {SV(pw)}},
                             {NULL, 0, {{{0}, 0}}}};
  struct spc_target *t =
      parse(target_block(name_mx1, 1, opts, NULL, NULL), err, sizeof(err));
  assert_non_null(t);
  assert_string_equal(t->req.auth_secret, SECRET);
  assert_true(logged("Target \"mx1\": AuthPasswordFile", "chmod 600"));
  assert_false(secret_leaked());
  spc_target_free(t);

  /* A block that fails after the password was read: the error is about
   * the other key, and the password is in no message either. */
  const struct opt bad[] = {{"MailFrom", 1, {SV("<bad>")}},
                            {NULL, 0, {{{0}, 0}}}};
  t = parse(target_block(name_mx1, 1, opts, bad, NULL), err, sizeof(err));
  assert_null(t);
  assert_non_null(strstr(err, "MailFrom"));
  assert_null(strstr(err, SECRET));
  assert_false(secret_leaked());
}

/* One bad-input case of the new keys: up to three options on a block
 * holding only Host (and, unless dropped, Port 587). */
struct bad_case2 {
  const char *what;    /* description */
  struct opt extra[4]; /* the options (NULL key ends them) */
  bool no_port;        /* leave Port out of the base block */
  const char *key;     /* the key the message must name */
  const char *why;     /* a fragment of the reason */
};

/* Every bad value of the AUTH, trial, posture and policy keys is refused,
 * naming the block and the key; no message holds the password. */
static void test_config_bad_auth_inputs(void **state) {
  (void)state;
  const char *pw = write_tmp(0, "pw", SECRET "\n", 0600);
  const char *empty = write_tmp(1, "empty", "", 0600);
  const char *pol = write_tmp(2, "policy.yml", policy_yaml, 0600);
  const char *badpol =
      write_tmp(3, "bad.yml", "ports:\n  587:\n    tls: sometimes\n", 0600);
  const char *nopol = tmp_path(4, "nonexistent.yml");
  const char *nopw = tmp_path(5, "nonexistent-pw");
#define USER                                                                   \
  {                                                                            \
    "AuthUser", 1, {                                                           \
      SV("probe@smtp-probe.test")                                              \
    }                                                                          \
  }
#define PWF                                                                    \
  {                                                                            \
    "AuthPasswordFile", 1, {                                                   \
      SV(pw)                                                                   \
    }                                                                          \
  }
  const struct bad_case2 cases[] = {
      {"AuthUser empty",
       {{"AuthUser", 1, {SV("")}}, PWF},
       0,
       "AuthUser",
       "characters"},
      {"AuthUser with a space",
       {{"AuthUser", 1, {SV("probe user")}}, PWF},
       0,
       "AuthUser",
       "not printable"},
      {"AuthUser without password",
       {USER},
       0,
       "AuthUser",
       "needs AuthPasswordFile"},
      {"AuthUser with TLS none",
       {USER, PWF, {"TLS", 1, {SV("none")}}},
       0,
       "AuthUser",
       "never sent without TLS"},
      {"AuthPasswordFile without AuthUser",
       {PWF},
       0,
       "AuthPasswordFile",
       "needs AuthUser"},
      {"AuthPasswordFile two values",
       {USER, {"AuthPasswordFile", 2, {SV(pw), SV(pw)}}},
       0,
       "AuthPasswordFile",
       "exactly one"},
      {"AuthPasswordFile missing",
       {USER, {"AuthPasswordFile", 1, {SV(nopw)}}},
       0,
       "AuthPasswordFile",
       "No such file"},
      {"AuthPasswordFile empty",
       {USER, {"AuthPasswordFile", 1, {SV(empty)}}},
       0,
       "AuthPasswordFile",
       "empty"},
      {"inline AuthPassword",
       {USER, {"AuthPassword", 1, {SV(SECRET)}}},
       0,
       "AuthPassword",
       "AuthPasswordFile"},
      {"inline Password",
       {USER, {"Password", 1, {SV(SECRET)}}},
       0,
       "Password",
       "no passwords"},
      {"AuthMechanism unknown",
       {USER, PWF, {"AuthMechanism", 1, {SV("DIGEST-MD5")}}},
       0,
       "AuthMechanism",
       "'DIGEST-MD5' is not PLAIN, LOGIN, CRAM-MD5 or XOAUTH2"},
      {"AuthMechanism number",
       {USER, PWF, {"AuthMechanism", 1, {NV(1)}}},
       0,
       "AuthMechanism",
       "'1' is not PLAIN"},
      {"AuthMechanism without AuthUser",
       {{"AuthMechanism", 1, {SV("PLAIN")}}},
       0,
       "AuthMechanism",
       "needs AuthUser"},
      {"MailFrom brackets",
       {{"MailFrom", 1, {SV("<a@b>")}}},
       0,
       "MailFrom",
       "not printable without spaces and angle brackets"},
      {"MailFrom two values",
       {{"MailFrom", 2, {SV("a@b"), SV("c@d")}}},
       0,
       "MailFrom",
       "exactly one"},
      {"RcptTo without MailFrom",
       {{"RcptTo", 1, {SV("a@b")}}},
       0,
       "RcptTo",
       "or no MailFrom"},
      {"RcptTo with a space",
       {{"MailFrom", 1, {SV("a@b")}}, {"RcptTo", 1, {SV("c d@e")}}},
       0,
       "RcptTo",
       "without spaces"},
      {"Send", {{"Send", 1, {BV(1)}}}, 0, "Send", "not offered"},
      {"SendMessage",
       {{"SendMessage", 1, {BV(1)}}},
       0,
       "SendMessage",
       "every interval"},
      {"CheckInjection word",
       {{"CheckInjection", 1, {SV("sometimes")}}},
       0,
       "CheckInjection",
       "'sometimes' is not true or false"},
      {"CheckInjection number",
       {{"CheckInjection", 1, {NV(2)}}},
       0,
       "CheckInjection",
       "'2' is not true or false"},
      {"TLSTrial word",
       {{"TLSTrial", 1, {SV("maybe")}}},
       0,
       "TLSTrial",
       "'maybe' is not true or false"},
      /* The core's sentence; collectd's bare number 2 reads as 2.0. */
      {"MinTLS 1.4",
       {{"MinTLS", 1, {SV("1.4")}}},
       0,
       "MinTLS",
       "MinTLS: '1.4' is not 1.0, 1.1, 1.2 or 1.3"},
      {"MinTLS 2", {{"MinTLS", 1, {NV(2)}}}, 0, "MinTLS", "'2.0' is not 1.0"},
      {"MinTLS 1.25",
       {{"MinTLS", 1, {NV(1.25)}}},
       0,
       "MinTLS",
       "'1.25' is not 1.0"},
      {"MinTLS 0.9", {{"MinTLS", 1, {NV(0.9)}}}, 0, "MinTLS", "'0.9' is not"},
      {"MinTLS word",
       {{"MinTLS", 1, {SV("modern")}}},
       0,
       "MinTLS",
       "'modern' is not 1.0"},
      {"MinTLS bool", {{"MinTLS", 1, {BV(1)}}}, 0, "MinTLS", "'true' is not"},
      {"MinTLS empty", {{"MinTLS", 0, {{{0}, 0}}}}, 0, "MinTLS", "exactly one"},
      {"PolicyFile with Port",
       {{"PolicyFile", 1, {SV(pol)}}},
       0,
       "Port",
       "not with PolicyFile"},
      {"PolicyFile with TLS",
       {{"PolicyFile", 1, {SV(pol)}}, {"TLS", 1, {SV("starttls")}}},
       1,
       "TLS",
       "not with PolicyFile"},
      {"PolicyFile missing",
       {{"PolicyFile", 1, {SV(nopol)}}},
       1,
       "PolicyFile",
       "nonexistent.yml"},
      {"PolicyFile bad value",
       {{"PolicyFile", 1, {SV(badpol)}}},
       1,
       "PolicyFile",
       "line"},
      {"PolicyFile empty name",
       {{"PolicyFile", 1, {SV("")}}},
       1,
       "PolicyFile",
       "an empty file name"},
  };
#undef USER
#undef PWF
  const struct opt with_port[] = {{"Host", 1, {SV("127.0.0.1")}},
                                  {"Port", 1, {NV(587)}},
                                  {NULL, 0, {{{0}, 0}}}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const struct bad_case2 *c = &cases[i];
    char err[SPC_MAX_ERR];
    struct spc_target *t = parse(target_block(name_mx1, 1, with_port, c->extra,
                                              c->no_port ? "Port" : NULL),
                                 err, sizeof(err));
    if (t != NULL || strstr(err, "Target \"mx1\"") == NULL ||
        strstr(err, c->key) == NULL || strstr(err, c->why) == NULL)
      fail_msg("case \"%s\": target %p, message \"%s\"", c->what, (void *)t,
               err);
    if (strstr(err, SECRET) != NULL)
      fail_msg("case \"%s\": the password is in the message", c->what);
    spc_target_free(t);
  }
  assert_false(secret_leaked());
}

/* The AUTH fields reach the engine with each submitted round. */
static void test_read_submits_auth(void **state) {
  (void)state;
  const char *pw = write_tmp(0, "pw", SECRET "\n", 0600);
  const oconfig_value_t n_a[] = {SV("a")};
  const struct opt opts[] = {{"Host", 1, {SV("127.0.0.1")}},
                             {"Port", 1, {NV(587)}},
                             {"AuthUser", 1, {SV("probe@smtp-probe.test")}},
                             {"AuthPasswordFile", 1, {SV(pw)}},
                             {"CheckInjection", 1, {BV(1)}},
                             {"MinTLS", 1, {SV("1.2")}},
                             {NULL, 0, {{{0}, 0}}}};
  oconfig_item_t kids[1];
  kids[0] = *target_block(n_a, 1, opts, NULL, NULL);
  assert_int_equal(spc_config(item("Plugin", NULL, 0, kids, 1)), 0);
  assert_int_equal(spc_init(), 0);
  user_data_t ud = cd.read_uds[0];
  assert_int_equal(spc_read(&ud), 0);
  assert_int_equal(eng.submits, 1);
  assert_string_equal(eng.last_req.auth_user, "probe@smtp-probe.test");
  assert_string_equal(eng.last_req.auth_secret, SECRET);
  assert_true(eng.last_req.check_injection);
  assert_int_equal(eng.last_req.min_tls_version, 0x0303);
  assert_false(eng.last_req.send_message);
  assert_false(secret_leaked());
}

/* Configure one target "pol" probing 127.0.0.1 with the test policy
 * (AllAddresses as given) and run init; returns the target. */
static struct spc_target *configure_policy(bool all_addresses) {
  char err[SPC_MAX_ERR];
  const char *pol = write_tmp(1, "policy.yml", policy_yaml, 0600);
  const oconfig_value_t n_pol[] = {SV("pol")};
  const struct opt opts[] = {{"Host", 1, {SV("127.0.0.1")}},
                             {"PolicyFile", 1, {SV(pol)}},
                             {"AllAddresses", 1, {BV(all_addresses)}},
                             {NULL, 0, {{{0}, 0}}}};
  oconfig_item_t kids[1];
  kids[0] = *target_block(n_pol, 1, opts, NULL, NULL);
  assert_int_equal(spc_config(item("Plugin", NULL, 0, kids, 1)), 0);
  if (spc_targets() == NULL) {
    snprintf(err, sizeof(err), "%s", cd.nlog > 0 ? cd.log[0] : "?");
    fail_msg("policy block refused: %s", err);
  }
  assert_int_equal(spc_init(), 0);
  return spc_targets();
}

/* Fill a result of port 587 that follows the policy (STARTTLS, TLS 1.3,
 * AUTH PLAIN after TLS). */
static void policy_ok_result(struct sp_result *r) {
  good_result(r, 587);
  snprintf(r->tls_version, sizeof(r->tls_version), "TLSv1.3");
  r->caps_plain.seen = true;
  r->caps_plain.flags = SP_CAP_STARTTLS;
  r->caps_tls.seen = true;
  r->caps_tls.flags = SP_CAP_AUTH;
  snprintf(r->caps_tls.auth_mechs, sizeof(r->caps_tls.auth_mechs), "PLAIN");
}

/* Fill a refused result of a port. */
static void refused_result(struct sp_result *r, uint16_t port) {
  memset(r, 0, sizeof(*r));
  r->port = port;
  r->role = SP_ROLE_SUBMISSION;
  r->code = SP_CONNECT_REFUSED;
  r->state = SP_STATE_CRITICAL;
  r->phase_done[SP_PHASE_CONNECT] = true;
  r->phase_done[SP_PHASE_TOTAL] = true;
  snprintf(r->detail, sizeof(r->detail), "Connection refused");
}

/* Notifications about policy deviations (type_instance "policy") whose
 * message holds every given fragment, from index from on. */
static int policy_notifs(int from, const char *a, const char *b) {
  int n = 0;
  for (int i = from; i < cd.nnotifs; i++) {
    const notification_t *x = &cd.notifs[i];
    if (strcmp(x->type_instance, "policy") == 0 &&
        strstr(x->message, a) != NULL && (b == NULL || strstr(x->message, b)))
      n++;
  }
  return n;
}

/* The last dispatched value of an identifier; -1 when there is none. */
static double last_value(const char *inst, const char *type,
                         const char *tinst) {
  for (int i = cd.nvalues - 1; i >= 0; i--) {
    const value_list_t *vl = &cd.values[i];
    if (strcmp(vl->plugin_instance, inst) == 0 && strcmp(vl->type, type) == 0 &&
        strcmp(vl->type_instance, tinst) == 0)
      return cd.gauges[i];
  }
  return -1;
}

/* Fill the two results of one policy round (the plugin's policy check
 * rewrites results, so every round gets fresh ones): 587 with its TLS
 * version and mechanism list, 2525 refused or answering. */
static void policy_round(struct sp_batch *b, const char *tls_version,
                         const char *mechs, bool open_2525) {
  policy_ok_result(&b->results[0]);
  snprintf(b->results[0].tls_version, sizeof(b->results[0].tls_version), "%s",
           tls_version);
  snprintf(b->results[0].caps_tls.auth_mechs,
           sizeof(b->results[0].caps_tls.auth_mechs), "%s", mechs);
  if (open_2525)
    good_result(&b->results[1], 2525);
  else
    refused_result(&b->results[1], 2525);
}

/* Each policy deviation is notified once when it appears (FAILURE, naming
 * target, port, rule and detail), not every round; an OKAY follows when
 * the port's deviations have gone; a closed port the policy expects closed
 * counts as success. */
/* Dispatch a round and drop its recommendation notification (tested on
 * its own), so a test can count the others. */
static void dispatch_without_recommendation(struct spc_target *t,
                                            struct sp_batch *b, cdtime_t when) {
  spc_dispatch_batch(t, b, when);
  int kept = 0;
  for (int i = 0; i < cd.nnotifs; i++)
    if (strcmp(cd.notifs[i].type_instance, "recommendation") != 0)
      cd.notifs[kept++] = cd.notifs[i];
  cd.nnotifs = kept;
}

static void test_policy_deviation_notifications(void **state) {
  (void)state;
  struct spc_target *t = configure_policy(false);
  struct sp_batch *b = new_batch(2);
  cdtime_t when = TIME_T_TO_CDTIME_T_STATIC(1700000000);

  /* Round 1: 587 has TLS 1.0 and offers LOGIN too: two deviations. */
  policy_round(b, "TLSv1.0", "PLAIN LOGIN", false);
  dispatch_without_recommendation(t, b, when);

  double v = -1;
  assert_non_null(find_value("pol-587", "bool", "success", &v));
  assert_true(v == 0.0);
  assert_non_null(find_value("pol-2525", "bool", "success", &v));
  assert_true(v == 1.0); /* closed, as the policy expects */
  /* The port's state notification (policy_violation), then one per
   * deviation. */
  assert_int_equal(cd.nnotifs, 3);
  assert_string_equal(cd.notifs[0].type_instance, "success");
  assert_non_null(strstr(cd.notifs[0].message, "policy_violation"));
  assert_int_equal(policy_notifs(0, "pol port 587: CRITICAL policy_violation",
                                 "rule min_tls: TLSv1.0 is below"),
                   1);
  assert_int_equal(
      policy_notifs(0, "rule mechanisms: mechanisms LOGIN are offered", NULL),
      1);
  for (int i = 1; i < 3; i++) {
    assert_int_equal(cd.notifs[i].severity, NOTIF_FAILURE);
    assert_string_equal(cd.notifs[i].plugin_instance, "pol-587");
    assert_string_equal(cd.notifs[i].host, "testhost");
  }

  /* Round 2: the same: nothing new. */
  policy_round(b, "TLSv1.0", "PLAIN LOGIN", false);
  dispatch_without_recommendation(t, b, when + 1);
  assert_int_equal(cd.nnotifs, 3);

  /* Round 3: TLS fixed, LOGIN still offered: the remaining deviation was
   * notified already, the port stays policy_violation: nothing new. */
  policy_round(b, "TLSv1.3", "PLAIN LOGIN", false);
  dispatch_without_recommendation(t, b, when + 2);
  assert_int_equal(cd.nnotifs, 3);

  /* Round 4: 587 follows the policy: OKAY (state) and OKAY (policy);
   * 2525 answers although it should be closed: a new deviation. */
  policy_round(b, "TLSv1.3", "PLAIN", true);
  dispatch_without_recommendation(t, b, when + 3);
  assert_int_equal(policy_notifs(3, "pol port 587", "no deviation any more"),
                   1);
  assert_int_equal(policy_notifs(3, "pol port 2525: CRITICAL policy_violation",
                                 "rule state"),
                   1);
  int okay = 0, failure = 0;
  for (int i = 3; i < cd.nnotifs; i++) {
    if (strcmp(cd.notifs[i].type_instance, "policy") != 0)
      continue;
    okay += cd.notifs[i].severity == NOTIF_OKAY;
    failure += cd.notifs[i].severity == NOTIF_FAILURE;
  }
  assert_int_equal(okay, 1);
  assert_int_equal(failure, 1);
  assert_true(last_value("pol-2525", "bool", "success") == 0.0);
  assert_true(last_value("pol-587", "bool", "success") == 1.0);
  int after4 = cd.nnotifs;

  /* Round 5: unchanged: nothing new. Round 6: 587 deviates again: it is
   * notified again. */
  policy_round(b, "TLSv1.3", "PLAIN", true);
  dispatch_without_recommendation(t, b, when + 4);
  assert_int_equal(cd.nnotifs, after4);
  policy_round(b, "TLSv1.1", "PLAIN", true);
  dispatch_without_recommendation(t, b, when + 5);
  assert_int_equal(policy_notifs(after4, "pol port 587", "rule min_tls"), 1);
  __wrap_sp_batch_free(b);
}

/* With AllAddresses each address of a port has its own deviations. */
static void test_policy_per_address(void **state) {
  (void)state;
  struct spc_target *t = configure_policy(true);
  struct sp_batch *b = new_batch(2);
  policy_ok_result(&b->results[0]);
  policy_ok_result(&b->results[1]);
  snprintf(b->results[0].address, sizeof(b->results[0].address), "192.0.2.1");
  snprintf(b->results[1].address, sizeof(b->results[1].address), "192.0.2.2");
  snprintf(b->results[1].tls_version, sizeof(b->results[1].tls_version),
           "TLSv1.1");
  spc_dispatch_batch(t, b, TIME_T_TO_CDTIME_T_STATIC(1700000000));
  assert_int_equal(policy_notifs(0, "rule min_tls", NULL), 1);
  assert_int_equal(policy_notifs(0, "address 192.0.2.2", "rule min_tls"), 1);
  double v = -1;
  assert_non_null(find_value("pol-587-192.0.2.1", "bool", "success", &v));
  assert_true(v == 1.0);
  assert_non_null(find_value("pol-587-192.0.2.2", "bool", "success", &v));
  assert_true(v == 0.0);
  __wrap_sp_batch_free(b);
}

/* A policy deviation whose detail holds control bytes and is long is cut
 * and sanitised like any notification. */
static void test_policy_notification_sanitised(void **state) {
  (void)state;
  struct spc_target *t = configure_policy(false);
  struct sp_batch *b = new_batch(1);
  policy_ok_result(&b->results[0]);
  /* A server-chosen mechanism list, with an escape byte. */
  memset(b->results[0].caps_tls.auth_mechs, 'M',
         sizeof(b->results[0].caps_tls.auth_mechs) - 1);
  b->results[0].caps_tls.auth_mechs[0] = '\033';
  spc_dispatch_batch(t, b, TIME_T_TO_CDTIME_T_STATIC(1700000000));
  assert_int_equal(policy_notifs(0, "rule mechanisms", NULL), 1);
  for (int i = 0; i < cd.nnotifs; i++) {
    const char *m = cd.notifs[i].message;
    assert_true(strlen(m) < NOTIF_MAX_MSG_LEN);
    for (const char *p = m; *p != '\0'; p++)
      assert_true(*p >= 0x20 && *p <= 0x7e);
  }
  __wrap_sp_batch_free(b);
}

/* success is sp_result_success: a WARNING (cert_expiring) is not success. */
static void test_success_is_core_definition(void **state) {
  (void)state;
  configure_two();
  struct spc_target *t = spc_targets()->next;
  struct sp_batch *b = new_batch(1);
  good_result(&b->results[0], 25);
  b->results[0].code = SP_CERT_EXPIRING;
  b->results[0].state = SP_STATE_WARNING;
  spc_dispatch_batch(t, b, TIME_T_TO_CDTIME_T_STATIC(1700000000));
  double v = -1;
  assert_non_null(find_value("mx2-25", "bool", "success", &v));
  assert_true(v == (sp_result_success(&b->results[0]) ? 1.0 : 0.0));
  assert_true(v == 0.0);
  __wrap_sp_batch_free(b);
}

/* ---- Docs that cannot drift (unit.collectd.docs) ---------------------- */

#define MAX_DOC_KEYS 64

static const char *docs_usage; /* collectd/USAGE.md */
static const char *docs_man;   /* packaging/man/smtp_probe.5 */

/* The keys one document lists. */
struct doc_keys {
  char key[MAX_DOC_KEYS][64]; /* the keys, as written */
  int n;                      /* how many */
};

/* Read a whole file into a NUL-terminated heap buffer. */
static char *slurp(const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL)
    fail_msg("cannot open %s", path);
  static char buf[256 * 1024];
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *copy = strdup(buf);
  assert_non_null(copy);
  return copy;
}

/* Add the leading [A-Za-z] word of s to the list. */
static void doc_add(struct doc_keys *d, const char *s) {
  size_t len =
      strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
  assert_true(len > 0 && len < sizeof(d->key[0]) && d->n < MAX_DOC_KEYS);
  snprintf(d->key[d->n++], sizeof(d->key[0]), "%.*s", (int)len, s);
}

/* The keys of USAGE.md's key table: the first cell of each row after the
 * "| Key | Value | Default |" header, but the <Target> block itself. */
static void usage_keys(struct doc_keys *d) {
  char *text = slurp(docs_usage);
  char *p = strstr(text, "\n| Key | Value | Default |\n");
  assert_non_null(p);
  p = strchr(p + 1, '\n') + 1;
  for (char *line = p; strncmp(line, "|", 1) == 0;) {
    if (strncmp(line, "| `", 3) == 0 && line[3] != '<')
      doc_add(d, line + 3);
    char *nl = strchr(line, '\n');
    line = nl != NULL ? nl + 1 : line + strlen(line);
  }
  free(text);
}

/* The keys of the man page: the first word of each .TP/.TQ tag in
 * OPTIONS (`.BI "Host \(dq" ...`, `.BR "Verify " ...`). */
static void man_keys(struct doc_keys *d) {
  char *text = slurp(docs_man);
  char *p = strstr(text, "\n.SH OPTIONS\n");
  assert_non_null(p);
  char *end = strstr(p + 1, "\n.SH ");
  assert_non_null(end);
  *end = '\0';
  for (char *tag = p; (tag = strstr(tag, "\n.T")) != NULL; tag++) {
    if (strncmp(tag, "\n.TP\n", 5) != 0 && strncmp(tag, "\n.TQ\n", 5) != 0)
      continue;
    const char *q = strchr(tag + 5, '"');
    const char *nl = strchr(tag + 5, '\n');
    if (q != NULL && (nl == NULL || q < nl))
      doc_add(d, q + 1);
  }
  free(text);
}

/* Whether a list holds a key (case-insensitive, as collectd's keys are). */
static bool doc_has(const struct doc_keys *d, const char *key) {
  for (int i = 0; i < d->n; i++)
    if (strcasecmp(d->key[i], key) == 0)
      return true;
  return false;
}

/* Every key the plugin accepts (the name map and its own) is in USAGE.md's
 * key table and in smtp_probe(5). */
static void test_docs_list_every_key(void **state) {
  (void)state;
  static struct doc_keys usage, man;
  memset(&usage, 0, sizeof(usage));
  memset(&man, 0, sizeof(man));
  usage_keys(&usage);
  man_keys(&man);
  size_t i = 0;
  for (const char *k; (k = spc_key_at(i)) != NULL; i++) {
    if (!doc_has(&usage, k))
      fail_msg("%s is not in the key table of %s", k, docs_usage);
    if (!doc_has(&man, k))
      fail_msg("%s is not in the OPTIONS of %s", k, docs_man);
  }
  assert_true(i >= 25);
}

/* Every key documented there is accepted: a block with it is not refused
 * as an unknown option, and it is one of spc_key_at's. */
static void test_docs_keys_accepted(void **state) {
  (void)state;
  static struct doc_keys docs[2];
  memset(docs, 0, sizeof(docs));
  usage_keys(&docs[0]);
  man_keys(&docs[1]);
  assert_true(docs[0].n >= 25 && docs[1].n >= 25);
  for (int d = 0; d < 2; d++) {
    for (int i = 0; i < docs[d].n; i++) {
      const char *k = docs[d].key[i];
      char err[SPC_MAX_ERR];
      char unknown[128];
      struct opt opts[] = {{"Host", 1, {SV("127.0.0.1")}},
                           {k, 1, {SV("1")}},
                           {NULL, 0, {{{0}, 0}}}};
      spc_target_free(
          parse(target_block(name_mx1, 1, opts, NULL, NULL), err, sizeof(err)));
      snprintf(unknown, sizeof(unknown), ": %s: unknown option", k);
      if (strstr(err, unknown) != NULL)
        fail_msg("%s documents %s, the plugin refuses it: %s",
                 d == 0 ? docs_usage : docs_man, k, err);
      bool listed = false;
      for (size_t j = 0; spc_key_at(j) != NULL; j++)
        listed = listed || strcasecmp(spc_key_at(j), k) == 0;
      if (!listed)
        fail_msg("%s is documented but not in the name map", k);
    }
  }
}

/* Run the tests (with --docs USAGE.md MANPAGE: the docs tests). */
int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "--docs") == 0) {
    docs_usage = argv[2];
    docs_man = argv[3];
    const struct CMUnitTest docs_tests[] = {
        cmocka_unit_test_setup_teardown(test_docs_list_every_key, reset, reset),
        cmocka_unit_test_setup_teardown(test_docs_keys_accepted, reset, reset),
    };
    return cmocka_run_group_tests(docs_tests, NULL, NULL);
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_module_register, reset, reset),
      cmocka_unit_test_setup_teardown(test_config_full_block, reset, reset),
      cmocka_unit_test_setup_teardown(test_config_defaults, reset, reset),
      cmocka_unit_test_setup_teardown(test_config_port_lines_and_bool_words,
                                      reset, reset),
      cmocka_unit_test_setup_teardown(test_config_cert_days_defaults, reset,
                                      reset),
      cmocka_unit_test_setup_teardown(test_config_values_as_text, reset, reset),
      cmocka_unit_test_setup_teardown(test_config_bad_inputs, reset, reset),
      cmocka_unit_test_setup_teardown(test_config_option_as_block, reset,
                                      reset),
      cmocka_unit_test_setup_teardown(test_config_bad_names, reset, reset),
      cmocka_unit_test_setup_teardown(test_config_mixed_blocks, reset, reset),
      cmocka_unit_test_setup_teardown(test_init_fails_when_all_blocks_bad,
                                      reset, reset),
      cmocka_unit_test_setup_teardown(test_init_fails_without_config, reset,
                                      reset),
      cmocka_unit_test_setup_teardown(test_init_fails_without_engine, reset,
                                      reset),
      cmocka_unit_test_setup_teardown(test_init_registers_reads, reset, reset),
      cmocka_unit_test_setup_teardown(test_read_cycle, reset, reset),
      cmocka_unit_test_setup_teardown(test_read_submit_failure, reset, reset),
      cmocka_unit_test_setup_teardown(test_values_of_good_round, reset, reset),
      cmocka_unit_test_setup_teardown(test_recommendation_notifications, reset,
                                      reset),
      cmocka_unit_test_setup_teardown(test_notifications_on_state_change, reset,
                                      reset),
      cmocka_unit_test_setup_teardown(test_expired_cert, reset, reset),
      cmocka_unit_test_setup_teardown(test_notification_sanitised, reset,
                                      reset),
      cmocka_unit_test_setup_teardown(test_all_addresses_instances, reset,
                                      reset),
      cmocka_unit_test_setup_teardown(test_state_slots_bounded, reset, reset),
      cmocka_unit_test_setup_teardown(test_shutdown_frees_pending_round, reset,
                                      reset),
      cmocka_unit_test_setup_teardown(test_config_auth_keys, reset, reset),
      cmocka_unit_test_setup_teardown(test_config_password_file_readable, reset,
                                      reset),
      cmocka_unit_test_setup_teardown(test_config_bad_auth_inputs, reset,
                                      reset),
      cmocka_unit_test_setup_teardown(test_read_submits_auth, reset, reset),
      cmocka_unit_test_setup_teardown(test_policy_deviation_notifications,
                                      reset, reset),
      cmocka_unit_test_setup_teardown(test_policy_per_address, reset, reset),
      cmocka_unit_test_setup_teardown(test_policy_notification_sanitised, reset,
                                      reset),
      cmocka_unit_test_setup_teardown(test_success_is_core_definition, reset,
                                      reset),
  };
  if (mkdtemp(tmpdir) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  const char *names[] = {"pw", "pw-open", "empty", "policy.yml", "bad.yml"};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    unlink(tmp_path(0, names[i]));
  rmdir(tmpdir);
  return failed;
}
