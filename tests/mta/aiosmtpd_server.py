"""A private aiosmtpd (Debian's python3-aiosmtpd 1.4) mail server for tests.

usage: aiosmtpd_server.py --certs DIR --user USER --password-file FILE
                          --ready FILE --log FILE ADDR:PORT=PROFILE...

Every listener is aiosmtpd's own SMTP protocol class served by one asyncio
loop (what aiosmtpd's Controller does, one thread per listener, minus the
threads and the self-connection it makes to start each one). PROFILE:

  relay              STARTTLS offered (tls_context), not required; AUTH
                     only after TLS (auth_require_tls=True)
  submission         STARTTLS required (require_starttls=True), AUTH only
                     after TLS
  implicit           TLS from the first byte (the asyncio server's ssl
                     context). aiosmtpd only counts STARTTLS as TLS for
                     auth_require_tls, so here it is False: the whole
                     connection is TLS anyway
  auth-before-tls    misconfigured submission: auth_require_tls=False, so
                     AUTH is advertised (and accepted) before STARTTLS
  implicit-wrongname implicit, with a CA-signed certificate for
                     other.example only (wrongname.pem)
  no-tls             misconfigured submission: no tls_context at all, so
                     no STARTTLS

AUTH: PLAIN and LOGIN (aiosmtpd's built-in mechanisms) against one user
whose password is the first line of --password-file. Mail is accepted for
@smtp-probe.test recipients only (or from an authenticated client) and
thrown away. --ready is written once every listener is bound.
"""
import argparse
import asyncio
import hmac
import logging
import os
import signal
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

HOSTNAME = "mail.smtp-probe.test"
LOCAL_DOMAIN = "smtp-probe.test"


class Handler:
    """Accepts mail for the local test domain and discards it."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if not session.authenticated and not address.lower().endswith("@" + LOCAL_DOMAIN):
            return "554 5.7.1 relay access denied"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        return "250 2.0.0 accepted and discarded"


class Authenticator:
    """One user, one password (compared in constant time)."""

    def __init__(self, user, password):
        self.user = user.encode()
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and hmac.compare_digest(auth_data.login, self.user)
            and hmac.compare_digest(auth_data.password, self.password)
        )
        # handled=False: aiosmtpd itself answers a failure (535); the
        # default handled=True would leave the client waiting for a reply.
        return AuthResult(success=ok, handled=False)


def tls_context(certs, name):
    """A server context with the test CA's leaf NAME (NAME-chain.pem: leaf + CA)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(os.path.join(certs, name + "-chain.pem"), os.path.join(certs, name + ".key"))
    return ctx


def listener(profile, args, auth):
    """(SMTP keyword arguments, transport ssl context) for a profile."""
    common = dict(hostname=HOSTNAME, authenticator=auth, enable_SMTPUTF8=True)
    if profile == "relay":
        return dict(common, tls_context=tls_context(args.certs, "server")), None
    if profile == "submission":
        return dict(common, tls_context=tls_context(args.certs, "server"), require_starttls=True), None
    if profile == "auth-before-tls":
        return (
            dict(common, tls_context=tls_context(args.certs, "server"), require_starttls=True,
                 auth_require_tls=False),
            None,
        )
    if profile == "no-tls":
        return dict(common), None
    if profile in ("implicit", "implicit-wrongname"):
        cert = "wrongname" if profile == "implicit-wrongname" else "server"
        return dict(common, auth_require_tls=False), tls_context(args.certs, cert)
    raise SystemExit(f"aiosmtpd_server: unknown profile {profile!r}")


async def serve(args, specs):
    password = open(args.password_file, encoding="utf-8").readline().rstrip("\r\n")
    auth = Authenticator(args.user, password)
    loop = asyncio.get_running_loop()
    servers = []
    for spec in specs:
        where, _, profile = spec.partition("=")
        addr, _, port = where.rpartition(":")
        kwargs, transport_ssl = listener(profile, args, auth)
        handler = Handler()
        # One SMTP protocol object per connection, as aiosmtpd's Controller makes.
        servers.append(
            await loop.create_server(
                lambda kw=kwargs, h=handler: SMTP(h, loop=loop, **kw),
                host=addr, port=int(port), ssl=transport_ssl, reuse_address=True,
            )
        )
        logging.info("listening on %s:%s (%s)", addr, port, profile)
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set_result, None)
    with open(args.ready, "w", encoding="utf-8") as f:
        f.write(f"{os.getpid()}\n")
    await stop
    for s in servers:
        s.close()
        await s.wait_closed()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--certs", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password-file", required=True)
    p.add_argument("--ready", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("listen", nargs="+")
    args = p.parse_args()
    logging.basicConfig(filename=args.log, level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve(args, args.listen))
    return 0


if __name__ == "__main__":
    sys.exit(main())
