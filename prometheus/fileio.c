/*
 * fileio.c - bounded whole-file reads for the exporter's configuration
 * files (see fileio.h).
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
