/*
 * test_docs.c - check_smtp_ports' options and its documentation cannot
 * drift: every long option of the getopt table is in --help, in the
 * option table of nagios/USAGE.md and in the OPTIONS section of
 * packaging/man/check_smtp_ports.1; every option those two document is
 * accepted by the parser (never "unknown option"), and so is every option
 * of the getopt table (a name map row whose key the core lacks would be);
 * every row of the core's option table is in --help with its description.
 *
 * Usage: test_nagios_docs USAGE.md check_smtp_ports.1
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

static const char *usage_path; /* nagios/USAGE.md (argv[1]) */
static const char *man_path;   /* packaging/man/check_smtp_ports.1 */

/* Read a whole file into a new string (fails the test when unreadable). */
static char *slurp(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f)
    fail_msg("cannot read %s", path);
  char *buf = calloc(1, 1 << 20);
  assert_non_null(buf);
  size_t n = fread(buf, 1, (1 << 20) - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

/* USAGE.md's option table: the "| `" rows after the "| option |" head. */
static char *usage_table(void) {
  char *md = slurp(usage_path);
  char *out = calloc(1, strlen(md) + 1);
  assert_non_null(out);
  char *p = strstr(md, "\n| option |");
  if (!p)
    fail_msg("%s has no '| option |' table", usage_path);
  for (p = strchr(p + 1, '\n'); p && p[1] == '|'; p = strchr(p + 1, '\n')) {
    size_t n = strcspn(p + 1, "\n");
    if (strncmp(p + 1, "| `", 3) == 0)
      strncat(out, p, n + 1);
  }
  free(md);
  return out;
}

/* The man page's OPTIONS section with roff's "\-" as "-". */
static char *man_options(void) {
  char *roff = slurp(man_path);
  char *start = strstr(roff, "\n.SH OPTIONS");
  if (!start)
    fail_msg("%s has no OPTIONS section", man_path);
  char *end = strstr(start + 1, "\n.SH ");
  char *out = calloc(1, strlen(start) + 1);
  assert_non_null(out);
  size_t o = 0;
  for (char *p = start; *p && p != end; p++)
    if (!(p[0] == '\\' && p[1] == '-'))
      out[o++] = *p;
  free(roff);
  return out;
}

/* True when text holds "--name" as a whole option name. */
static bool has_long(const char *text, const char *name) {
  size_t n = strlen(name);
  for (const char *p = strstr(text, "--"); p; p = strstr(p + 1, "--")) {
    char next = p[2 + n];
    if (strncmp(p + 2, name, n) == 0 && !isalnum((unsigned char)next) &&
        next != '-')
      return true;
  }
  return false;
}

/* Parse "-H h OPTION [x]": the error, if any, in err. */
static void try_option(const char *opt, bool with_value, char *err,
                       size_t errlen) {
  char a0[] = "check_smtp_ports", a1[] = "-H", a2[] = "h", a4[] = "x";
  char a3[64];
  snprintf(a3, sizeof(a3), "%s", opt);
  char *argv[] = {a0, a1, a2, a3, with_value ? a4 : NULL, NULL};
  struct check_opts o;
  opts_parse(with_value ? 5 : 4, argv, &o, err, errlen);
  opts_free(&o);
}

/* The getopt entry of a long name, or NULL. */
static const struct option *find_long(const char *name, size_t n) {
  for (const struct option *l = opts_long_options(); l->name; l++)
    if (strlen(l->name) == n && strncmp(l->name, name, n) == 0)
      return l;
  return NULL;
}

/* Every long option of the getopt table is in --help, USAGE.md, man. */
static void accepted_are_documented(void **state) {
  (void)state;
  char *table = usage_table(), *man = man_options();
  int n = 0;
  for (const struct option *l = opts_long_options(); l->name; l++, n++) {
    if (!has_long(opts_help(), l->name))
      fail_msg("--%s is not in --help", l->name);
    if (!has_long(table, l->name))
      fail_msg("--%s is not in %s's option table", l->name, usage_path);
    if (!has_long(man, l->name))
      fail_msg("--%s is not in the OPTIONS of %s", l->name, man_path);
  }
  assert_true(n >= 30);
  free(table);
  free(man);
}

/* Every option named in text is in the getopt table and accepted. */
static void check_named(const char *text, const char *where) {
  int seen = 0;
  for (const char *p = strstr(text, "--"); p; p = strstr(p + 2, "--")) {
    size_t n = strspn(p + 2, "abcdefghijklmnopqrstuvwxyz0123456789-");
    while (n > 0 && p[2 + n - 1] == '-')
      n--; /* "--phase-*" names the --phase- family: skip it */
    if (n == 0 || p[2 + n] == '*')
      continue;
    const struct option *l = find_long(p + 2, n);
    if (!l)
      fail_msg("%s names --%.*s, which the check does not accept", where,
               (int)n, p + 2);
    char opt[64], err[256] = "";
    snprintf(opt, sizeof(opt), "--%s", l->name);
    try_option(opt, l->has_arg != no_argument, err, sizeof(err));
    if (strstr(err, "unknown option"))
      fail_msg("%s: %s", opt, err);
    seen++;
  }
  /* Short options: "`-X" in the table, ".BR -X" heads in the page. */
  for (const char *p = text; (p = strchr(p, '-')) != NULL; p++) {
    bool head = p > text && (p[-1] == '`' || p[-1] == ' ');
    if (!head || !isalnum((unsigned char)p[1]) ||
        isalnum((unsigned char)p[2]) || p[2] == '-')
      continue;
    if (p[-1] == ' ' && !(p > text + 1 && (p[-2] == 'R' || p[-2] == 'B')))
      continue; /* in the page only option heads: ".B -X", ".BR -X" */
    char opt[3] = {'-', p[1], '\0'}, err[256] = "";
    bool has_arg = false, found = false;
    for (const struct option *l = opts_long_options(); l->name; l++)
      if (l->val == p[1])
        found = true, has_arg = l->has_arg != no_argument;
    if (!found)
      fail_msg("%s names %s, which the check does not accept", where, opt);
    try_option(opt, has_arg, err, sizeof(err));
    if (strstr(err, "unknown option"))
      fail_msg("%s: %s", opt, err);
  }
  assert_true(seen >= 20);
}

/* Every option documented in USAGE.md's table is accepted. */
static void usage_documented_are_accepted(void **state) {
  (void)state;
  char *table = usage_table();
  check_named(table, usage_path);
  free(table);
}

/* Every option the man page's OPTIONS section names is accepted. */
static void man_documented_are_accepted(void **state) {
  (void)state;
  char *man = man_options();
  check_named(man, man_path);
  free(man);
}

/* Every option of the getopt table parses (its key is the core's). */
static void every_option_parses(void **state) {
  (void)state;
  for (const struct option *l = opts_long_options(); l->name; l++) {
    char opt[64], err[256] = "";
    snprintf(opt, sizeof(opt), "--%s", l->name);
    try_option(opt, l->has_arg != no_argument, err, sizeof(err));
    if (strstr(err, "unknown option") || strstr(err, "internal error"))
      fail_msg("%s: %s", opt, err);
  }
}

/* Every row of the core's table is spelled by the check, and --help shows
 * its description and default (words compared with spaces collapsed). */
static void table_docs_in_help(void **state) {
  (void)state;
  const char *help = opts_help();
  char *flat = calloc(1, strlen(help) + 1);
  assert_non_null(flat);
  size_t n = 0;
  for (const char *p = help; *p; p++)
    if (!isspace((unsigned char)*p) || (n > 0 && flat[n - 1] != ' '))
      flat[n++] = isspace((unsigned char)*p) ? ' ' : *p;
  for (size_t i = 0; sp_option_at(i); i++) {
    const struct sp_option *o = sp_option_at(i);
    if (!strstr(flat, o->doc))
      fail_msg("--help lacks the doc of %s: %s", o->key, o->doc);
    if (strcmp(o->key, "ports") != 0 && !strstr(flat, o->def))
      fail_msg("--help lacks the default of %s: %s", o->key, o->def);
  }
  free(flat);
}

/* Run the tests on the two documents named on the command line. */
int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s USAGE.md check_smtp_ports.1\n", argv[0]);
    return 2;
  }
  usage_path = argv[1];
  man_path = argv[2];
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(accepted_are_documented),
      cmocka_unit_test(usage_documented_are_accepted),
      cmocka_unit_test(man_documented_are_accepted),
      cmocka_unit_test(every_option_parses),
      cmocka_unit_test(table_docs_in_help),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
