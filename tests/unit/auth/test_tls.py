"""Certificates, TLS contexts and RFC 5929 tls-server-end-point; the ``wmh serve`` TLS options."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from harness.auth.errors import AuthError
from harness.auth.tls import (
    CBT_PREFIX,
    ServerTls,
    channel_bindings,
    client_ssl_context,
    generate_self_signed,
    server_end_point_hash,
)
from harness.cli import build_parser, cmd_serve


def test_generated_certificate_names_loopback_and_serves_tls(tmp_path: Path) -> None:
    tls = generate_self_signed()
    cert = x509.load_pem_x509_certificate(tls.cert_pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert isinstance(tls.ssl_context(), ssl.SSLContext)
    cert_file, key_file = tls.write(tmp_path)
    assert (key_file.stat().st_mode & 0o777) == 0o600
    assert ServerTls.from_files(cert_file, key_file) == tls
    assert "key_pem" not in repr(tls)


def test_from_files_errors_are_typed(tmp_path: Path) -> None:
    with pytest.raises(AuthError, match="cannot load certificate"):
        ServerTls.from_files(tmp_path / "nope.pem", tmp_path / "nope.key")
    (tmp_path / "bad.pem").write_text("not a certificate")
    (tmp_path / "bad.key").write_text("x")
    with pytest.raises(AuthError):
        ServerTls.from_files(tmp_path / "bad.pem", tmp_path / "bad.key")


@pytest.mark.spec("RFC 5929 4.1")
def test_end_point_hash_uses_the_signature_hash_or_sha256() -> None:
    der = generate_self_signed().cert_der
    assert server_end_point_hash(der) == hashlib.sha256(der).digest()     # ecdsa-with-SHA256
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "h")])
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1)))
    sha384 = builder.sign(key, hashes.SHA384()).public_bytes(serialization.Encoding.DER)
    assert server_end_point_hash(sha384) == hashlib.sha384(sha384).digest()
    bindings = channel_bindings(der)
    assert bindings.application_data == CBT_PREFIX + hashlib.sha256(der).digest()


def test_client_contexts(tmp_path: Path) -> None:
    assert client_ssl_context(True).verify_mode == ssl.CERT_REQUIRED
    off = client_ssl_context(False)
    assert off.verify_mode == ssl.CERT_NONE and not off.check_hostname
    ca = tmp_path / "ca.pem"
    ca.write_bytes(generate_self_signed().cert_pem)
    assert client_ssl_context(str(ca)).verify_mode == ssl.CERT_REQUIRED
    with pytest.raises(AuthError, match="CA file"):
        client_ssl_context(str(tmp_path / "missing.pem"))


def test_serve_options_parse_and_check_cert_key_pairs() -> None:
    args = build_parser().parse_args(["serve", "--https", "--no-basic", "--no-allow-unencrypted",
                                      "--cbt-hardening", "Strict", "--port", "0"])
    assert args.https and not args.basic and args.negotiate and not args.allow_unencrypted
    assert args.cbt_hardening == "Strict"
    lonely = build_parser().parse_args(["serve", "--cert", "c.pem"])
    with pytest.raises(SystemExit, match="--cert and --key go together"):
        cmd_serve(lonely)
