"""Making a cluster's CA and node certificates (``manta cert``), with ``cryptography``.

Keys are ECDSA P-256 (small and fast to handshake); files are PEM, keys written 0600.
A node certificate names the IP addresses and DNS names peers dial it by, and is good for
both ends of a connection (server and client auth), as every Manta process is both.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from typing import Any

CA_CERT, CA_KEY = "ca.crt", "ca.key"
NODE_CERT, NODE_KEY = "node.crt", "node.key"


class CertError(ValueError):
    """Certificates cannot be made as asked (a bad address, a CA that does not load)."""


@dataclass(frozen=True)
class Written:
    cert: str
    key: str


def _crypto() -> Any:
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError:
        raise CertError(
            "making certificates needs the cryptography package: pip install 'manta-ray[tls]'"
        ) from None
    return x509, hashes, serialization, ec, ExtendedKeyUsageOID, NameOID


def _write(path: str, data: bytes, private: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    if private:
        os.chmod(path, 0o600)  # an existing file keeps its mode through O_TRUNC


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def create_ca(out_dir: str, name: str = "Manta cluster CA", days: int = 3650) -> Written:
    x509, hashes, serialization, ec, _, NameOID = _crypto()
    os.makedirs(out_dir, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    written = Written(os.path.join(out_dir, CA_CERT), os.path.join(out_dir, CA_KEY))
    _write(written.cert, cert.public_bytes(serialization.Encoding.PEM), private=False)
    _write(written.key, _key_pem(key, serialization), private=True)
    return written


def _key_pem(key: Any, serialization: Any) -> bytes:
    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def create_node(
    ca_cert: str, ca_key: str, ips: list[str], dns: list[str], out_dir: str, days: int = 825
) -> Written:
    """A certificate for the addresses ``ips`` and names ``dns``, signed by the CA."""
    x509, hashes, serialization, ec, ExtendedKeyUsageOID, NameOID = _crypto()
    if not ips and not dns:
        raise CertError("name at least one --ip or --dns the node is reached by")
    try:
        addresses = [ipaddress.ip_address(ip) for ip in ips]
    except ValueError as e:
        raise CertError(f"bad --ip: {e}") from None
    try:
        with open(ca_cert, "rb") as f:
            issuer = x509.load_pem_x509_certificate(f.read())
        with open(ca_key, "rb") as f:
            signer = serialization.load_pem_private_key(f.read(), password=None)
    except (OSError, ValueError, TypeError) as e:
        raise CertError(f"cannot load the CA ({ca_cert}, {ca_key}): {e}") from None
    os.makedirs(out_dir, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName(n) for n in dns] + [x509.IPAddress(a) for a in addresses]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, (dns or ips)[0])]))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .sign(signer, hashes.SHA256())
    )
    written = Written(os.path.join(out_dir, NODE_CERT), os.path.join(out_dir, NODE_KEY))
    _write(written.cert, cert.public_bytes(serialization.Encoding.PEM), private=False)
    _write(written.key, _key_pem(key, serialization), private=True)
    return written
