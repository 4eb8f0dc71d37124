"""Run one org's API over mutual TLS with uvicorn."""

from __future__ import annotations

import logging

import uvicorn

from . import logs
from .app import create_app
from .context import api_port, open_context, tls_files
from .settings import ApiSettings
from .tls import MutualTLSProtocol, server_context

log = logging.getLogger("fabricml.api")


def serve(settings: ApiSettings) -> None:
    logs.configure()
    context = open_context(settings)
    try:
        cert, key = tls_files(context.layout, context.org)
        if not cert.exists():
            raise ValueError(f"no TLS certificate for the API at {cert}; `fabricml network up` issues it")
        port = settings.port or api_port(context.org)
        config = uvicorn.Config(
            create_app(settings, context),
            host=settings.host,
            port=port,
            http=MutualTLSProtocol,
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            limit_concurrency=512,
            timeout_keep_alive=15,
        )
        config.load()
        members = [context.layout.ca_cert(o) for o in context.topology.organizations]
        config.ssl = server_context(cert, key, members)  # uvicorn's own TLS cannot ask for client certs
        log.info("serving %s's API on https://%s:%d (mutual TLS)", context.org.name, settings.host, port)
        uvicorn.Server(config).run()
    finally:
        context.close()
