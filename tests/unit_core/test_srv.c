/* Unit tests: turning submission SRV records into a request (srv.c):
 * implicit TLS first, the best record of each, the user's domain as the
 * verify name, "." and missing records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "smtp_probe.h"

/* Add a record to a service. */
static void rec(struct sp_srv_service *s, const char *target, uint16_t port,
                uint16_t prio, uint16_t weight) {
  struct sp_srv_record *r = &s->rec[s->n++];
  snprintf(r->target, sizeof(r->target), "%s", target);
  r->port = port;
  r->priority = prio;
  r->weight = weight;
}

/* Both services on one host: both ports, implicit first, SNI the domain. */
static void both_one_host(void **state) {
  (void)state;
  struct sp_srv_set set = {0};
  snprintf(set.domain, sizeof(set.domain), "example.org");
  rec(&set.submissions, "mx9.example.net", 465, 10, 0);
  rec(&set.submissions, "mail.example.net", 465, 0, 5);
  rec(&set.submission, "mail.example.net", 587, 0, 0);
  struct sp_request req;
  sp_request_init(&req);
  char note[256], err[256];
  assert_int_equal(
      sp_srv_request(&set, &req, note, sizeof(note), err, sizeof(err)), 0);
  assert_string_equal(req.host, "mail.example.net"); /* lowest priority */
  assert_int_equal(req.nports, 2);
  assert_int_equal(req.ports[0].port, 465);
  assert_int_equal(req.ports[0].tls_mode, SP_TLS_IMPLICIT);
  assert_int_equal(req.ports[1].port, 587);
  assert_int_equal(req.ports[1].tls_mode, SP_TLS_STARTTLS);
  assert_string_equal(req.sni, "example.org"); /* RFC 6186 section 6 */
  assert_string_equal(note, "");
}

/* Different hosts: the implicit one, and a note about the other; only
 * STARTTLS: probed, with a note. */
static void other_hosts_and_notes(void **state) {
  (void)state;
  struct sp_srv_set set = {0};
  snprintf(set.domain, sizeof(set.domain), "example.org");
  rec(&set.submissions, "a.example.net", 465, 0, 0);
  rec(&set.submission, "b.example.net", 587, 0, 0);
  struct sp_request req;
  sp_request_init(&req);
  char note[256], err[256];
  assert_int_equal(
      sp_srv_request(&set, &req, note, sizeof(note), err, sizeof(err)), 0);
  assert_int_equal(req.nports, 1);
  assert_non_null(strstr(note, "names another host (b.example.net port 587)"));
  struct sp_srv_set only = {0};
  snprintf(only.domain, sizeof(only.domain), "example.org");
  rec(&only.submission, "b.example.net", 2525, 0, 0);
  sp_request_init(&req);
  assert_int_equal(
      sp_srv_request(&only, &req, note, sizeof(note), err, sizeof(err)), 0);
  assert_int_equal(req.ports[0].port, 2525);
  assert_non_null(strstr(note, "no _submissions._tcp record"));
}

/* "." targets: no service (1); nothing: -1; a failed lookup: -1. */
static void none_missing_failed(void **state) {
  (void)state;
  struct sp_request req;
  char note[256], err[256];
  struct sp_srv_set set = {0};
  snprintf(set.domain, sizeof(set.domain), "example.org");
  set.submissions.none = set.submission.none = true;
  sp_request_init(&req);
  assert_int_equal(
      sp_srv_request(&set, &req, note, sizeof(note), err, sizeof(err)), 1);
  assert_non_null(strstr(err, "publishes no submission service"));
  memset(&set.submissions, 0, sizeof(set.submissions));
  memset(&set.submission, 0, sizeof(set.submission));
  set.submissions.missing = set.submission.missing = true;
  assert_int_equal(
      sp_srv_request(&set, &req, note, sizeof(note), err, sizeof(err)), -1);
  assert_non_null(strstr(err, "no _submissions._tcp or _submission._tcp"));
  snprintf(set.submission.error, sizeof(set.submission.error), "timeout");
  assert_int_equal(
      sp_srv_request(&set, &req, note, sizeof(note), err, sizeof(err)), -1);
  assert_non_null(strstr(err, "the lookup failed: timeout"));
  struct sp_srv_set bad;
  assert_int_equal(sp_srv_lookup("bad domain", NULL, 1, &bad, err, sizeof(err)),
                   -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(both_one_host),
      cmocka_unit_test(other_hosts_and_notes),
      cmocka_unit_test(none_missing_failed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
