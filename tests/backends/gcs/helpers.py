"""What the GCS tests share besides fixtures: the type of ``make_gcs``, and service-account
key files whose token endpoint is a loopback stand-in (the emulator checks no
credentials)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from moorage_gcs import GCSStorage

__all__ = ["MakeGCS", "service_account_file"]

#: Builds a GCSStorage on the emulator (see the ``make_gcs`` fixture).
MakeGCS = Callable[..., GCSStorage]


def service_account_file(folder: Path, token_uri: str) -> tuple[Path, str]:
    """A service-account key file (fresh RSA key) whose token endpoint is ``token_uri``;
    returns the path and the private key text."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "moorage-tests",
        "private_key_id": "0123456789abcdef",
        "private_key": pem,
        "client_email": "moorage@moorage-tests.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": token_uri,
    }
    path = folder / "service-account.json"
    path.write_text(json.dumps(info))
    return path, pem
