/* Unit tests: SMTP reply assembly (multi-line, caps, garbage) and EHLO
 * capability parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "probe_internal.h"

/* A reply on the heap, ready to use. */
static struct sp_reply *new_reply(void) {
  struct sp_reply *r = calloc(1, sizeof(*r));
  assert_non_null(r);
  sp_reply_init(r);
  return r;
}

/* Free a reply from new_reply. */
static void free_reply(struct sp_reply *r) {
  sp_reply_free(r);
  free(r);
}

/* Feed text into a fresh reply and a fresh input buffer (in must be
 * initialised; what it held is freed); return the status. */
static enum sp_reply_status feed(struct sp_reply *r, struct sp_buf *in,
                                 const char *text, size_t n, char *why) {
  sp_buf_free(in);
  sp_buf_init(in, SP_MAX_PROBE_BUFFER);
  assert_int_equal(sp_buf_append(in, text, n), 0);
  sp_reply_reset(r);
  return sp_reply_feed(r, in, NULL, why, SP_MAX_TEXT);
}

/* A one-line reply is complete and keeps its code and text. */
static void single_line(void **state) {
  (void)state;
  struct sp_reply *r = new_reply();
  struct sp_buf in = {0};
  char why[SP_MAX_TEXT];
  const char *t = "220 mail.example ESMTP ready\r\n";
  assert_int_equal(feed(r, &in, t, strlen(t), why), SP_REPLY_DONE);
  assert_int_equal(r->code, 220);
  assert_int_equal(r->nlines, 1);
  assert_string_equal(r->text.data, "mail.example ESMTP ready");
  assert_string_equal(r->first, "220 mail.example ESMTP ready");
  assert_int_equal(in.len, 0);
  sp_buf_free(&in);
  free_reply(r);
}

/* A multi-line reply needs its last line; leftovers stay in the buffer. */
static void multi_line_and_leftover(void **state) {
  (void)state;
  struct sp_reply *r = new_reply();
  struct sp_buf in = {0};
  char why[SP_MAX_TEXT];
  const char *part = "250-mx\r\n250-PIPELINING\r\n";
  assert_int_equal(feed(r, &in, part, strlen(part), why), SP_REPLY_MORE);
  assert_int_equal(r->nlines, 2);
  const char *rest = "250 SIZE 100\n221 bye\r\n";
  assert_int_equal(sp_buf_append(&in, rest, strlen(rest)), 0);
  assert_int_equal(sp_reply_feed(r, &in, NULL, why, sizeof(why)),
                   SP_REPLY_DONE);
  assert_int_equal(r->nlines, 3);
  assert_string_equal(r->text.data, "mx\nPIPELINING\nSIZE 100");
  assert_string_equal(in.data, "221 bye\r\n");
  sp_buf_free(&in);
  free_reply(r);
}

/* A bare "250" line (no text) is a valid last line. */
static void bare_code(void **state) {
  (void)state;
  struct sp_reply *r = new_reply();
  struct sp_buf in = {0};
  char why[SP_MAX_TEXT];
  assert_int_equal(feed(r, &in, "250\r\n", 5, why), SP_REPLY_DONE);
  assert_int_equal(r->code, 250);
  sp_buf_free(&in);
  free_reply(r);
}

/* Garbage fails as soon as the first bytes show it, without a newline. */
static void garbage_fails_early(void **state) {
  (void)state;
  struct sp_reply *r = new_reply();
  struct sp_buf in = {0};
  char why[SP_MAX_TEXT];
  const char bin[] = {'\x16', '\x03', '\x01', '\x00', '\xff'};
  assert_int_equal(feed(r, &in, bin, sizeof(bin), why), SP_REPLY_ERROR);
  assert_non_null(strstr(why, "not an SMTP reply"));
  /* sanitised: no raw control bytes in the message */
  for (const char *c = why; *c; c++)
    assert_true(*c >= 0x20 && *c < 0x7f);
  assert_int_equal(feed(r, &in, "HTTP/1.1 400", 12, why), SP_REPLY_ERROR);
  assert_int_equal(feed(r, &in, "2", 1, why), SP_REPLY_MORE);
  sp_buf_free(&in);
  free_reply(r);
}

/* A line that never ends is refused once it passes SP_MAX_LINE. */
static void endless_line(void **state) {
  (void)state;
  struct sp_reply *r = new_reply();
  struct sp_buf in = {0};
  char why[SP_MAX_TEXT];
  size_t n = SP_MAX_LINE + 10;
  char *t = malloc(n);
  memcpy(t, "220 ", 4);
  memset(t + 4, 'a', n - 4);
  assert_int_equal(feed(r, &in, t, SP_MAX_LINE, why), SP_REPLY_MORE);
  assert_int_equal(sp_buf_append(&in, t, 10), 0);
  assert_int_equal(sp_reply_feed(r, &in, NULL, why, sizeof(why)),
                   SP_REPLY_ERROR);
  assert_non_null(strstr(why, "longer than"));
  free(t);
  sp_buf_free(&in);
  free_reply(r);
}

/* Too many continuation lines are refused at SP_MAX_REPLY_LINES. */
static void too_many_lines(void **state) {
  (void)state;
  struct sp_reply *r = new_reply();
  struct sp_buf in = {0};
  char why[SP_MAX_TEXT];
  sp_buf_init(&in, SP_MAX_PROBE_BUFFER);
  sp_reply_reset(r);
  enum sp_reply_status st = SP_REPLY_MORE;
  int lines = 0;
  while (st == SP_REPLY_MORE && lines < SP_MAX_REPLY_LINES + 5) {
    assert_int_equal(sp_buf_append(&in, "250-X\r\n", 7), 0);
    st = sp_reply_feed(r, &in, NULL, why, sizeof(why));
    lines++;
  }
  assert_int_equal(st, SP_REPLY_ERROR);
  assert_int_equal(lines, SP_MAX_REPLY_LINES + 1);
  sp_buf_free(&in);
  free_reply(r);
}

/* A code that changes within a reply is a protocol error. */
static void code_change(void **state) {
  (void)state;
  struct sp_reply *r = new_reply();
  struct sp_buf in = {0};
  char why[SP_MAX_TEXT];
  const char *t = "250-a\r\n251 b\r\n";
  assert_int_equal(feed(r, &in, t, strlen(t), why), SP_REPLY_ERROR);
  assert_non_null(strstr(why, "changed"));
  sp_buf_free(&in);
  free_reply(r);
}

/* The transcript gets sanitised server lines. */
static void transcript_sanitised(void **state) {
  (void)state;
  struct sp_reply *r = new_reply();
  struct sp_buf in, tr;
  char why[SP_MAX_TEXT];
  sp_buf_init(&tr, 1024);
  sp_buf_init(&in, 1024);
  sp_reply_reset(r);
  const char *t = "220 hi\x1b[31m\r\n";
  assert_int_equal(sp_buf_append(&in, t, strlen(t)), 0);
  assert_int_equal(sp_reply_feed(r, &in, &tr, why, sizeof(why)), SP_REPLY_DONE);
  assert_string_equal(tr.data, "S: 220 hi?[31m\n");
  assert_string_equal(r->first, "220 hi?[31m");
  sp_buf_free(&in);
  sp_buf_free(&tr);
  free_reply(r);
}

/* EHLO keywords, SIZE value and AUTH mechanisms are parsed. */
static void caps_parsed(void **state) {
  (void)state;
  struct sp_reply *r = new_reply();
  struct sp_buf in = {0};
  char why[SP_MAX_TEXT];
  const char *t = "250-mx.example Hello\r\n250-PIPELINING\r\n250-SIZE "
                  "10240000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-CHUNKING\r\n"
                  "250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n250-REQUIRETLS\r\n"
                  "250-auth plain LOGIN\r\n250-AUTH=PLAIN XOAUTH2\r\n"
                  "250 STARTTLS\r\n";
  assert_int_equal(feed(r, &in, t, strlen(t), why), SP_REPLY_DONE);
  struct sp_caps caps;
  sp_caps_parse(&caps, r);
  assert_true(caps.seen);
  assert_string_equal(caps.ehlo_domain, "mx.example");
  unsigned all = SP_CAP_SIZE | SP_CAP_PIPELINING | SP_CAP_8BITMIME |
                 SP_CAP_SMTPUTF8 | SP_CAP_CHUNKING | SP_CAP_DSN |
                 SP_CAP_ENHANCEDSTATUSCODES | SP_CAP_REQUIRETLS |
                 SP_CAP_STARTTLS | SP_CAP_AUTH;
  assert_int_equal(caps.flags, all);
  assert_int_equal(caps.size_limit, 10240000);
  assert_string_equal(caps.auth_mechs, "PLAIN LOGIN XOAUTH2");
  char text[256];
  sp_caps_format(&caps, text, sizeof(text));
  assert_non_null(strstr(text, "SIZE=10240000"));
  assert_non_null(strstr(text, "AUTH(PLAIN LOGIN XOAUTH2)"));
  sp_buf_free(&in);
  free_reply(r);
}

/* Capabilities that are absent stay absent; SIZE without value is 0. */
static void caps_minimal(void **state) {
  (void)state;
  struct sp_reply *r = new_reply();
  struct sp_buf in = {0};
  char why[SP_MAX_TEXT];
  const char *t = "250-mx\r\n250 SIZE\r\n";
  assert_int_equal(feed(r, &in, t, strlen(t), why), SP_REPLY_DONE);
  struct sp_caps caps;
  sp_caps_parse(&caps, r);
  assert_int_equal(caps.flags, SP_CAP_SIZE);
  assert_int_equal(caps.size_limit, 0);
  assert_string_equal(caps.auth_mechs, "");
  sp_buf_free(&in);
  free_reply(r);
}

/* Run this file's tests. */
int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(single_line),  cmocka_unit_test(multi_line_and_leftover),
      cmocka_unit_test(bare_code),    cmocka_unit_test(garbage_fails_early),
      cmocka_unit_test(endless_line), cmocka_unit_test(too_many_lines),
      cmocka_unit_test(code_change),  cmocka_unit_test(transcript_sanitised),
      cmocka_unit_test(caps_parsed),  cmocka_unit_test(caps_minimal),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
