/*
 * fuzz_policy.c - fuzz the port policy loader (sp_policy_load, YAML) and
 * the check of results against a loaded policy (sp_policy_check).
 *
 * Input: the policy file's text (handed over as a memfd's /proc path).
 * Checks: a refused file says why; a loaded policy adds ports that make a
 * valid request; checking made-up results (every port, codes, TLS and
 * AUTH facts taken from the input's bytes) writes at most max deviations,
 * each with a terminated rule and detail, and leaves every result with a
 * valid code and a terminated, sanitised detail.
 */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_check.h"
#include "smtp_probe.h"

#define FP_MAX_DEVS 8 /* deviations asked for */

/* Write the input to a memfd; its fd or -1. */
static int input_fd(const uint8_t *data, size_t size) {
  int fd = memfd_create("policy", MFD_CLOEXEC);
  if (fd < 0)
    return -1;
  size_t off = 0;
  while (off < size) {
    ssize_t w = write(fd, data + off, size - off);
    if (w <= 0) {
      close(fd);
      return -1;
    }
    off += (size_t)w;
  }
  return fd;
}

/* libFuzzer entry point: one policy file. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[64], err[256];
  int fd = input_fd(data, size);
  FUZZ_ASSERT(fd >= 0, "memfd");
  snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
  err[0] = '\0';
  struct sp_policy *pol = sp_policy_load(path, err, sizeof(err));
  close(fd);
  FUZZ_ASSERT(strnlen(err, sizeof(err)) < sizeof(err), "error terminated");
  if (!pol) {
    FUZZ_ASSERT(err[0] != '\0', "a refused policy says why");
    return 0;
  }
  struct sp_request req;
  char verr[256];
  sp_request_init(&req);
  req.host = "127.0.0.1";
  if (sp_policy_add_ports(pol, &req) == 0 && req.nports > 0)
    FUZZ_ASSERT(sp_request_validate(&req, verr, sizeof(verr)) == 0,
                "a policy's ports make a valid request");

  /* Made-up results for the policy's ports (and one it does not name). */
  struct sp_result *res = calloc((size_t)req.nports + 1, sizeof(*res));
  FUZZ_ASSERT(res != NULL, "calloc");
  int n = req.nports + 1;
  for (int i = 0; i < n; i++) {
    uint8_t b = size ? data[(size_t)i * 7 % size] : 0;
    res[i].port = i < req.nports ? req.ports[i].port : 65000;
    res[i].role = sp_role_for_port(res[i].port);
    res[i].code = (enum sp_code)(b % SP_CODE_COUNT);
    res[i].tls = b & 1;
    snprintf(res[i].tls_version, sizeof(res[i].tls_version), "%s",
             (b & 2) ? "TLSv1.2" : "TLSv1");
    res[i].caps_plain.seen = true;
    res[i].caps_plain.flags = (b & 4) ? SP_CAP_AUTH : 0;
    snprintf(res[i].caps_plain.auth_mechs, sizeof(res[i].caps_plain.auth_mechs),
             "PLAIN LOGIN");
    res[i].caps_tls = res[i].caps_plain;
    res[i].caps_tls.flags |= (b & 8) ? SP_CAP_AUTH | SP_CAP_STARTTLS : 0;
    snprintf(res[i].caps_tls.auth_mechs, sizeof(res[i].caps_tls.auth_mechs),
             "%s", (b & 16) ? "CRAM-MD5 XOAUTH2" : "PLAIN");
  }
  struct sp_batch batch = {.results = res, .nresults = n, .dns_s = -1};
  struct sp_deviation devs[FP_MAX_DEVS];
  int nd = sp_policy_check(pol, &batch, devs, FP_MAX_DEVS);
  FUZZ_ASSERT(nd >= 0 && nd <= FP_MAX_DEVS, "deviations within max");
  for (int i = 0; i < nd; i++) {
    fuzz_check_text(devs[i].rule, sizeof(devs[i].rule), 0, "deviation rule");
    fuzz_check_text(devs[i].detail, sizeof(devs[i].detail), 0,
                    "deviation detail");
  }
  for (int i = 0; i < n; i++) {
    FUZZ_ASSERT((int)res[i].code >= 0 && res[i].code < SP_CODE_COUNT,
                "valid code after the check");
    fuzz_check_text(res[i].detail, sizeof(res[i].detail), 0, "detail");
  }
  free(res);
  sp_policy_free(pol);
  return 0;
}
