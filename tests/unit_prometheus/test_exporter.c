/*
 * test_exporter.c - the exporter's shared state: probe slots (a waiting
 * request gives up at its deadline, a released slot goes to a waiter),
 * and configuration reloads (a bad file keeps the old set; references
 * keep a replaced set alive).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "exporter.h"

/* Two slots: the third request waits and gives up at its deadline. */
static void test_slot_deadline(void **state) {
  (void)state;
  static struct exporter ex;
  exporter_init(&ex, 2);
  double now = exporter_now();
  assert_true(exporter_slot_acquire(&ex, now + 5));
  assert_true(exporter_slot_acquire(&ex, now + 5));
  assert_int_equal(ex.stats.inflight, 2);
  double before = exporter_now();
  assert_false(exporter_slot_acquire(&ex, before + 0.2));
  assert_true(exporter_now() >= before + 0.2); /* it did wait */
  assert_int_equal(ex.stats.waiting, 0);
  assert_false(exporter_slot_acquire(&ex, before - 1)); /* already past */
  exporter_slot_release(&ex);
  assert_int_equal(ex.stats.inflight, 1);
  assert_true(exporter_slot_acquire(&ex, exporter_now() + 5));
  exporter_slot_release(&ex);
  exporter_slot_release(&ex);
  assert_int_equal(ex.stats.inflight, 0);
  assert_int_equal(ex.slots_free, 2);
}

/* A thread that waits for a slot with a long deadline. */
static void *waiter(void *arg) {
  struct exporter *ex = arg;
  bool got = exporter_slot_acquire(ex, exporter_now() + 30);
  return got ? ex : NULL;
}

/* A waiter gets the slot as soon as it is released. */
static void test_slot_handover(void **state) {
  (void)state;
  static struct exporter ex;
  exporter_init(&ex, 1);
  assert_true(exporter_slot_acquire(&ex, exporter_now() + 5));
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, waiter, &ex), 0);
  /* readiness: the waiter is counted as waiting (bounded poll) */
  int waiting = 0;
  for (int i = 0; i < 5000 && waiting == 0; i++) {
    pthread_mutex_lock(&ex.stats.lock);
    waiting = ex.stats.waiting;
    pthread_mutex_unlock(&ex.stats.lock);
    if (waiting == 0)
      usleep(1000);
  }
  assert_int_equal(waiting, 1);
  exporter_slot_release(&ex);
  void *res = NULL;
  assert_int_equal(pthread_join(t, &res), 0);
  assert_ptr_equal(res, &ex);
  assert_int_equal(ex.stats.inflight, 1);
  assert_int_equal(ex.stats.waiting, 0);
  exporter_slot_release(&ex);
}

/* Write text to path. */
static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* Reloads: good, bad (old kept, status 0), good again; a reference taken
 * before a reload still reads the old set. */
static void test_reload(void **state) {
  (void)state;
  static struct exporter ex;
  exporter_init(&ex, 1);
  exporter_log_level = XLOG_ERROR; /* only the expected rejection logs */
  char path[] = "/tmp/smtp-exporter-reload.XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  ex.config_file = path;
  char err[512];

  write_file(path, "modules:\n  one:\n    ports: [25]\n");
  assert_int_equal(exporter_reload(&ex, err, sizeof(err)), 0);
  assert_true(ex.stats.reload_ok);
  assert_true(ex.stats.reload_success_ts > 0);
  struct module_set *held = exporter_modules_get(&ex);
  assert_non_null(modules_find(held, "one"));

  write_file(path, "modules:\n  two:\n    bogus: 1\n");
  assert_int_equal(exporter_reload(&ex, err, sizeof(err)), -1);
  assert_non_null(strstr(err, ":3:5: unknown key \"bogus\""));
  assert_false(ex.stats.reload_ok);
  struct module_set *cur = exporter_modules_get(&ex);
  assert_ptr_equal(cur, held); /* the old set stays */
  exporter_modules_put(&ex, cur);

  write_file(path, "modules:\n  two:\n    ports: [587]\n");
  assert_int_equal(exporter_reload(&ex, err, sizeof(err)), 0);
  assert_true(ex.stats.reload_ok);
  assert_int_equal(ex.stats.nconfig_modules, 1);
  cur = exporter_modules_get(&ex);
  assert_non_null(modules_find(cur, "two"));
  assert_null(modules_find(cur, "one"));
  exporter_modules_put(&ex, cur);
  /* the reference taken before still sees the old set (ASan would flag a
   * use after free) */
  assert_non_null(modules_find(held, "one"));
  exporter_modules_put(&ex, held);

  cur = ex.modules;
  ex.modules = NULL;
  exporter_modules_put(&ex, cur);
  unlink(path);
}

/* Run every test of this file. */
int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_slot_deadline),
      cmocka_unit_test(test_slot_handover),
      cmocka_unit_test(test_reload),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
