/*
 * test_docs.c - the module keys cannot drift from their docs: every key
 * the exporter accepts (modules_key_at) is in prometheus/USAGE.md's
 * module key table and in the man page's MODULE KEYS list, and every key
 * documented there is accepted (a one-module file with it loads).
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

/* Most keys one document may list. */
#define MAX_KEYS 64

/* The keys one document lists. */
struct keys {
  char name[MAX_KEYS][64]; /* the keys, in document order */
  int n;                   /* how many */
};

/* Read a whole file into a NUL-terminated string (the caller frees). */
static char *slurp(const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL)
    fail_msg("cannot open %s", path);
  static char buf[256 * 1024];
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  return strdup(buf);
}

/* Add a key (once) to a list. */
static void add_key(struct keys *k, const char *s, size_t len) {
  assert_true(len > 0 && len < sizeof(k->name[0]));
  for (int i = 0; i < k->n; i++)
    if (strlen(k->name[i]) == len && strncmp(k->name[i], s, len) == 0)
      return;
  assert_true(k->n < MAX_KEYS);
  memcpy(k->name[k->n], s, len);
  k->name[k->n][len] = '\0';
  k->n++;
}

/* The keys of USAGE.md's module table: the `backquoted` words of the
 * first cell of each row after the "| key |" header, to the table's end. */
static void usage_keys(const char *text, struct keys *k) {
  const char *p = strstr(text, "\n| key | values | default | meaning |");
  assert_non_null(p);
  p = strchr(p + 1, '\n') + 1; /* the |---| line */
  p = strchr(p, '\n') + 1;
  while (p[0] == '|') {
    const char *end = strchr(p + 1, '|'); /* the first cell */
    for (const char *q = p; q < end;) {
      const char *open = memchr(q, '`', (size_t)(end - q));
      if (open == NULL)
        break;
      const char *close = memchr(open + 1, '`', (size_t)(end - open - 1));
      assert_non_null(close);
      add_key(k, open + 1, (size_t)(close - open - 1));
      q = close + 1;
    }
    p = strchr(p, '\n') + 1;
  }
}

/* The keys of the man page's ".SS Module keys" list: the word after
 * ".B " on each line that follows ".TP", to the next section. */
static void man_keys(const char *text, struct keys *k) {
  const char *p = strstr(text, "\n.SS Module keys\n");
  assert_non_null(p);
  p += strlen("\n.SS Module keys\n");
  const char *stop = strstr(p, "\n.S"); /* .SS or .SH */
  assert_non_null(stop);
  while ((p = strstr(p, ".TP\n.B ")) != NULL && p < stop) {
    p += strlen(".TP\n.B ");
    size_t len = strcspn(p, " \n");
    add_key(k, p, len);
  }
}

/* True when list holds key. */
static bool has_key(const struct keys *k, const char *key) {
  for (int i = 0; i < k->n; i++)
    if (strcmp(k->name[i], key) == 0)
      return true;
  return false;
}

/* True when the exporter accepts key. */
static bool accepted(const char *key) {
  const char *k;
  for (size_t i = 0; (k = modules_key_at(i, NULL)) != NULL; i++)
    if (strcmp(k, key) == 0)
      return true;
  return false;
}

/* Write text to a fresh temporary file of the given mode; the caller
 * frees the returned path. */
static char *temp_file(const char *text, mode_t mode) {
  char *path = strdup("/tmp/smtp-exporter-docs.XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  assert_int_equal(chmod(path, mode), 0);
  return path;
}

/* Files the sample values name. */
static char *secret_path, *policy_path;

/* A good value for a key, plus the lines it needs beside it. */
static void sample(const char *key, char *buf, size_t buflen) {
  static const struct {
    const char *key;   /* the module key */
    const char *value; /* a value the key accepts */
    const char *extra; /* lines the key needs beside it, or "" */
  } values[] = {
      {"ports", "[587, 465]", ""},
      {"tls", "starttls", ""},
      {"role", "default", ""},
      {"server_name", "mail.example.com", ""},
      {"ca_file", SAMPLE_YML, ""}, /* readable is all a load checks */
      {"insecure_skip_verify", "true", ""},
      {"ehlo", "probe.example.com", ""},
      {"ip_protocol", "ip6", ""},
      {"all_addresses", "true", ""},
      {"source_ip_address", "\"::1\"", ""},
      {"timeout", "5s", ""},
      {"banner_wait", "500ms", ""},
      {"dns_server", "127.0.10.53:5300", ""},
      {"cert_warning_days", "21", ""},
      {"cert_critical_days", "7", ""},
      {"auth_user", "probe@example.com", "    auth_password_file: @SECRET@\n"},
      {"auth_password_file", "@SECRET@", "    auth_user: probe@example.com\n"},
      {"auth_mechanism", "PLAIN",
       "    auth_user: u@example.com\n    auth_password_file: @SECRET@\n"},
      {"mail_from", "probe@example.com", ""},
      {"rcpt_to", "postmaster@example.com",
       "    mail_from: probe@example.com\n"},
      {"check_injection", "true", ""},
      {"tls_trial", "false", ""},
      {"proxy_protocol", "v2", ""},
      /* load opens both files; the engine reads the PEM at submit */
      {"client_cert", SAMPLE_YML, "    client_key: " SAMPLE_YML "\n"},
      {"client_key", SAMPLE_YML, "    client_cert: " SAMPLE_YML "\n"},
      {"policy_file", "@POLICY@", ""},
      {"min_tls_version", "\"1.3\"", ""},
      {"provider", "gmail", ""},
  };
  for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
    if (strcmp(values[i].key, key) != 0)
      continue;
    char tmpl[1024];
    snprintf(tmpl, sizeof(tmpl), "modules:\n  one:\n    %s: %s\n%s", key,
             values[i].value, values[i].extra);
    /* put the temporary files' names in */
    size_t o = 0;
    for (const char *p = tmpl; *p && o + 1 < buflen;) {
      const char *name = strncmp(p, "@SECRET@", 8) == 0   ? secret_path
                         : strncmp(p, "@POLICY@", 8) == 0 ? policy_path
                                                          : NULL;
      if (name != NULL) {
        o += (size_t)snprintf(buf + o, buflen - o, "%s", name);
        p += 8;
      } else {
        buf[o++] = *p++;
      }
    }
    buf[o] = '\0';
    return;
  }
  fail_msg("no sample value for documented key %s: add one to test_docs.c",
           key);
}

/* Every accepted key is documented in both places. */
static void test_accepted_are_documented(void **state) {
  (void)state;
  char *usage = slurp(USAGE_MD), *man = slurp(MAN_PAGE);
  static struct keys u, m;
  usage_keys(usage, &u);
  man_keys(man, &m);
  const char *key;
  size_t n = 0;
  for (; (key = modules_key_at(n, NULL)) != NULL; n++) {
    if (!has_key(&u, key))
      fail_msg("module key %s is not in USAGE.md's module key table", key);
    if (!has_key(&m, key))
      fail_msg("module key %s is not in smtp_exporter.1's Module keys", key);
  }
  assert_true(n >= 20);
  free(usage);
  free(man);
}

/* Every documented key is accepted: a one-module file with it loads. */
static void test_documented_are_accepted(void **state) {
  (void)state;
  char *usage = slurp(USAGE_MD), *man = slurp(MAN_PAGE);
  static struct keys docs;
  docs.n = 0;
  usage_keys(usage, &docs);
  man_keys(man, &docs);
  secret_path = temp_file("s3cret\n", 0600);
  policy_path = temp_file("ports:\n  587:\n    tls: starttls\n", 0644);
  for (int i = 0; i < docs.n; i++) {
    const char *key = docs.name[i];
    if (!accepted(key))
      fail_msg("documented module key %s is not accepted", key);
    char yml[2048];
    sample(key, yml, sizeof(yml));
    char err[512];
    struct module_set *set =
        modules_parse(yml, strlen(yml), "docs.yml", err, sizeof(err));
    if (set == NULL)
      fail_msg("documented key %s refused: %s\n%s", key, err, yml);
    modules_free(set);
  }
  unlink(secret_path);
  unlink(policy_path);
  free(secret_path);
  free(policy_path);
  free(usage);
  free(man);
}

/* Every accepted key that spells a core option names a real one. */
static void test_canonical_keys(void **state) {
  (void)state;
  const char *key, *canonical;
  for (size_t i = 0; (key = modules_key_at(i, &canonical)) != NULL; i++)
    if (canonical != NULL && sp_option_find(canonical) == NULL)
      fail_msg("module key %s maps to %s, not a core option", key, canonical);
}

/* Run every test of this file. */
int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_accepted_are_documented),
      cmocka_unit_test(test_documented_are_accepted),
      cmocka_unit_test(test_canonical_keys),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
