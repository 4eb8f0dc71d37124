"""One SoftHSM2 token per test process, made before the PKCS#11 module is loaded (SoftHSM reads its
token directory once, at C_Initialize)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from fabricml.gateway.pkcs11 import TokenKey

LIBRARY = Path("/usr/lib/softhsm/libsofthsm2.so")
PIN_ENV = "FABRICML_TEST_HSM_PIN"
INIT_TOKEN = ("softhsm2-util", "--init-token", "--free", "--label")


@dataclass(frozen=True)
class SoftToken:
    label: str
    pin: str
    directory: Path

    def key(self, label: str, key_id: bytes = b"") -> TokenKey:
        """A key reference in this token whose PIN comes from $FABRICML_TEST_HSM_PIN."""
        return TokenKey(LIBRARY, self.label, key_label=label, key_id=key_id, pin_env=PIN_ENV)


_token: SoftToken | None = None


def soft_token(tmp_path_factory: pytest.TempPathFactory) -> SoftToken:
    """The process's token (SOFTHSM2_CONF points at a temporary directory); the PIN is in $PIN_ENV."""
    global _token
    if _token is None:
        if not LIBRARY.is_file() or shutil.which("softhsm2-util") is None:
            pytest.fail(f"SoftHSM2 is not installed ({LIBRARY}); scripts/setup.sh installs Debian's softhsm2")
        directory = tmp_path_factory.mktemp("softhsm")
        (directory / "tokens").mkdir()
        conf = directory / "softhsm2.conf"
        conf.write_text(f"directories.tokendir = {directory / 'tokens'}\nobjectstore.backend = file\n")
        os.environ["SOFTHSM2_CONF"] = str(conf)
        token = SoftToken(f"fabricml-test-{secrets.token_hex(3)}", secrets.token_hex(8), directory)
        subprocess.run(
            [*INIT_TOKEN, token.label, "--pin", token.pin, "--so-pin", secrets.token_hex(8)],
            check=True,
            capture_output=True,
            timeout=60,
        )
        os.environ[PIN_ENV] = token.pin
        _token = token
    return _token
