"""A private CA and a server certificate for nginx on loopback, made fresh by the harness.

Every contender is told to trust that CA the way its users would tell it (``curl
--cacert``, ``wget --ca-certificate``, ``aria2c --ca-certificate``, an ``ssl.SSLContext``
for oec_async); nothing is installed into the system's trust store.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import attrs
import trustme

__all__ = ["TLSFiles", "make_certificates", "negotiated"]


@attrs.frozen
class TLSFiles:
    ca: Path  # the CA certificate the clients trust
    certificate: Path  # the server's chain, for nginx
    key: Path  # the server's private key, for nginx


def make_certificates(folder: Path) -> TLSFiles:
    """A new CA, and a certificate it signs for ``127.0.0.1`` and ``localhost``."""
    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="oec-async benchmarks")
    server = ca.issue_cert("127.0.0.1", "localhost")
    files = TLSFiles(
        ca=folder / "ca.pem", certificate=folder / "server.pem", key=folder / "server.key"
    )
    ca.cert_pem.write_to_path(str(files.ca))
    server.private_key_pem.write_to_path(str(files.key))
    with files.certificate.open("wb") as handle:
        for blob in server.cert_chain_pems:
            handle.write(blob.bytes())
    files.key.chmod(0o600)
    return files


def negotiated(port: int, ca: Path) -> str:
    """What a default client negotiates with the server, e.g. ``TLSv1.3 TLS_AES_256_GCM_SHA384``."""
    context = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        cipher = tls.cipher()
        return f"{tls.version()} {cipher[0] if cipher else 'unknown'}"
