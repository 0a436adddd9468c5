/*
 * metrics.c - probe results to samples, and the exporter's own metrics
 * (see metrics.h).
 */
#include "metrics.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Most AUTH mechanisms exposed per capability list. */
#define MAX_MECHS 16

/* Set up the stats; max_concurrent is the slot count. */
void stats_init(struct exporter_stats *st, int max_concurrent) {
  memset(st, 0, sizeof(*st));
  pthread_mutex_init(&st->lock, NULL);
  st->max_concurrent = max_concurrent;
}

/* Count one finished probe (one result) of a module. */
void stats_count_probe(struct exporter_stats *st, const char *module,
                       enum sp_code code) {
  if ((unsigned)code >= SP_CODE_COUNT)
    return;
  pthread_mutex_lock(&st->lock);
  int i;
  for (i = 0; i < st->nmodules; i++)
    if (strcmp(st->modules[i].name, module) == 0)
      break;
  if (i == st->nmodules) {
    if (st->nmodules < STATS_MAX_MODULES) {
      st->nmodules++;
      snprintf(st->modules[i].name, sizeof(st->modules[i].name), "%s", module);
    } else {
      i = STATS_MAX_MODULES - 1; /* fold the rest into the last one */
    }
  }
  st->modules[i].codes[code]++;
  pthread_mutex_unlock(&st->lock);
}

/* Declare every /probe family, in the order they are written. */
static void declare_probe_families(struct expo_set *set) {
  expo_family(set, "smtp_probe_success", EXPO_GAUGE,
              "1 when the port's diagnosis is ok, else 0 (see "
              "smtp_probe_diagnosis_info and smtp_probe_state).");
  expo_family(set, "smtp_probe_duration_seconds", EXPO_GAUGE,
              "How long the probe of the port took, in seconds.");
  expo_family(set, "smtp_probe_phase_duration_seconds", EXPO_GAUGE,
              "Duration of each phase of the probe that happened, in "
              "seconds.");
  expo_family(set, "smtp_probe_diagnosis_info", EXPO_GAUGE,
              "The probe's diagnosis code (smtp-probe code word), value 1.");
  expo_family(set, "smtp_probe_state", EXPO_GAUGE,
              "Monitoring state of the port for its role: 0 OK, 1 WARNING, "
              "2 CRITICAL, 3 UNKNOWN.");
  expo_family(set, "smtp_probe_info", EXPO_GAUGE,
              "The port's role, requested TLS mode and the address "
              "connected to, value 1.");
  expo_family(set, "smtp_probe_ip_protocol", EXPO_GAUGE,
              "IP version of the address connected to (4 or 6).");
  expo_family(set, "smtp_probe_reply_code", EXPO_GAUGE,
              "The last SMTP reply code the server sent in each phase.");
  expo_family(set, "smtp_probe_tls_established", EXPO_GAUGE,
              "Whether a TLS session was established (1) or not (0).");
  expo_family(set, "smtp_probe_tls_implicit", EXPO_GAUGE,
              "Whether TLS started with the first byte (1) rather than "
              "STARTTLS (0).");
  expo_family(set, "smtp_probe_tls_version_info", EXPO_GAUGE,
              "The negotiated TLS protocol version, value 1.");
  expo_family(set, "smtp_probe_tls_cipher_info", EXPO_GAUGE,
              "The negotiated TLS cipher suite, value 1.");
  expo_family(set, "smtp_probe_cert_verified", EXPO_GAUGE,
              "Whether the certificate chain verified (1) or not (0).");
  expo_family(set, "smtp_probe_cert_hostname_match", EXPO_GAUGE,
              "Whether the certificate names the server name (1) or not "
              "(0); absent when not checked.");
  expo_family(set, "smtp_probe_cert_not_after_timestamp_seconds", EXPO_GAUGE,
              "Expiry of the server's leaf certificate, Unix seconds.");
  expo_family(set, "smtp_probe_cert_chain_earliest_not_after_timestamp_seconds",
              EXPO_GAUGE,
              "Earliest expiry of all certificates the server sent, Unix "
              "seconds.");
  expo_family(set, "smtp_probe_starttls_advertised", EXPO_GAUGE,
              "Whether the EHLO reply before TLS advertised STARTTLS.");
  expo_family(set, "smtp_probe_auth_advertised", EXPO_GAUGE,
              "Whether the EHLO reply advertised AUTH, before (tls=false) "
              "and inside TLS (tls=true).");
  expo_family(set, "smtp_probe_auth_mechanism_info", EXPO_GAUGE,
              "An AUTH mechanism the server advertised, before (tls=false) "
              "or inside TLS (tls=true), value 1.");
  expo_family(set, "smtp_probe_auth_used_info", EXPO_GAUGE,
              "The mechanism the probe authenticated with (module "
              "auth_user), value 1; smtp_probe_reply_code{phase=\"auth\"} "
              "has the server's answer.");
  expo_family(set, "smtp_probe_starttls_injection_vulnerable", EXPO_GAUGE,
              "Whether the server answered commands injected before "
              "STARTTLS (module check_injection).");
  expo_family(set, "smtp_probe_size_limit_bytes", EXPO_GAUGE,
              "The SIZE limit the server advertised (inside TLS when there "
              "was TLS), in bytes; 0 means no fixed limit.");
}

/* Write a port number as decimal digits (snprintf's "%u", without its
 * cost on every sample); plen must hold 6 bytes. */
static void format_port(uint16_t port, char *out, size_t plen) {
  char digits[6];
  size_t n = 0;
  unsigned v = port;
  do {
    digits[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (size_t i = 0; i < n && i + 1 < plen; i++)
    out[i] = digits[n - 1 - i];
  out[n < plen ? n : plen - 1] = '\0';
}

/* The labels common to every sample of a result: port (and address for
 * per-address results). Returns how many pairs were written to kv. */
static int base_labels(const struct sp_result *res, char *port, size_t plen,
                       const char **kv) {
  format_port(res->port, port, plen);
  kv[0] = "port";
  kv[1] = port;
  if (res->per_address) {
    kv[2] = "address";
    kv[3] = res->address;
    return 2;
  }
  return 1;
}

/* Add one sample with the result's base labels plus up to two more. */
static void add(struct expo_set *set, const struct sp_result *res,
                const char *family, double value, const char *k1,
                const char *v1, const char *k2, const char *v2) {
  char port[8];
  const char *kv[2 * EXPO_MAX_LABELS];
  int n = base_labels(res, port, sizeof(port), kv);
  if (k1 != NULL) {
    kv[2 * n] = k1;
    kv[2 * n + 1] = v1;
    n++;
  }
  if (k2 != NULL) {
    kv[2 * n] = k2;
    kv[2 * n + 1] = v2;
    n++;
  }
  expo_addv(set, family, value, kv, n);
}

/* Add the AUTH samples of one capability list. */
static void add_auth(struct expo_set *set, const struct sp_result *res,
                     const struct sp_caps *caps, const char *tls) {
  if (!caps->seen)
    return;
  add(set, res, "smtp_probe_auth_advertised",
      (caps->flags & SP_CAP_AUTH) ? 1 : 0, "tls", tls, NULL, NULL);
  char mechs[sizeof(caps->auth_mechs)];
  snprintf(mechs, sizeof(mechs), "%s", caps->auth_mechs);
  char *save = NULL;
  int count = 0;
  for (char *m = strtok_r(mechs, " ", &save); m != NULL && count < MAX_MECHS;
       m = strtok_r(NULL, " ", &save), count++)
    add(set, res, "smtp_probe_auth_mechanism_info", 1, "mechanism", m, "tls",
        tls);
}

/* Add every sample of one result. */
static void add_result(struct expo_set *set, const struct sp_result *res) {
  add(set, res, "smtp_probe_success", sp_result_success(res) ? 1 : 0, NULL,
      NULL, NULL, NULL);
  add(set, res, "smtp_probe_duration_seconds", res->phase_s[SP_PHASE_TOTAL],
      NULL, NULL, NULL, NULL);
  for (int p = 0; p < SP_PHASE_COUNT; p++)
    if (res->phase_done[p] && p != SP_PHASE_TOTAL)
      add(set, res, "smtp_probe_phase_duration_seconds", res->phase_s[p],
          "phase", sp_phase_name((enum sp_phase)p), NULL, NULL);
  add(set, res, "smtp_probe_diagnosis_info", 1, "code", sp_code_name(res->code),
      NULL, NULL);
  add(set, res, "smtp_probe_state", (double)res->state, NULL, NULL, NULL, NULL);
  char info_labels_role[32];
  snprintf(info_labels_role, sizeof(info_labels_role), "%s",
           sp_role_name(res->role));
  {
    char port[8];
    const char *kv[2 * EXPO_MAX_LABELS];
    int n = base_labels(res, port, sizeof(port), kv);
    kv[2 * n] = "role", kv[2 * n + 1] = info_labels_role, n++;
    kv[2 * n] = "tls_mode", kv[2 * n + 1] = sp_tls_mode_name(res->tls_mode),
           n++;
    if (!res->per_address)
      kv[2 * n] = "address", kv[2 * n + 1] = res->address, n++;
    expo_addv(set, "smtp_probe_info", 1, kv, n);
  }
  if (res->address[0] != '\0')
    add(set, res, "smtp_probe_ip_protocol", strchr(res->address, ':') ? 6 : 4,
        NULL, NULL, NULL, NULL);
  for (int p = 0; p < SP_PHASE_COUNT; p++)
    if (res->reply_code[p] != 0)
      add(set, res, "smtp_probe_reply_code", res->reply_code[p], "phase",
          sp_phase_name((enum sp_phase)p), NULL, NULL);
  add(set, res, "smtp_probe_tls_established", res->tls ? 1 : 0, NULL, NULL,
      NULL, NULL);
  if (res->tls) {
    add(set, res, "smtp_probe_tls_implicit", res->implicit_tls ? 1 : 0, NULL,
        NULL, NULL, NULL);
    if (res->tls_version[0])
      add(set, res, "smtp_probe_tls_version_info", 1, "version",
          res->tls_version, NULL, NULL);
    if (res->tls_cipher[0])
      add(set, res, "smtp_probe_tls_cipher_info", 1, "cipher", res->tls_cipher,
          NULL, NULL);
    add(set, res, "smtp_probe_cert_verified", res->verified ? 1 : 0, NULL, NULL,
        NULL, NULL);
    if (res->hostname_check >= 0)
      add(set, res, "smtp_probe_cert_hostname_match",
          res->hostname_check == 1 ? 1 : 0, NULL, NULL, NULL, NULL);
  }
  if (res->leaf_not_after != 0)
    add(set, res, "smtp_probe_cert_not_after_timestamp_seconds",
        (double)res->leaf_not_after, NULL, NULL, NULL, NULL);
  if (res->chain_not_after != 0)
    add(set, res, "smtp_probe_cert_chain_earliest_not_after_timestamp_seconds",
        (double)res->chain_not_after, NULL, NULL, NULL, NULL);
  if (res->caps_plain.seen)
    add(set, res, "smtp_probe_starttls_advertised",
        (res->caps_plain.flags & SP_CAP_STARTTLS) ? 1 : 0, NULL, NULL, NULL,
        NULL);
  add_auth(set, res, &res->caps_plain, "false");
  add_auth(set, res, &res->caps_tls, "true");
  if (res->auth_mech[0] != '\0')
    add(set, res, "smtp_probe_auth_used_info", 1, "mechanism", res->auth_mech,
        NULL, NULL);
  if (res->injection_tested)
    add(set, res, "smtp_probe_starttls_injection_vulnerable",
        res->injection_vulnerable ? 1 : 0, NULL, NULL, NULL, NULL);
  const struct sp_caps *caps =
      res->caps_tls.seen ? &res->caps_tls : &res->caps_plain;
  if (caps->seen && (caps->flags & SP_CAP_SIZE))
    add(set, res, "smtp_probe_size_limit_bytes", (double)caps->size_limit, NULL,
        NULL, NULL, NULL);
}

/* Declare the /probe families and add the samples of every result. */
int metrics_probe(struct expo_set *set, const struct sp_batch *batch) {
  declare_probe_families(set);
  for (int i = 0; i < batch->nresults; i++)
    add_result(set, &batch->results[i]);
  const struct sp_recommendation *rec = &batch->recommendation;
  expo_family(set, "smtp_probe_recommendation_info", EXPO_GAUGE,
              "The port (and TLS mode) an application should use, from the "
              "ports probed together: 587 STARTTLS first, then 465, 2525 "
              "only when 587 is blocked; absent when none works or for "
              "relay-only modules. Value 1.");
  if (rec->has) {
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)rec->port);
    expo_add(set, "smtp_probe_recommendation_info", 1, "port", port, "tls_mode",
             sp_tls_mode_name(rec->tls_mode), NULL);
  }
  return expo_error(set) ? -1 : 0;
}

/* Add one sample per port and rule of the deviations (see metrics.h). */
int metrics_policy(struct expo_set *set, const struct sp_deviation *devs,
                   int ndevs) {
  expo_family(set, "smtp_probe_policy_deviation_info", EXPO_GAUGE,
              "A rule of the module's port policy the port breaks (state, "
              "tls, auth, mechanisms, min_tls), value 1.");
  for (int i = 0; i < ndevs; i++) {
    bool seen = false;
    for (int j = 0; j < i && !seen; j++)
      seen = devs[j].port == devs[i].port &&
             strcmp(devs[j].rule, devs[i].rule) == 0;
    if (seen)
      continue;
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)devs[i].port);
    expo_add(set, "smtp_probe_policy_deviation_info", 1, "port", port, "rule",
             devs[i].rule, NULL);
  }
  return expo_error(set) ? -1 : 0;
}

/* Add the exporter's own metrics (see metrics.h). */
int metrics_self(struct expo_set *set, struct exporter_stats *st,
                 const struct build_versions *versions, int engine_inflight) {
  expo_family(set, "smtp_exporter_build_info", EXPO_GAUGE,
              "Versions smtp_exporter was built with, value 1.");
  expo_add(set, "smtp_exporter_build_info", 1, "version", versions->version,
           "libmicrohttpd", versions->libmicrohttpd, "libyaml",
           versions->libyaml, NULL);
  expo_family(set, "smtp_exporter_probes_total", EXPO_COUNTER,
              "Probes (one per port and address) by module and diagnosis "
              "code.");
  expo_family(set, "smtp_exporter_probe_requests_total", EXPO_COUNTER,
              "/probe requests answered, by HTTP status.");
  expo_family(set, "smtp_exporter_http_requests_unauthorized_total",
              EXPO_COUNTER,
              "HTTP requests refused with 401 (basic_auth_users of the web "
              "config).");
  expo_family(set, "smtp_exporter_probe_requests_rejected_total", EXPO_COUNTER,
              "/probe requests that found no free probe slot before their "
              "deadline (answered 503).");
  expo_family(set, "smtp_exporter_probes_in_flight", EXPO_GAUGE,
              "/probe requests holding a probe slot now.");
  expo_family(set, "smtp_exporter_probe_requests_waiting", EXPO_GAUGE,
              "/probe requests waiting for a probe slot now.");
  expo_family(set, "smtp_exporter_probe_concurrency_limit", EXPO_GAUGE,
              "Probe slots (--probe.max-concurrent).");
  expo_family(set, "smtp_exporter_engine_probes_in_flight", EXPO_GAUGE,
              "Port probes the engine is running now.");
  expo_family(set, "smtp_exporter_config_last_reload_successful", EXPO_GAUGE,
              "Whether the last configuration (re)load succeeded.");
  expo_family(set, "smtp_exporter_config_last_reload_success_timestamp_seconds",
              EXPO_GAUGE,
              "Time of the last successful configuration (re)load, Unix "
              "seconds.");
  expo_family(set, "smtp_exporter_config_modules", EXPO_GAUGE,
              "Modules in the loaded configuration.");

  pthread_mutex_lock(&st->lock);
  for (int i = 0; i < st->nmodules; i++)
    for (int c = 0; c < SP_CODE_COUNT; c++)
      if (st->modules[i].codes[c] != 0)
        expo_add(set, "smtp_exporter_probes_total",
                 (double)st->modules[i].codes[c], "module", st->modules[i].name,
                 "code", sp_code_name((enum sp_code)c), NULL);
  expo_add(set, "smtp_exporter_probe_requests_total", (double)st->requests_200,
           "status", "200", NULL);
  expo_add(set, "smtp_exporter_probe_requests_total", (double)st->requests_400,
           "status", "400", NULL);
  expo_add(set, "smtp_exporter_probe_requests_total", (double)st->requests_403,
           "status", "403", NULL);
  expo_add(set, "smtp_exporter_probe_requests_total", (double)st->requests_503,
           "status", "503", NULL);
  expo_add(set, "smtp_exporter_probe_requests_total", (double)st->requests_500,
           "status", "500", NULL);
  expo_add(set, "smtp_exporter_http_requests_unauthorized_total",
           (double)st->unauthorized, NULL);
  expo_add(set, "smtp_exporter_probe_requests_rejected_total",
           (double)st->requests_503, NULL);
  expo_add(set, "smtp_exporter_probes_in_flight", st->inflight, NULL);
  expo_add(set, "smtp_exporter_probe_requests_waiting", st->waiting, NULL);
  expo_add(set, "smtp_exporter_probe_concurrency_limit", st->max_concurrent,
           NULL);
  expo_add(set, "smtp_exporter_config_last_reload_successful",
           st->reload_ok ? 1 : 0, NULL);
  expo_add(set, "smtp_exporter_config_last_reload_success_timestamp_seconds",
           st->reload_success_ts, NULL);
  expo_add(set, "smtp_exporter_config_modules", st->nconfig_modules, NULL);
  pthread_mutex_unlock(&st->lock);
  expo_add(set, "smtp_exporter_engine_probes_in_flight", engine_inflight, NULL);
  return expo_error(set) ? -1 : 0;
}

/* Wall-clock start time noted by metrics_note_start, or 0. */
static double noted_start;

/* Remember the start time (see metrics.h). */
void metrics_note_start(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  noted_start = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Read /proc/self/stat's fields 14.. (after the command name) into
 * utime, stime, starttime (ticks), vsize (bytes), rss (pages). */
static int read_proc_stat(unsigned long long *utime, unsigned long long *stime,
                          unsigned long long *start, unsigned long long *vsize,
                          long long *rss) {
  char buf[2048];
  FILE *f = fopen("/proc/self/stat", "re");
  if (f == NULL)
    return -1;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
  if (p == NULL)
    return -1;
  /* after ")": state(3) ppid(4) ... utime(14) stime(15) ... starttime(22)
   * vsize(23) rss(24) */
  int got = sscanf(p + 1,
                   " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu "
                   "%*d %*d %*d %*d %*d %*d %llu %llu %lld",
                   utime, stime, start, vsize, rss);
  return got == 5 ? 0 : -1;
}

/* The boot time from /proc/stat's btime line, or 0. */
static double boot_time(void) {
  FILE *f = fopen("/proc/stat", "re");
  if (f == NULL)
    return 0;
  char line[512];
  double bt = 0;
  for (int i = 0; i < 4096 && fgets(line, sizeof(line), f) != NULL; i++) {
    unsigned long long v;
    if (sscanf(line, "btime %llu", &v) == 1) {
      bt = (double)v;
      break;
    }
  }
  fclose(f);
  return bt;
}

/* Count open file descriptors in /proc/self/fd (bounded), or -1. */
static int open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL)
    return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL && n < 1000000)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n - 1; /* the directory stream's own descriptor */
}

/* Add process_* metrics read from /proc/self. */
int metrics_process(struct expo_set *set) {
  unsigned long long utime = 0, stime = 0, start = 0, vsize = 0;
  long long rss = 0;
  long ticks = sysconf(_SC_CLK_TCK);
  long page = sysconf(_SC_PAGESIZE);
  if (read_proc_stat(&utime, &stime, &start, &vsize, &rss) == 0 && ticks > 0 &&
      page > 0) {
    expo_family(set, "process_cpu_seconds_total", EXPO_COUNTER,
                "Total user and system CPU time spent in seconds.");
    expo_add(set, "process_cpu_seconds_total",
             (double)(utime + stime) / (double)ticks, NULL);
    expo_family(set, "process_resident_memory_bytes", EXPO_GAUGE,
                "Resident memory size in bytes.");
    expo_add(set, "process_resident_memory_bytes", (double)rss * (double)page,
             NULL);
    expo_family(set, "process_virtual_memory_bytes", EXPO_GAUGE,
                "Virtual memory size in bytes.");
    expo_add(set, "process_virtual_memory_bytes", (double)vsize, NULL);
  }
  double bt = boot_time();
  double started = 0;
  if (bt > 0 && ticks > 0 && start > 0)
    started = bt + (double)start / (double)ticks;
  else
    started = noted_start;
  if (started > 0) {
    expo_family(set, "process_start_time_seconds", EXPO_GAUGE,
                "Start time of the process since unix epoch in seconds.");
    expo_add(set, "process_start_time_seconds", started, NULL);
  }
  int fds = open_fds();
  if (fds >= 0) {
    expo_family(set, "process_open_fds", EXPO_GAUGE,
                "Number of open file descriptors.");
    expo_add(set, "process_open_fds", fds, NULL);
  }
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    expo_family(set, "process_max_fds", EXPO_GAUGE,
                "Maximum number of open file descriptors.");
    expo_add(set, "process_max_fds", (double)rl.rlim_cur, NULL);
  }
  return expo_error(set) ? -1 : 0;
}
