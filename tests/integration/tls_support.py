"""A certificate authority made at test time, for the local HTTPS servers of the tests (video servers, webhook
receivers) and for SSL_CERT_FILE, the authorities the code under test trusts."""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import ssl
import uuid
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclasses.dataclass(frozen=True)
class CertificateAuthority:
    """An authority made at test time: its certificate at `path` (for SSL_CERT_FILE) and TLS contexts of servers with
    certificates it signed."""

    folder: Path
    key: ec.EllipticCurvePrivateKey
    name: x509.Name

    @property
    def path(self) -> Path:
        return self.folder / "authority.pem"

    @classmethod
    def made(cls, folder: Path, common_name: str = "ClassPulse test authority") -> CertificateAuthority:
        folder.mkdir(parents=True, exist_ok=True)
        authority = cls(folder, ec.generate_private_key(ec.SECP256R1()), x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        certificate = _signed(authority, authority.name, authority.key.public_key(), x509.BasicConstraints(ca=True, path_length=0))
        authority.path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        return authority

    def server_tls(self, *names: str) -> ssl.SSLContext:
        """A server's context, its certificate for `names` (host names or IP addresses)."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
        certificate = _signed(self, subject, key.public_key(), x509.BasicConstraints(ca=False, path_length=None), names)
        stem = self.folder / f"{names[0]}-{uuid.uuid4().hex[:6]}"
        stem.with_suffix(".pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        stem.with_suffix(".key").write_bytes(
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(stem.with_suffix(".pem"), stem.with_suffix(".key"))
        return tls


def _signed(
    authority: CertificateAuthority, subject: x509.Name, public_key: ec.EllipticCurvePublicKey,
    constraints: x509.BasicConstraints, names: tuple[str, ...] = (),
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(authority.name).public_key(public_key)
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1)).add_extension(constraints, critical=True)
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName([_general_name(name) for name in names]), critical=False)
    return builder.sign(authority.key, hashes.SHA256())


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)
