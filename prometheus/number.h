/*
 * number.h - strict decimal numbers for the exporter's flags and
 * configuration (ports, counts). Durations and booleans use the core's
 * sp_parse_seconds / sp_parse_bool (smtp_probe.h).
 */
#ifndef SMTP_EXPORTER_NUMBER_H
#define SMTP_EXPORTER_NUMBER_H

/* Parse a whole decimal number in [min, max] (no sign, no spaces);
 * 0, or -1 when it is not one. */
int number_parse_long(const char *s, long min, long max, long *out);

#endif /* SMTP_EXPORTER_NUMBER_H */
