/*
 * fuzz_check.h - small assertions shared by the fuzz harnesses. A failed
 * check prints what failed and aborts, which libFuzzer (or the replay
 * main) reports as a crash with the input that caused it.
 */
#ifndef FUZZ_CHECK_H
#define FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Abort with a message when cond is false. */
#define FUZZ_ASSERT(cond, what)                                                \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "fuzz check failed: %s (%s:%d)\n", what, __FILE__,       \
              __LINE__);                                                       \
      abort();                                                                 \
    }                                                                          \
  } while (0)

/* True when the environment variable FUZZ_KNOWN (a comma-separated list)
 * names this known, reported bug: its check is skipped so that a long
 * run can look past it. Regression replays never set FUZZ_KNOWN. */
static inline int fuzz_known(const char *id) {
  const char *k = getenv("FUZZ_KNOWN");
  size_t n = strlen(id);
  while (k && *k) {
    size_t l = strcspn(k, ",");
    if (l == n && strncmp(k, id, n) == 0)
      return 1;
    k += l;
    if (*k == ',')
      k++;
  }
  return 0;
}

/* Check that a text field of cap bytes is NUL-terminated and holds only
 * printable ASCII (plus '\n' when newlines is nonzero). */
static inline void fuzz_check_text(const char *s, size_t cap, int newlines,
                                   const char *what) {
  size_t n = strnlen(s, cap);
  if (n >= cap) {
    fprintf(stderr, "fuzz check failed: %s is not NUL-terminated\n", what);
    abort();
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if ((c >= 0x20 && c < 0x7f) || (newlines && c == '\n'))
      continue;
    fprintf(stderr, "fuzz check failed: %s has byte 0x%02x at %zu\n", what, c,
            i);
    abort();
  }
}

#endif /* FUZZ_CHECK_H */
