"""TLS for the WS-Man HTTPS listener and client, and ``tls-server-end-point`` channel bindings.

* :func:`generate_self_signed` makes the listener certificate ``wmh serve --https`` uses when no
  ``--cert``/``--key`` is given: self-signed, serverAuth, SAN ``127.0.0.1`` and ``localhost``
  (MS-WSMV 2.1: a WinRM HTTPS listener needs a certificate whose subject matches the host name).
* :func:`server_end_point_hash` is RFC 5929 4.1: the hash of the server certificate with the
  certificate's signature hash algorithm, SHA-256 when that is MD5 or SHA-1.
* :func:`channel_bindings` wraps it as the application data ``tls-server-end-point:<hash>`` of a
  ``gss_channel_bindings_struct`` (RFC 5929 4; RFC 5056), what Windows passes to NTLM/Kerberos.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from spnego.channel_bindings import GssChannelBindings

from harness.auth.errors import AuthError

CBT_PREFIX = b"tls-server-end-point:"


@dataclass(frozen=True)
class ServerTls:
    """A listener certificate and key (PEM)."""

    cert_pem: bytes
    key_pem: bytes = field(repr=False)

    @property
    def cert_der(self) -> bytes:
        return x509.load_pem_x509_certificate(self.cert_pem).public_bytes(serialization.Encoding.DER)

    @classmethod
    def from_files(cls, cert: Path, key: Path) -> ServerTls:
        try:
            tls = cls(cert.read_bytes(), key.read_bytes())
            x509.load_pem_x509_certificate(tls.cert_pem)
        except (OSError, ValueError) as exc:
            raise AuthError(f"cannot load certificate {cert} / key {key}: {exc}") from exc
        return tls

    def write(self, directory: Path) -> tuple[Path, Path]:
        """Write ``cert.pem`` (also usable as a CA file, it is self-signed) and a 0600 ``key.pem``."""
        cert, key = directory / "cert.pem", directory / "key.pem"
        cert.write_bytes(self.cert_pem)
        key.touch(mode=0o600)
        key.write_bytes(self.key_pem)
        return cert, key

    def ssl_context(self) -> ssl.SSLContext:
        """Server-side TLS context (TLS 1.2+) holding this certificate."""
        import os
        import tempfile

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # load_cert_chain only reads files: use a private directory removed right after loading
        with tempfile.TemporaryDirectory(prefix="wmh-tls-") as tmp:
            cert, key = self.write(Path(tmp))
            context.load_cert_chain(cert, key)
            os.unlink(key)
        return context


def generate_self_signed(hosts: tuple[str, ...] = ("localhost", "127.0.0.1"), *,
                         days: int = 30) -> ServerTls:
    """A fresh self-signed ECDSA P-256 / SHA-256 certificate for ``hosts`` (DNS names and IP addresses)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0] if hosts else "localhost")])
    alt_names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False, key_agreement=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return ServerTls(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption()),
    )


def client_ssl_context(verify: bool | str) -> ssl.SSLContext:
    """Client TLS context: ``True`` system trust, a path = that CA file, ``False`` = no verification."""
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if isinstance(verify, str):
        try:
            return ssl.create_default_context(cafile=verify)
        except (OSError, ssl.SSLError) as exc:
            raise AuthError(f"cannot load CA file {verify}: {exc}") from exc
    return ssl.create_default_context()


def server_end_point_hash(cert_der: bytes) -> bytes:
    """RFC 5929 4.1 certificate hash for ``tls-server-end-point``."""
    cert = x509.load_der_x509_certificate(cert_der)
    algorithm: hashes.HashAlgorithm | None
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        algorithm = None
    if algorithm is None or algorithm.name in ("md5", "sha1"):
        algorithm = hashes.SHA256()
    digest = hashes.Hash(algorithm)
    digest.update(cert_der)
    return digest.finalize()


def channel_bindings(cert_der: bytes) -> GssChannelBindings:
    """The channel bindings both sides feed into NTLM/Negotiate over HTTPS (RFC 5929 4, MS-NLMP 3.1.5.1.2)."""
    return GssChannelBindings(application_data=CBT_PREFIX + server_end_point_hash(cert_der))
