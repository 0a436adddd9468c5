/*
 * target.h - from a /probe request to a core request: the target
 * parameter (HOST, HOST:PORT, [IPv6]:PORT), the time budget from the
 * scrape timeout header, and the sp_request itself. Pure, unit-tested.
 */
#ifndef SMTP_EXPORTER_TARGET_H
#define SMTP_EXPORTER_TARGET_H

#include <stdbool.h>
#include <stddef.h>

#include "modules.h"
#include "smtp_probe.h"

/* A parsed target parameter. */
struct target {
  char host[SP_MAX_HOST]; /* name or IP literal, without brackets */
  int port;               /* 1..65535, or 0 when the target gave none */
};

/* Parse "HOST", "HOST:PORT", "[IPv6]:PORT", "[IPv6]" or a bare IPv6
 * literal. Returns 0, or -1 with a message in err. */
int target_parse(const char *text, struct target *t, char *err, size_t errlen);

/* The probe's time budget in seconds: the module's timeout, lowered to the
 * scrape timeout header's value minus offset when that is smaller (half
 * the header's value when the offset would eat it all). header may be
 * NULL. why receives one line saying how the budget was chosen. */
double target_budget(double module_timeout_s, const char *header,
                     double offset_s, char *why, size_t whylen);

/* Build the core request for a module and target with the given timeout:
 * the module's template with the target's host and port (or the module's
 * or its policy's ports); the request points into mod and t. Returns 0,
 * or -1 with a message when no port is known. */
int target_request(const struct module *mod, const struct target *t,
                   double timeout_s, bool trace, struct sp_request *req,
                   char *err, size_t errlen);

#endif /* SMTP_EXPORTER_TARGET_H */
