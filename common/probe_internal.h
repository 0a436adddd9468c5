/*
 * probe_internal.h - the core's internal headers in one include, for its
 * own files and its unit tests and fuzz harnesses: buffer.h, reply.h,
 * sasl.h, tls.h, and the request checks below. Not for adapters (they
 * include smtp_probe.h only).
 */
#ifndef SP_PROBE_INTERNAL_H
#define SP_PROBE_INTERNAL_H

#include "buffer.h"
#include "reply.h"
#include "sasl.h"
#include "smtp_probe.h"
#include "tls.h"

/* ---- request.c: checks shared with options.c and the engine ---------- */

/* A host name or IP literal of sane shape (request.c). */
bool sp_host_is_valid(const char *s);

/* An IPv4/IPv6 address; with_port also allows ":PORT" ("[v6]:PORT"). */
bool sp_ip_port_is_valid(const char *s, bool with_port);

/* sp_request_validate without opening the cafile: the engine checks
 * submitted requests with it (the adapters validated them whole; the
 * cafile is loaded once per file for its TLS context). */
int sp_request_check_fields(const struct sp_request *req, char *err,
                            size_t errlen);

#endif /* SP_PROBE_INTERNAL_H */
