#!/usr/bin/env python3
"""Write the seed corpus of the fuzz harnesses (tests/fuzz/corpus/NAME/).

Run from anywhere: python3 tests/fuzz/gen_corpus.py. The files are
committed; this script only documents how they were made and can make
them again. Formats are described at the top of each fuzz_NAME.c.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

BANNER = b"220 mx.example.com ESMTP Postfix (Debian/GNU)\r\n"
EHLO = (b"250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
        b"250-VRFY\r\n250-ETRN\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n"
        b"250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n"
        b"250 SMTPUTF8\r\n")
EHLO_TEXT = (b"mx.example.com Hello\nPIPELINING\nSIZE 10240000\nSTARTTLS\n"
             b"AUTH PLAIN LOGIN CRAM-MD5\nAUTH=PLAIN LOGIN\n"
             b"ENHANCEDSTATUSCODES\n8BITMIME\nDSN\nSMTPUTF8\nCHUNKING\n"
             b"REQUIRETLS")


def write(name, fname, data):
    d = os.path.join(HERE, "corpus", name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, fname), "wb") as f:
        f.write(data)


def records(*chunks):
    return b"".join(struct.pack(">H", len(c)) + c for c in chunks)


# reply: [nsched][schedule][stream]
write("reply", "banner", b"\x00" + BANNER)
write("reply", "ehlo", b"\x00" + EHLO)
write("reply", "ehlo-cut", b"\x03\x00\x06\x10" + EHLO)
write("reply", "bare-code", b"\x02\x01\x00" + b"250\r\n220-a\r\n220 b\r\n")
write("reply", "lf-only", b"\x01\x07" + b"250-a\n250-b\n250 c\n")
write("reply", "reject", b"\x00" + b"554 5.7.1 <x>: Relay access denied\r\n")
write("reply", "code-change", b"\x00" + b"250-a\r\n251 b\r\n")
write("reply", "garbage", b"\x00" + b"\x16\x03\x01\x00\xa5\x01\x00")

# caps: the reply text as stored (no "250-" prefixes)
write("caps", "postfix", EHLO_TEXT)
write("caps", "exchange", b"mail.example.com Hello [127.0.0.1]\nSIZE 37748736\n"
      b"PIPELINING\nDSN\nENHANCEDSTATUSCODES\nSTARTTLS\nX-ANONYMOUSTLS\n"
      b"AUTH NTLM\nX-EXPS GSSAPI NTLM\n8BITMIME\nBINARYMIME\nCHUNKING\n"
      b"SMTPUTF8\nXRDST")
write("caps", "size-only", b"x\nSIZE\nSIZE=99999999999999999999999\n")
write("caps", "auth-dups", b"x\nAUTH PLAIN plain LOGIN\nAUTH=LOGIN XOAUTH2")

# options: one option value, tried under every key (fuzz_options.c)
write("options", "ports", b"587,465 2525")
write("options", "duration", b"1m30s")
write("options", "tls-version", b"TLSv1.2")
write("options", "host", b"mail.smtp-probe.test")
write("options", "ip-port", b"[::1]:5300")
write("options", "bad", b"\xff\x00,,,999999999999")
# records: a mail-domain record or MTA-STS policy (fuzz_records.c)
write("records", "sts-policy", b"version: STSv1\r\nmode: enforce\r\nmx: *.example.com\r\nmax_age: 86400\r\n")
write("records", "sts-txt", b"v=STSv1; id=20240101")
write("records", "mx-match", b"*.example.com\nmx1.example.com")
write("records", "tlsrpt", b"v=TLSRPTv1; rua=mailto:tls@example.com,https://r.example.com/x")
write("records", "dmarc", b"v=DMARC1; p=reject; sp=none; pct=50; rua=mailto:d@example.com")
write("records", "spf", b"v=spf1 ip4:192.0.2.0/24 include:_spf.example.com mx -all")
write("records", "dkim", b"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
# sasl: a server challenge / an AUTH list
write("sasl", "cram-rfc2195", b"PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+")
write("sasl", "mechs", b"PLAIN LOGIN CRAM-MD5 XOAUTH2")
write("sasl", "bad", b"=====")

# range: Nagios threshold ranges
for i, r in enumerate([b"10", b"10:", b"~:10", b"10:20", b"@10:20", b"0.5:1.5",
                       b"-5:-1", b"@~:0"]):
    write("range", "r%d" % i, r)

# probe: [options][server bytes]
QUIT = b"221 2.0.0 Bye\r\n"
write("probe", "none-ok", bytes([0x04]) + records(BANNER, EHLO, QUIT))
write("probe", "none-trial", bytes([0x04 | 0x10 | 0x08]) + records(
    BANNER, EHLO.replace(b"250-AUTH PLAIN LOGIN\r\n", b""), b"250 2.1.0 Ok\r\n", b"250 2.1.5 Ok\r\n",
    b"250 2.0.0 Ok\r\n", QUIT))
write("probe", "starttls-hello", bytes([0x05]) + records(
    BANNER, EHLO, b"220 2.0.0 Ready to start TLS\r\n",
    b"\x16\x03\x03\x00\x02\x02\x28"))
write("probe", "starttls-454", bytes([0x05 | 0x08]) + records(
    BANNER, EHLO, b"454 4.7.0 TLS not available\r\n", QUIT))
write("probe", "auto-plain", bytes([0x06]) + records(
    BANNER, b"250-mx\r\n250 PIPELINING\r\n", QUIT))
write("probe", "implicit-plain", bytes([0x03]) + BANNER)
write("probe", "greet554", bytes([0x00]) + b"554 5.3.2 go away\r\n")
write("probe", "helo-fallback", bytes([0x04]) + records(
    BANNER, b"502 5.5.2 Error: command not recognized\r\n",
    b"250 mx.example.com\r\n", QUIT))
write("probe", "whole-stream", bytes([0x00]) + BANNER + EHLO + QUIT)
write("probe", "auth-before-tls", bytes([0x86]) + records(
    BANNER, b"250-mx\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n"))

# target: target\nheader\nduration
for i, t in enumerate([b"mail.example.com\n10\n5s", b"mail.example.com:587\n\n1m30s",
                       b"[::1]:465\n0.5\n500ms", b"::1\nabc\n0",
                       b"127.0.0.1:25\n4.5\n1h2m3s4ms"]):
    write("target", "t%d" % i, t)

# modules: exporter YAML files
write("modules", "example", open(os.path.join(HERE, "..", "..", "prometheus",
                                              "smtp_exporter.yml"), "rb").read())
write("modules", "full", b"""modules:
  sub:
    ports: [587, 2525]
    tls: starttls
    role: submission
    timeout: 1m30s
    banner_wait: 2s
    server_name: mail.example.com
    ehlo: probe.example.com
    ip_protocol: ip4
    insecure_skip_verify: false
    all_addresses: true
    dns_server: 127.0.0.1:53
    cert_warning_days: 14
    cert_critical_days: 7
  relay:
    ports: [25]
    role: relay
""")
write("modules", "alias", b"modules:\n  a: &x {ports: [25]}\n  b: *x\n")

# probe with TLS: the 0xffff record is the TLS marker (see fuzz_probe.c)
TLS = b"\xff\xff"
EHLO_TLS = (b"250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
            b"250-AUTH PLAIN LOGIN CRAM-MD5\r\n250-ENHANCEDSTATUSCODES\r\n"
            b"250 8BITMIME\r\n")
EHLO_PLAIN = EHLO.replace(b"250-AUTH PLAIN LOGIN\r\n", b"")
READY = b"220 2.0.0 Ready to start TLS\r\n"
write("probe", "starttls-ok", bytes([0x05 | 0x08]) + records(
    BANNER, EHLO_PLAIN, READY) + TLS + records(EHLO_TLS, QUIT))
write("probe", "starttls-auth-cram", bytes([0x05 | 0x08 | 0x20]) + records(
    BANNER, EHLO_PLAIN, READY) + TLS + records(
    EHLO_TLS, b"334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n",
    b"235 2.7.0 Authentication successful\r\n", QUIT))
write("probe", "starttls-auth-trial", bytes([0x05 | 0x08 | 0x20 | 0x10]) + records(
    BANNER, EHLO_PLAIN, READY) + TLS + records(
    EHLO_TLS.replace(b"CRAM-MD5", b""), b"235 2.7.0 Authentication successful\r\n",
    b"250 2.1.0 Ok\r\n", b"250 2.1.5 Ok\r\n", b"250 2.0.0 Ok\r\n", QUIT))
write("probe", "starttls-auth-login", bytes([0x05 | 0x20]) + records(
    BANNER, EHLO_PLAIN, READY) + TLS + records(
    b"250-mx\r\n250 AUTH LOGIN\r\n", b"334 VXNlcm5hbWU6\r\n", b"334 UGFzc3dvcmQ6\r\n",
    b"535 5.7.8 Error: authentication failed\r\n", QUIT))
write("probe", "implicit-ok", bytes([0x07 | 0x08]) + TLS + records(
    BANNER, EHLO_TLS, QUIT))
write("probe", "starttls-injection", bytes([0x05 | 0x40]) + records(
    BANNER, EHLO_PLAIN, READY) + TLS + records(EHLO_TLS, QUIT))

# providers: provider presets YAML (common/providers.c); the real table too
with open(os.path.join(HERE, "..", "..", "data", "providers.yml"), "rb") as _f:
    write("providers", "builtin", _f.read() + b"smtp.sendgrid.net")
write("providers", "small", b"""providers:
  a:
    name: A
    aliases: [b]
    host: smtp.a.example
    hosts: [smtp.a.example, 'smtp.*.a.example']
    domains: [a.example]
    source: https://a.example/docs
    as_of: "2024-06"
    ports:
      587: {tls: starttls, auth: after_tls}
      465: {tls: implicit}
smtp.x.a.example""")
write("providers", "bad-port", b"providers:\n  a: {name: A, host: h, source: s, as_of: x, ports: {0: {}}}\n")

# policy: port policy YAML (common/policy.c)
write("policy", "full", b"""ports:
  25:
    state: open
    tls: any
    auth: never
  465:
    state: open
    tls: implicit
    auth: after_tls
    mechanisms: [PLAIN, LOGIN]
    min_tls: "1.2"
  587:
    state: open
    tls: starttls
    auth: after_tls
    min_tls: TLSv1.3
  2525:
    state: closed
""")
write("policy", "small", b"ports:\n  587: {tls: starttls}\n")

# app: byte 0 = framework (bits 0-2: generic symfony laravel nodemailer
# django spring), bit 3 from a file, bits 4-7 the made-up code; then lines
# of settings (common/app_settings.c, fuzz_app.c)
write("app", "generic-url", b"\x00smtp://user@mail.example.org:587\n")
write("app", "generic-query", b"\x10smtp://h:465?encryption=tls&starttls=false\n")
write("app", "symfony-dsn", b"\x01MAILER_DSN=smtp://mail.example.org:465"
      b"?auto_tls=false&require_tls=true\n")
write("app", "laravel-env", b"\x0aMAIL_MAILER=smtp\nMAIL_HOST=mail.example.org\n"
      b"MAIL_PORT=2525\nMAIL_USERNAME=app\nMAIL_PASSWORD=x\n"
      b"MAIL_ENCRYPTION=ssl\nMAIL_SCHEME=smtps\n")
write("app", "nodemailer-js", b"\x0b// transport\nhost: \"mail.example.org\",\n"
      b"port: 465,\nsecure: false,\nrequireTLS: true,\nignoreTLS: true,\n")
write("app", "django-settings", b"\x0cEMAIL_HOST = 'mail.example.org'\n"
      b"EMAIL_PORT = 465\nEMAIL_USE_TLS = True\nEMAIL_USE_SSL = True\n"
      b"EMAIL_URL=smtp+tls://u@[::1]:587\n")
write("app", "spring-props", b"\x05spring.mail.host=mail.example.org\n"
      b"spring.mail.port=587\nspring.mail.protocol=smtps\n"
      b"spring.mail.properties.mail.smtp.starttls.enable=true\n"
      b"mail.smtp.starttls.required=true\nmail.smtp.ssl.enable=false\n")
write("app", "bad", b"\x08smtp://[::1\nsmtp://h:99999\nftp://x\n=\n%%%\n"
      b"smtp://u:p%41ss@h:0?password=p\n")

