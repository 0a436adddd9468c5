/*
 * fileio.h - bounded whole-file reads for the exporter's configuration
 * readers (modules file, web config).
 */
#ifndef SMTP_EXPORTER_FILEIO_H
#define SMTP_EXPORTER_FILEIO_H

#include <stddef.h>

/* Read a whole regular file of at most max bytes into a NUL-terminated
 * string (the caller frees it) and its length. NULL with the reason in
 * why (not naming the file) when it cannot be opened, is not a regular
 * file, is larger than max, or memory runs out. */
char *fileio_read(const char *path, size_t max, size_t *len, char *why,
                  size_t whylen);

#endif /* SMTP_EXPORTER_FILEIO_H */
