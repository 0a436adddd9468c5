/*
 * fileio.c - bounded whole-file reads and strict number parsing for the
 * exporter's configuration and flags.
 */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Read a whole regular file of at most max bytes. */
char *fileio_read(const char *path, size_t max, size_t *len, char *why,
                  size_t whylen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    snprintf(why, whylen, "%s", strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
    snprintf(why, whylen, "not a regular file of at most %zu bytes", max);
    close(fd);
    return NULL;
  }
  char *text = malloc((size_t)st.st_size + 1);
  size_t got = 0;
  while (text != NULL && got < (size_t)st.st_size) {
    ssize_t n = read(fd, text + got, (size_t)st.st_size - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += (size_t)n;
  }
  close(fd);
  if (text == NULL) {
    snprintf(why, whylen, "out of memory");
    return NULL;
  }
  text[got] = '\0';
  *len = got;
  return text;
}

/* Parse a whole decimal number in [min, max]. */
int fileio_parse_long(const char *s, long min, long max, long *out) {
  if (s[0] == '\0' || s[0] == ' ' || s[0] == '+')
    return -1;
  errno = 0;
  char *end = NULL;
  long v = strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
    return -1;
  *out = v;
  return 0;
}

/* Write "NAME:LINE:COL: message" for a YAML node. */
int fileio_yaml_error(char *err, size_t errlen, const char *name,
                      const yaml_node_t *node, const char *fmt, va_list ap) {
  char msg[512];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  snprintf(err, errlen, "%.256s:%lu:%lu: %s", name,
           (unsigned long)node->start_mark.line + 1,
           (unsigned long)node->start_mark.column + 1, msg);
  return -1;
}
