/*
 * secret.c - loading secrets (passwords, tokens, and later key files)
 * safely, by one rule for every adapter: from a file's first line (a file
 * others can read gives a warning) or from an environment variable;
 * never from argv, never printed.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buffer.h"
#include "smtp_probe.h"

/* The secret-file rule: a warning when group or others can read it. */
int sp_secret_file_warning(const char *file, char *warn, size_t warnlen,
                           char *err, size_t errlen) {
  if (warnlen)
    warn[0] = '\0';
  struct stat st;
  if (!file || stat(file, &st) != 0) {
    snprintf(err, errlen, "secret file %s: %s", file ? file : "(none)",
             strerror(errno));
    return -1;
  }
  if ((st.st_mode & 077) && warnlen)
    snprintf(warn, warnlen,
             "secret file %s is readable by group or others (chmod 600)", file);
  return 0;
}

/* Read a secret from a file's first line or an environment variable. */
int sp_secret_load(const char *file, const char *envvar, char *buf,
                   size_t buflen, char *warn, size_t warnlen, char *err,
                   size_t errlen) {
  if (warnlen)
    warn[0] = '\0';
  if (buflen == 0)
    return -1;
  buf[0] = '\0';
  if (!file) {
    const char *v = envvar ? getenv(envvar) : NULL;
    if (!v || !*v) {
      snprintf(err, errlen, "secret: environment variable %s is not set",
               envvar ? envvar : "(none)");
      return -1;
    }
    if (strlen(v) >= buflen || strlen(v) >= SP_MAX_SECRET) {
      snprintf(err, errlen, "secret: %s is too long", envvar);
      return -1;
    }
    sp_strlcpy(buf, v, buflen);
    return 0;
  }
  FILE *f = fopen(file, "r");
  if (!f) {
    snprintf(err, errlen, "secret file %s: %s", file, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077) && warnlen)
    snprintf(warn, warnlen,
             "secret file %s is readable by group or others (chmod 600)", file);
  char line[SP_MAX_SECRET + 2];
  if (!fgets(line, sizeof(line), f)) {
    fclose(f);
    snprintf(err, errlen, "secret file %s is empty", file);
    return -1;
  }
  fclose(f);
  size_t n = strcspn(line, "\r\n");
  if (line[n] == '\0' && n >= SP_MAX_SECRET) {
    OPENSSL_cleanse(line, sizeof(line));
    snprintf(err, errlen, "secret file %s: first line too long", file);
    return -1;
  }
  line[n] = '\0';
  if (n == 0 || n >= buflen) {
    OPENSSL_cleanse(line, sizeof(line));
    snprintf(err, errlen, "secret file %s: first line is empty or too long",
             file);
    return -1;
  }
  memcpy(buf, line, n + 1);
  OPENSSL_cleanse(line, sizeof(line));
  return 0;
}
