/*
 * policy_internal.h - the policy parser's parts that provider presets
 * (providers.c) share: the same per-port rule format in another document.
 * Internal to the core (needs <yaml.h>).
 */
#ifndef SP_POLICY_INTERNAL_H
#define SP_POLICY_INTERNAL_H

#include <yaml.h>

#include "smtp_probe.h"

/* An empty policy (free with sp_policy_free); NULL when out of memory. */
struct sp_policy *sp_policy_new(void);

/* Read a "ports" mapping node (port number -> rules, as in a policy file)
 * into pol; -1 with a message (line numbers) in err. */
int sp_policy_parse_ports(yaml_document_t *doc, yaml_node_t *ports,
                          struct sp_policy *pol, char *err, size_t errlen);

#endif /* SP_POLICY_INTERNAL_H */
