"""Run one org's API over mutual TLS: uvicorn behind the admission listener."""

from __future__ import annotations

import logging
import resource
import ssl
from contextlib import suppress

import uvicorn
from cryptography import x509

from fabricml.network.identities import CAError, CertificateAuthority

from . import logs
from .admission import ConnectionLimits
from .app import create_app
from .auth import AuthError
from .context import ApiContext, api_port, open_context, tls_files
from .listener import Classify, GuardedServer
from .settings import ApiSettings
from .tls import server_context

log = logging.getLogger("fabricml.api")


def serve(settings: ApiSettings, limits: ConnectionLimits | None = None) -> None:
    logs.configure()
    context = open_context(settings)
    try:
        cert, key = tls_files(context.layout, context.org)
        if not cert.exists():
            raise ValueError(f"no TLS certificate for the API at {cert}; `fabricml network up` issues it")
        _revocation_list_ready(context)
        port = settings.port or api_port(context.org)
        config = uvicorn.Config(
            create_app(settings, context),
            host=settings.host,
            port=port,
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            timeout_keep_alive=15,
        )
        config.load()
        members = [context.layout.ca_cert(o) for o in context.topology.organizations]
        tls = server_context(cert, key, members)  # uvicorn's own TLS cannot ask for client certs
        _more_descriptors()
        log.info("serving %s's API on https://%s:%d (mutual TLS)", context.org.name, settings.host, port)
        GuardedServer(config, tls, _classifier(context), limits or ConnectionLimits()).run()
    finally:
        context.close()


def _classifier(context: ApiContext) -> Classify:
    """A connection's group and certificate key: member certificates only, and none the
    org's CA revoked (those, like connections without one, share the unauthenticated pool)."""
    authenticator = context.authenticator

    def classify(der: bytes | None) -> tuple[str, str] | None:
        if not der:
            return None
        pem = ssl.DER_cert_to_PEM_cert(der)  # as the app sees it, so that group_of's cache is shared
        cert = x509.load_der_x509_certificate(der)
        group = authenticator.group_of(pem)
        if group in ("unknown", "unreadable"):
            return None
        try:
            if group.startswith(f"{context.org.msp_id}/") and authenticator.is_revoked(cert):
                return None
        except AuthError:  # no usable revocation list: no certificate of this org is trusted now
            return None
        return group, pem

    return classify


def _revocation_list_ready(context: ApiContext) -> None:
    """A fresh network's CA has not published a revocation list yet, and without one the API
    refuses everyone (it fails closed): ask the CA for one."""
    if context.authenticator.crl_path.exists():
        return
    ca = CertificateAuthority(context.network.binaries, context.layout, context.org)
    try:
        ca._client("gencrl", "-u", ca.url, home=ca.registrar_home)  # the CA has no public call for it yet
    except CAError as exc:
        log.error("no revocation list, so every request is refused (503) until there is one: %s", exc)
        return
    log.info("asked %s for its first revocation list", context.org.ca_name)


def _more_descriptors() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
