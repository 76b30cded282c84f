"""Throwaway TLS certificates made with the ``openssl`` command line, for tests.

A CA valid for a day, a server certificate it signed for ``127.0.0.1``/``localhost``,
and a client certificate (for mutual TLS).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple

__all__ = ["Certificates", "make_certificates"]


class Certificates(NamedTuple):
    ca: Path
    server: Path
    server_key: Path
    client: Path
    client_key: Path


_OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = IP:127.0.0.1,DNS:localhost
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""
_NEW_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def make_certificates(directory: Path) -> Certificates | None:
    """Make a CA valid for a day, and a server and a client certificate it signed.

    The files go in ``directory``; ``None`` when there is no ``openssl`` command line.
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    config = directory / "openssl.cnf"
    config.write_text(_OPENSSL_CONFIG)

    def run(*args: str | Path) -> None:
        subprocess.run([openssl, *map(str, args)], check=True, capture_output=True)

    ca, ca_key = directory / "ca.pem", directory / "ca-key.pem"
    request: tuple[str | Path, ...] = ("req", "-config", config, *_NEW_KEY)
    run(*request, "-x509", "-keyout", ca_key, "-out", ca, "-subj", "/CN=Interlock test CA",
        "-days", "1", "-extensions", "ca")  # fmt: skip
    for serial, role in enumerate(("server", "client"), start=2):
        csr = directory / f"{role}.csr"
        run(*request, "-new", "-keyout", directory / f"{role}-key.pem", "-out", csr,
            "-subj", f"/CN=interlock-test-{role}")  # fmt: skip
        run("x509", "-req", "-in", csr, "-out", directory / f"{role}.pem", "-days", "1",
            "-CA", ca, "-CAkey", ca_key, "-set_serial", str(serial),
            "-extfile", config, "-extensions", role)  # fmt: skip
    return Certificates(
        ca=ca,
        server=directory / "server.pem",
        server_key=directory / "server-key.pem",
        client=directory / "client.pem",
        client_key=directory / "client-key.pem",
    )
