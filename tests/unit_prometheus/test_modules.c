/*
 * test_modules.c - YAML module parsing: the shipped sample, every option,
 * durations, and bad inputs with the line numbers their errors name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "modules.h"
#include "target.h"

/* Parse text as "t.yml"; err receives the message. */
static struct module_set *parse(const char *text, char *err, size_t errlen) {
  err[0] = '\0';
  return modules_parse(text, strlen(text), "t.yml", err, errlen);
}

/* The shipped sample file loads with the values it states. */
static void test_sample_file(void **state) {
  (void)state;
  char err[512];
  struct module_set *set = modules_load(SAMPLE_YML, err, sizeof(err));
  if (set == NULL)
    fail_msg("%s", err);
  assert_int_equal(set->nmodules, 2);
  const struct module *sub = modules_find(set, "submission");
  assert_non_null(sub);
  assert_int_equal(sub->req.nports, 2);
  assert_int_equal(sub->req.ports[0].port, 587);
  assert_int_equal(sub->req.ports[1].port, 465);
  assert_int_equal(sub->req.tls_mode, SP_TLS_AUTO);
  assert_true(sub->req.timeout_s == 5.0);
  assert_string_equal(sub->req.sni, "mail.example.com");
  const struct module *mx = modules_find(set, "mx");
  assert_non_null(mx);
  assert_int_equal(mx->req.nports, 1);
  assert_int_equal(mx->req.ports[0].port, 25);
  assert_int_equal(mx->req.role, SP_ROLE_RELAY);
  assert_true(mx->req.timeout_s == 10.0);
  assert_null(mx->req.sni);
  assert_null(modules_find(set, "nope"));
  modules_free(set);
}

/* Every option parses and lands in the request via module_apply. */
static void test_all_options(void **state) {
  (void)state;
  char err[512];
  const char *yml = "modules:\n"
                    "  full:\n"
                    "    ports: [2525]\n"
                    "    tls: starttls\n"
                    "    role: submission\n"
                    "    server_name: mail.smtp-probe.test\n"
                    "    ca_file: " SAMPLE_YML "\n"
                    "    insecure_skip_verify: true\n"
                    "    ehlo: probe.example\n"
                    "    ip_protocol: ip6\n"
                    "    all_addresses: true\n"
                    "    source_ip_address: \"::1\"\n"
                    "    timeout: 1m30s\n"
                    "    banner_wait: 500ms\n"
                    "    dns_server: 127.0.10.53:5300\n"
                    "    cert_warning_days: 21\n"
                    "    cert_critical_days: 7\n"
                    "    tls_trial: false\n"
                    "  bydefault:\n"
                    "    role: default\n"
                    "  bare:\n"
                    "  empty: {}\n";
  struct module_set *set = parse(yml, err, sizeof(err));
  if (set == NULL)
    fail_msg("%s", err);
  assert_int_equal(set->nmodules, 4);
  const struct module *m = modules_find(set, "full");
  assert_int_equal(m->line, 2);

  struct sp_request req;
  module_apply(m, &req);
  assert_null(req.host);
  assert_int_equal(req.nports, 1);
  assert_int_equal(req.ports[0].port, 2525);
  assert_int_equal(req.tls_mode, SP_TLS_STARTTLS);
  assert_int_equal(req.role, SP_ROLE_SUBMISSION);
  assert_string_equal(req.sni, "mail.smtp-probe.test");
  assert_string_equal(req.cafile, SAMPLE_YML);
  assert_true(req.no_verify);
  assert_string_equal(req.ehlo_name, "probe.example");
  assert_int_equal(req.family, SP_FAMILY_IPV6);
  assert_true(req.all_addresses);
  assert_string_equal(req.source, "::1");
  assert_true(req.timeout_s == 90.0);
  assert_true(req.banner_wait_s == 0.5);
  assert_string_equal(req.dns_server, "127.0.10.53:5300");
  assert_int_equal(req.cert_warn_days, 21);
  assert_int_equal(req.cert_crit_days, 7);
  assert_true(req.no_tls_trial);

  /* The documented "role: default" (by port number) is accepted. */
  const struct module *byd = modules_find(set, "bydefault");
  assert_non_null(byd);
  assert_int_equal(byd->req.role, SP_ROLE_DEFAULT);

  /* A module without keys is the core's defaults. */
  const struct module *bare = modules_find(set, "bare");
  assert_non_null(bare);
  struct sp_request def;
  sp_request_init(&def);
  assert_int_equal(bare->req.nports, 0);
  assert_true(bare->req.timeout_s == def.timeout_s); /* 10 s */
  assert_int_equal(bare->req.tls_mode, SP_TLS_AUTO);
  assert_int_equal(bare->req.role, SP_ROLE_DEFAULT);
  assert_int_equal(bare->req.cert_warn_days, def.cert_warn_days);
  assert_int_equal(bare->req.min_tls_version, def.min_tls_version);
  assert_false(bare->req.no_tls_trial); /* on unless switched off */
  assert_non_null(modules_find(set, "empty"));
  modules_free(set);
}

/* Durations: the core's grammar (modules_parse_duration is its ms view),
 * and the format used on the landing page and the debug trail. */
static void test_durations(void **state) {
  (void)state;
  assert_int_equal(modules_parse_duration("5s"), 5000);
  assert_int_equal(modules_parse_duration("1m30s"), 90000);
  assert_int_equal(modules_parse_duration("500ms"), 500);
  assert_int_equal(modules_parse_duration("1s500ms"), 1500);
  assert_int_equal(modules_parse_duration("2m"), 120000);
  assert_int_equal(modules_parse_duration("1h"), 3600000);
  assert_int_equal(modules_parse_duration("1d"), 86400000);
  assert_int_equal(modules_parse_duration("0"), 0);
  assert_int_equal(modules_parse_duration("0s"), 0);
  assert_int_equal(modules_parse_duration("2.5"), 2500); /* seconds */
  const char *bad[] = {"",    "s",   "1s1m", "1.5s", "-1s",  "5S",    "1m1m",
                       "5 s", " 5s", "5s ",  "ms",   "1msm", "1ms5s", "1e300"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    if (modules_parse_duration(bad[i]) != -1)
      fail_msg("duration \"%s\" accepted", bad[i]);
  char buf[32];
  modules_format_duration(90000, buf, sizeof(buf));
  assert_string_equal(buf, "1m30s");
  modules_format_duration(1500, buf, sizeof(buf));
  assert_string_equal(buf, "1s500ms");
  modules_format_duration(0, buf, sizeof(buf));
  assert_string_equal(buf, "0s");
}

/* Assert two requests probe the same ports the same way. */
static void same_request(const struct sp_request *a,
                         const struct sp_request *b) {
  assert_int_equal(a->nports, b->nports);
  for (int i = 0; i < a->nports; i++) {
    assert_int_equal(a->ports[i].port, b->ports[i].port);
    assert_int_equal(a->ports[i].tls_mode, b->ports[i].tls_mode);
    assert_int_equal(a->ports[i].role, b->ports[i].role);
  }
  assert_int_equal(a->tls_mode, b->tls_mode);
  assert_int_equal(a->role, b->role);
  assert_true(a->timeout_s == b->timeout_s);
}

/* Values go through the core's one vocabulary: its words, its repeats
 * rule, and tls/role for every port whatever the key order. */
static void test_core_vocabulary(void **state) {
  (void)state;
  const char *yml = "modules:\n"
                    "  before:\n"
                    "    tls: implicit\n"
                    "    ports: [465, 2465]\n"
                    "  after:\n"
                    "    ports: [465, 2465]\n"
                    "    tls: implicit\n"
                    "  bydefault:\n"
                    "    role: default\n"
                    "    ports: [25, 465, 587]\n"
                    "  words:\n"
                    "    ports: [587, 587, 25]\n"
                    "    insecure_skip_verify: yes\n"
                    "    ip_protocol: ipv4\n"
                    "    timeout: \"2.5\"\n"
                    "    min_tls_version: \"1.3\"\n";
  char err[512];
  struct module_set *set = parse(yml, err, sizeof(err));
  if (set == NULL)
    fail_msg("%s", err);
  const struct module *before = modules_find(set, "before");
  const struct module *after = modules_find(set, "after");
  struct sp_request rb, ra;
  struct target t = {"127.0.0.1", 0};
  assert_int_equal(target_request(before, &t, 5, false, &rb, err, sizeof(err)),
                   0);
  assert_int_equal(target_request(after, &t, 5, false, &ra, err, sizeof(err)),
                   0);
  same_request(&rb, &ra);
  assert_int_equal(rb.nports, 2);
  assert_int_equal(rb.tls_mode, SP_TLS_IMPLICIT);
  t.port = 587; /* the target's port gets the module's tls too */
  assert_int_equal(target_request(before, &t, 5, false, &rb, err, sizeof(err)),
                   0);
  assert_int_equal(target_request(after, &t, 5, false, &ra, err, sizeof(err)),
                   0);
  same_request(&rb, &ra);
  assert_int_equal(rb.nports, 1);
  assert_int_equal(rb.ports[0].port, 587);
  assert_int_equal(rb.tls_mode, SP_TLS_IMPLICIT);

  const struct module *byd = modules_find(set, "bydefault");
  assert_int_equal(byd->req.role, SP_ROLE_DEFAULT);
  assert_int_equal(byd->req.nports, 3);

  const struct module *w = modules_find(set, "words");
  assert_int_equal(w->req.nports, 2); /* repeats ignored, as everywhere */
  assert_int_equal(w->req.ports[0].port, 587);
  assert_int_equal(w->req.ports[1].port, 25);
  assert_true(w->req.no_verify);
  assert_int_equal(w->req.family, SP_FAMILY_IPV4);
  assert_true(w->req.timeout_s == 2.5);
  assert_int_equal(w->req.min_tls_version, 0x0304);
  modules_free(set);
}

/* One bad input: the YAML, and what its error must contain. */
struct bad_case {
  const char *yml;   /* the file */
  const char *where; /* "t.yml:LINE:" prefix expected */
  const char *what;  /* a word the message must hold */
};

/* Bad inputs are rejected with the line (and a clear word) of the fault. */
static void test_bad_inputs(void **state) {
  (void)state;
  static const struct bad_case cases[] = {
      {"modules:\n  a:\n    ports: [25]\n    bogus: 1\n",
       "t.yml:4:5:", "unknown key \"bogus\""},
      {"modules:\n  a:\n    tls: sometimes\n", "t.yml:3:10:",
       "tls: 'sometimes' is not auto, none, starttls or implicit"},
      {"modules:\n  a:\n    role: king\n", "t.yml:3:11:",
       "role: 'king' is not default, submission, implicit or relay"},
      {"modules:\n  a:\n    ports: [0]\n",
       "t.yml:3:13:", "ports: '0' is not a list of ports 1-65535"},
      {"modules:\n  a:\n    ports: [70000]\n",
       "t.yml:3:13:", "not a list of ports"},
      {"modules:\n  a:\n    ports: [25, smtp]\n",
       "t.yml:3:17:", "ports: 'smtp' is not a list of ports"},
      {"modules:\n  a:\n    ports: 25\n", "t.yml:3:12:", "must be a list"},
      {"modules:\n  a:\n    ports: []\n",
       "t.yml:3:12:", "ports: no port given"},
      {"modules:\n  a:\n    ports: [[25]]\n", "t.yml:3:13:", "single value"},
      {"modules:\n  a:\n    ports: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,"
       "17]\n",
       "t.yml:3:", "more than"},
      {"modules:\n  a: {}\n  a: {}\n", "t.yml:3:3:", "defined twice"},
      {"modules:\n  a:\n    tls: none\n    tls: auto\n",
       "t.yml:4:5:", "repeated"},
      {"modules:\n  a:\n    all_addresses: maybe\n",
       "t.yml:3:20:", "all_addresses: 'maybe' is not true or false"},
      {"modules:\n  a:\n    timeout: 5 seconds\n", "t.yml:3:14:",
       "timeout: '5 seconds' is not a number of seconds 0-3600 (or a "
       "duration such as 500ms, 1m30s)"},
      {"modules:\n  a:\n    timeout: 10m\n", "t.yml:2:3:", "at most"},
      {"modules:\n  a:\n    timeout: 0s\n",
       "t.yml:3:14:", "timeout: must be above 0"},
      {"modules:\n  a:\n    timeout: 2s\n    banner_wait: 3s\n",
       "t.yml:2:3:", "module \"a\": banner_wait: must not exceed the timeout"},
      {"modules:\n  a:\n    cert_warning_days: 5\n    cert_critical_days: 9\n",
       "t.yml:2:3:", "critical days must not exceed the warning days"},
      {"modules:\n  a:\n    cert_warning_days: -2\n", "t.yml:3:24:", "or off"},
      {"modules:\n  a:\n    ca_file: /nonexistent/ca.pem\n",
       "t.yml:2:3:", "ca_file"},
      {"modules:\n  a:\n    ip_protocol: ip5\n",
       "t.yml:3:18:", "ip_protocol: 'ip5' is not any, ipv4 or ipv6"},
      {"modules:\n  a:\n    server_name: \"\"\n",
       "t.yml:3:18:", "server_name: '' is not a host name or IP address"},
      {"modules:\n  a:\n    ehlo: \"a\\nb\"\n",
       "t.yml:3:11:", "ehlo: 'a?b' is not a host name"}, /* shown sanitised */
      {"modules:\n  a:\n    ehlo: \"a\\0b\"\n", "t.yml:3:11:", "NUL"},
      {"modules:\n  a:\n    ehlo: [x]\n", "t.yml:3:11:", "single value"},
      {"modules:\n  \"a b\": {}\n", "t.yml:2:3:", "invalid module name"},
      {"modules:\n  a: 5\n", "t.yml:2:6:", "mapping"},
      {"moduls:\n  a: {}\n", "t.yml:1:1:", "unknown top-level key"},
      {"modules:\n  a: {}\nextra: 1\n", "t.yml:3:1:", "unknown top-level"},
      {"modules: {}\n", "t.yml:1:10:", "at least one"},
      {"modules:\n", "t.yml:1:9:", "at least one"},
      {"- a\n- b\n", "t.yml:1:1:", "mapping"},
      {"", "t.yml:", "empty"},
      {"# only a comment\n", "t.yml:", "empty"},
      {"modules:\n  a:\n    ports: [25\n", "t.yml:", "YAML error"},
      {"modules:\n  a:\n   ports: [25]\n    tls: auto\n", "t.yml:4:", "YAML"},
      {"modules:\n  a: {}\n---\nmodules:\n  b: {}\n",
       "t.yml:3:", "one YAML document"},
      /* missing or unreadable files named by options */
      {"modules:\n  a:\n    auth_user: u\n    auth_password_file: /nonexistent/"
       "pw\n",
       "t.yml:2:3:", "/nonexistent/pw"},
      {"modules:\n  a:\n    policy_file: /nonexistent/policy\n",
       "t.yml:2:3:", "policy_file"},
      {"modules:\n  a:\n    ca_file: /\n    ports: [25]\n",
       "t.yml:2:3:", "ca_file"},
      /* values of the wrong type or out of range */
      {"modules:\n  a:\n    source_ip_address: not-an-ip\n",
       "t.yml:3:24:", "source_ip_address: 'not-an-ip' is not an IP address"},
      {"modules:\n  a:\n    cert_warning_days: 36501\n", "t.yml:3:24:",
       "cert_warning_days: '36501' is not a whole number 0-36500"},
      {"modules:\n  a:\n    min_tls_version: TLS14\n",
       "t.yml:3:22:", "min_tls_version: 'TLS14' is not 1.0, 1.1, 1.2 or 1.3"},
      {"modules:\n  a:\n    min_tls_version: \"1.4\"\n",
       "t.yml:3:22:", "min_tls_version: '1.4' is not 1.0, 1.1, 1.2 or 1.3"},
      {"modules:\n  a:\n    timeout: {s: 5}\n", "t.yml:3:14:", "single value"},
      {"modules:\n  a:\n    check_injection: sometimes\n",
       "t.yml:3:22:", "check_injection: 'sometimes' is not true or false"},
      {"modules:\n  a:\n    auth_mechanism: PLAIN\n", "t.yml:2:3:",
       "module \"a\": auth_mechanism: needs auth_user"}, /* our spelling */
      {"modules:\n  a:\n    policy_file: \"\"\n",
       "t.yml:3:18:", "policy_file: an empty path"},
      /* allowed_targets */
      {"allowed_targets: [a]\nmodules:\n  a: {}\n",
       "t.yml:1:18:", "allowed_targets must be a mapping"},
      {"allowed_targets: {}\nmodules:\n  a: {}\n",
       "t.yml:1:18:", "allowed_targets must be a mapping"},
      {"allowed_targets:\n  hostz: [a.b]\nmodules:\n  a: {}\n",
       "t.yml:2:3:", "unknown key \"hostz\" in allowed_targets"},
      {"allowed_targets:\n  hosts: a.b\nmodules:\n  a: {}\n",
       "t.yml:2:10:", "allowed_targets.hosts must be a list"},
      {"allowed_targets:\n  hosts: []\nmodules:\n  a: {}\n",
       "t.yml:2:10:", "empty"},
      {"allowed_targets:\n  hosts: [\"*\"]\nmodules:\n  a: {}\n",
       "t.yml:2:11:", "not a host name"},
      {"allowed_targets:\n  hosts: [\"a.*.b\"]\nmodules:\n  a: {}\n",
       "t.yml:2:11:", "not a host name"},
      {"allowed_targets:\n  hosts: [192.0.2.1]\nmodules:\n  a: {}\n",
       "t.yml:2:11:", "IP addresses go in networks"},
      {"allowed_targets:\n  hosts: [[a]]\nmodules:\n  a: {}\n",
       "t.yml:2:11:", "single value"},
      {"allowed_targets:\n  networks: [192.0.2.1/24]\nmodules:\n  a: {}\n",
       "t.yml:2:14:", "zero host bits"},
      {"allowed_targets:\n  networks: [192.0.2.0/33]\nmodules:\n  a: {}\n",
       "t.yml:2:14:", "not a network"},
      {"allowed_targets:\n  networks: [mail.example.com]\nmodules:\n  a: {}\n",
       "t.yml:2:14:", "not a network"},
      {"allowed_targets:\n  networks: [\"2001:db8::/129\"]\nmodules:\n  a: "
       "{}\n",
       "t.yml:2:14:", "not a network"},
      {"allowed_targets:\n  ports: [0]\nmodules:\n  a: {}\n",
       "t.yml:2:11:", "allowed_targets.ports: invalid port"},
      {"allowed_targets:\n  ports: [smtp]\nmodules:\n  a: {}\n",
       "t.yml:2:11:", "invalid port"},
      {"allowed_targets:\n  ports: [25]\n  ports: [26]\nmodules:\n  a: {}\n",
       "t.yml:3:3:", "repeated"},
      {"allowed_targets:\n  ports: [25]\nallowed_targets:\n  ports: [26]\n"
       "modules:\n  a: {}\n",
       "t.yml:3:1:", "repeated"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char err[512];
    struct module_set *set = parse(cases[i].yml, err, sizeof(err));
    if (set != NULL) {
      modules_free(set);
      fail_msg("case %zu accepted:\n%s", i, cases[i].yml);
    }
    if (strncmp(err, cases[i].where, strlen(cases[i].where)) != 0 ||
        strstr(err, cases[i].what) == NULL)
      fail_msg("case %zu: got \"%s\", want prefix \"%s\" and \"%s\"", i, err,
               cases[i].where, cases[i].what);
  }
}

/* An over-long value is refused with the line and the key. */
static void test_overlong_values(void **state) {
  (void)state;
  static const char *const keys[] = {"server_name", "ehlo", "ca_file",
                                     "dns_server", "mail_from"};
  for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
    char yml[4096];
    char longval[2100];
    memset(longval, 'a', sizeof(longval) - 1);
    longval[sizeof(longval) - 1] = '\0';
    snprintf(yml, sizeof(yml), "modules:\n  a:\n    %s: %s\n", keys[k],
             longval);
    char err[512];
    struct module_set *set = parse(yml, err, sizeof(err));
    if (set != NULL) {
      modules_free(set);
      fail_msg("over-long %s accepted", keys[k]);
    }
    if (strncmp(err, "t.yml:3:", 8) != 0 || strstr(err, keys[k]) == NULL)
      fail_msg("%s: got \"%s\"", keys[k], err);
  }
  char yml[256];
  snprintf(yml, sizeof(yml), "modules:\n  %0100d: {}\n", 1);
  char err[512];
  assert_null(parse(yml, err, sizeof(err)));
  assert_non_null(strstr(err, "invalid module name"));
}

/* Build a request for host and ports as /probe would. */
static void request_for(struct sp_request *req, const char *host,
                        const uint16_t *ports, int nports) {
  sp_request_init(req);
  req->host = host;
  for (int i = 0; i < nports; i++)
    sp_request_add_port(req, ports[i], SP_TLS_AUTO, SP_ROLE_DEFAULT);
}

/* allowed_targets: names by pattern, literals by network, ports. */
static void test_allowlist(void **state) {
  (void)state;
  const char *yml = "allowed_targets:\n"
                    "  hosts: [mail.example.com, \"*.example.net\"]\n"
                    "  networks: [192.0.2.0/24, \"2001:db8::/32\", "
                    "127.0.40.1, 10.0.0.0/7]\n"
                    "  ports: [25, 465, 587, 2525]\n"
                    "modules:\n  a: {}\n";
  char err[512];
  struct module_set *set = parse(yml, err, sizeof(err));
  if (set == NULL)
    fail_msg("%s", err);
  assert_true(set->allow.enabled);
  assert_int_equal(set->allow.nhosts, 2);
  assert_int_equal(set->allow.nnetworks, 4);
  assert_int_equal(set->allow.nports, 4);
  static const struct {
    const char *host; /* the target host */
    uint16_t port;    /* its port */
    bool allowed;     /* the verdict */
    const char *why;  /* a word of the refusal */
  } cases[] = {
      {"mail.example.com", 587, true, NULL},
      {"MAIL.Example.COM.", 25, true, NULL},
      {"mx1.example.net", 465, true, NULL},
      {"a.b.example.net", 2525, true, NULL},
      {"example.net", 25, false, "hosts"},
      {"badexample.net", 25, false, "hosts"},
      {"mail.example.com.evil.org", 25, false, "hosts"},
      {"other.example.com", 25, false, "hosts"},
      {"mail.example.com", 22, false, "port 22"},
      {"192.0.2.7", 25, true, NULL},
      {"192.0.3.7", 25, false, "networks"},
      {"127.0.40.1", 25, true, NULL},
      {"127.0.40.2", 25, false, "networks"},
      {"11.255.255.255", 25, true, NULL},
      {"12.0.0.0", 25, false, "networks"},
      {"2001:db8:1::25", 587, true, NULL},
      {"2001:db9::25", 587, false, "networks"},
      {"::ffff:192.0.2.7", 25, false, "networks"},
      {"2130706433", 25, false, "numeric"},
      {"127.1", 25, false, "numeric"},
      {"0x7f.1", 25, false, "numeric"},
      {"localhost", 25, false, "hosts"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct sp_request req;
    request_for(&req, cases[i].host, &cases[i].port, 1);
    char why[256] = "";
    bool ok = allow_request(&set->allow, &req, why, sizeof(why));
    if (ok != cases[i].allowed)
      fail_msg("%s:%u: got %d (%s)", cases[i].host, (unsigned)cases[i].port, ok,
               why);
    if (!ok && strstr(why, cases[i].why) == NULL)
      fail_msg("%s: reason \"%s\" lacks \"%s\"", cases[i].host, why,
               cases[i].why);
  }
  /* every port of a multi-port request must be allowed */
  const uint16_t ports[] = {587, 465, 143};
  struct sp_request req;
  request_for(&req, "mail.example.com", ports, 3);
  char why[256] = "";
  assert_false(allow_request(&set->allow, &req, why, sizeof(why)));
  assert_non_null(strstr(why, "port 143"));
  request_for(&req, "mail.example.com", ports, 2);
  assert_true(allow_request(&set->allow, &req, why, sizeof(why)));
  modules_free(set);

  /* only ports: any host; no section: everything */
  set = parse("allowed_targets:\n  ports: [25]\nmodules:\n  a: {}\n", err,
              sizeof(err));
  assert_non_null(set);
  request_for(&req, "anything.example", ports, 1);
  assert_false(allow_request(&set->allow, &req, why, sizeof(why)));
  const uint16_t p25 = 25;
  request_for(&req, "anything.example", &p25, 1);
  assert_true(allow_request(&set->allow, &req, why, sizeof(why)));
  modules_free(set);
  set = parse("modules:\n  a: {}\n", err, sizeof(err));
  assert_non_null(set);
  assert_false(set->allow.enabled);
  request_for(&req, "10.1.2.3", ports, 3);
  assert_true(allow_request(&set->allow, &req, why, sizeof(why)));
  modules_free(set);

  /* networks only: every name is refused (resolved addresses unchecked) */
  set = parse("allowed_targets:\n  networks: [\"::1/128\"]\nmodules:\n"
              "  a: {}\n",
              err, sizeof(err));
  assert_non_null(set);
  request_for(&req, "::1", &p25, 1);
  assert_true(allow_request(&set->allow, &req, why, sizeof(why)));
  request_for(&req, "localhost", &p25, 1);
  assert_false(allow_request(&set->allow, &req, why, sizeof(why)));
  modules_free(set);
}

/* A missing file is an error naming it. */
static void test_missing_file(void **state) {
  (void)state;
  char err[512];
  assert_null(modules_load("/nonexistent/smtp_exporter.yml", err, sizeof(err)));
  assert_non_null(strstr(err, "/nonexistent/smtp_exporter.yml"));
  assert_null(modules_load("/", err, sizeof(err)));
}

/* Write a secret file with the given mode; returns its malloc'd path. */
static char *secret_file(const char *secret, mode_t mode) {
  char *path = strdup("/tmp/smtp-exporter-secret.XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, secret, strlen(secret)), (ssize_t)strlen(secret));
  close(fd);
  assert_int_equal(chmod(path, mode), 0);
  return path;
}

/* AUTH and trial options: the secret is read from its file at load. */
static void test_auth_options(void **state) {
  (void)state;
  char *path = secret_file("s3cret\n", 0600);
  char yml[2048];
  snprintf(yml, sizeof(yml),
           "modules:\n"
           "  auth:\n"
           "    ports: [587]\n"
           "    auth_user: probe@example.org\n"
           "    auth_password_file: %s\n"
           "    auth_mechanism: PLAIN\n"
           "    mail_from: probe@example.org\n"
           "    rcpt_to: postmaster@example.org\n"
           "    check_injection: true\n"
           "    min_tls_version: TLS13\n",
           path);
  char err[512];
  struct module_set *set = parse(yml, err, sizeof(err));
  if (set == NULL)
    fail_msg("%s", err);
  assert_string_equal(set->warning, "");
  const struct module *m = modules_find(set, "auth");
  assert_string_equal(m->auth_secret, "s3cret");
  struct sp_request req;
  module_apply(m, &req);
  assert_string_equal(req.auth_user, "probe@example.org");
  assert_string_equal(req.auth_secret, "s3cret");
  assert_string_equal(req.auth_mech, "PLAIN");
  assert_string_equal(req.mail_from, "probe@example.org");
  assert_string_equal(req.rcpt_to, "postmaster@example.org");
  assert_true(req.check_injection);
  assert_int_equal(req.min_tls_version, 0x0304);
  modules_free(set);

  /* a secret file others can read loads, with a warning */
  chmod(path, 0644);
  set = parse(yml, err, sizeof(err));
  if (set == NULL)
    fail_msg("%s", err);
  assert_non_null(strstr(set->warning, "chmod 600"));
  modules_free(set);

  /* combinations the loader or the core refuse */
  const char *bad[][2] = {
      {"    auth_user: probe@example.org\n", "needs auth_password_file"},
      {"    auth_password_file: %s\n", "needs auth_user"},
      {"    auth_user: u@x\n    auth_password_file: /nonexistent/pw\n",
       "/nonexistent/pw"},
      {"    auth_user: u@x\n    auth_password_file: %s\n    tls: none\n",
       "without TLS"},
      {"    auth_user: u@x\n    auth_password_file: %s\n"
       "    auth_mechanism: MAGIC\n",
       "auth_mech"},
      {"    rcpt_to: a@b\n", "rcpt_to"},
      {"    min_tls_version: SSL3\n",
       "min_tls_version: 'SSL3' is not 1.0, 1.1, 1.2 or 1.3"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char opts[512];
    snprintf(opts, sizeof(opts), bad[i][0], path);
    snprintf(yml, sizeof(yml), "modules:\n  a:\n    ports: [587]\n%s", opts);
    set = parse(yml, err, sizeof(err));
    if (set != NULL) {
      modules_free(set);
      fail_msg("auth case %zu accepted", i);
    }
    if (strstr(err, bad[i][1]) == NULL)
      fail_msg("auth case %zu: \"%s\" lacks \"%s\"", i, err, bad[i][1]);
    assert_null(strstr(err, "s3cret"));
  }
  unlink(path);
  free(path);
}

/* A module with a port policy: loaded at parse time, its ports used when
 * the module lists none; a bad policy file is an error naming it. */
static void test_policy_option(void **state) {
  (void)state;
  char *pol = secret_file("ports:\n  587:\n    tls: starttls\n"
                          "  2525:\n    state: closed\n",
                          0644);
  char yml[1024];
  snprintf(yml, sizeof(yml), "modules:\n  p:\n    policy_file: %s\n", pol);
  char err[512];
  struct module_set *set = parse(yml, err, sizeof(err));
  if (set == NULL)
    fail_msg("%s", err);
  const struct module *m = modules_find(set, "p");
  assert_non_null(m->policy);
  struct target t = {"127.0.0.1", 0};
  struct sp_request req;
  assert_int_equal(target_request(m, &t, 5, false, &req, err, sizeof(err)), 0);
  assert_int_equal(req.nports, 2);
  assert_int_equal(req.ports[0].port, 587);
  assert_int_equal(req.ports[0].tls_mode, SP_TLS_STARTTLS);
  assert_int_equal(req.ports[1].port, 2525);
  modules_free(set);
  unlink(pol);
  free(pol);

  set = parse("modules:\n  p:\n    policy_file: /nonexistent/policy.yml\n", err,
              sizeof(err));
  assert_null(set);
  assert_non_null(strstr(err, "t.yml:2:3: module \"p\": policy_file:"));
}

/* Run every test of this file. */
int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sample_file),
      cmocka_unit_test(test_all_options),
      cmocka_unit_test(test_durations),
      cmocka_unit_test(test_core_vocabulary),
      cmocka_unit_test(test_bad_inputs),
      cmocka_unit_test(test_missing_file),
      cmocka_unit_test(test_auth_options),
      cmocka_unit_test(test_policy_option),
      cmocka_unit_test(test_overlong_values),
      cmocka_unit_test(test_allowlist),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
