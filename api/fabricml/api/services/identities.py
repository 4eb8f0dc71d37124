"""Identities at the org's own Fabric CA: list, register, enroll (key kept here), revoke."""

from __future__ import annotations

import re
import secrets
import shutil
import threading

from fabricml.network.channelconfig import ChannelConfig
from fabricml.network.identities import CAError, CertificateAuthority, IdentitySpec, identity_specs
from fabricml.network.peercli import FabricCommandError

from ..context import ApiContext
from ..ledger import LedgerError
from ..schemas import EnrolledIdentity, IdentityEntry, RegisteredIdentity, RegisterIdentity, RevokedIdentity

# Channel config updates read, modify and write one config block: one at a time.
_config_lock = threading.Lock()


def reserved(context: ApiContext) -> set[str]:
    """Identities the network and this API run on; the API never re-enrolls or revokes them."""
    return {s.name for s in identity_specs(context.org)} | {"api", "caadmin", "registrar", "operator"}


def _ca(context: ApiContext) -> CertificateAuthority:
    return CertificateAuthority(context.network.binaries, context.layout, context.org, least_privilege=True)


# Fabric CA's own error codes (lib/caerrors/servererror.go), as its JSON answer carries them.
CA_DUPLICATE = {74, 66}  # identity already registered; certificate already revoked
CA_REFUSED_CREDENTIALS = {20, 21, 23, 24, 25, 70, 71, 73}  # authentication, authorization, revoked id
CA_NOT_FOUND = {8, 10, 30}  # certificate or identity to revoke not found
_CA_CODE = re.compile(r"Error Code: (\d+) - ")


def ca_error_code(exc: BaseException) -> int | None:
    """The Fabric CA's numeric error code behind a failed CA call, if it answered with one
    (fabric-ca-client relays it as "Error Code: <n> - <message>")."""
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    found = _CA_CODE.search(str(exc))
    return int(found.group(1)) if found else None


def _refused(exc: CAError | FabricCommandError) -> LedgerError:
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    code = ca_error_code(exc)
    if code in CA_DUPLICATE:
        return LedgerError(409, message)
    if code in CA_REFUSED_CREDENTIALS:
        return LedgerError(400, f"the CA refused the enrollment: {message}")
    if code in CA_NOT_FOUND:
        return LedgerError(404, message)
    return LedgerError(409, message)


def list_identities(context: ApiContext) -> list[IdentityEntry]:
    try:
        return [IdentityEntry.model_validate(i) for i in _ca(context).list_identities()]
    except CAError as exc:
        raise _refused(exc) from exc


def register(context: ApiContext, request: RegisterIdentity) -> RegisteredIdentity:
    if request.name in reserved(context):
        raise LedgerError(409, f"{request.name} is an identity the network itself uses")
    secret = secrets.token_urlsafe(18)
    try:
        _ca(context).register(IdentitySpec(request.name, request.type, request.role), secret=secret)
    except CAError as exc:
        raise _refused(exc) from exc
    return RegisteredIdentity(name=request.name, type=request.type, role=request.role or "", secret=secret)


def enroll(context: ApiContext, name: str, secret: str) -> EnrolledIdentity:
    """Enroll on this server: the key is generated and kept in the org's identities folder."""
    if name in reserved(context):
        raise LedgerError(409, f"{name} is an identity the network itself uses")
    target = context.layout.identity(context.org, name)
    if target.exists():
        # A second enrollment would write a second key beside the first (even when the CA refuses it).
        raise LedgerError(409, f"{name} is already enrolled on this server")
    try:
        _ca(context).enroll(IdentitySpec(name, "client"), secret=secret)
    except CAError as exc:
        shutil.rmtree(target, ignore_errors=True)
        raise _refused(exc) from exc
    return EnrolledIdentity(name=name, certificate=(target / "msp" / "signcerts" / "cert.pem").read_text())


def revoke(context: ApiContext, name: str, reason: str) -> RevokedIdentity:
    if name in reserved(context):
        raise LedgerError(409, f"{name} is an identity the network itself uses; revoke it with the CLI")
    ca = _ca(context)
    try:
        crl = ca.revoke(name, reason)
        with _config_lock:
            ChannelConfig(context.network.tools).set_revocation_list(context.org, crl)
    except (CAError, FabricCommandError) as exc:
        raise _refused(exc) from exc
    return RevokedIdentity(name=name, revoked=True, crlInChannel=True)
