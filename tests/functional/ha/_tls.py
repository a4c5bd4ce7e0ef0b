"""Certificates for the etcd-over-TLS tests, made in the test (``cryptography``): a CA, a
server certificate for 127.0.0.1/localhost, a client certificate for client-cert auth, and
a second, unrelated CA (the "wrong CA" an operator might point ``settings.ha.tls.ca`` at);
and, for rotations, more client certificates (``client_pair``): short-lived ones, or
signed by the wrong CA."""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    wrong_ca: Path
    ca_key: Path
    wrong_ca_key: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def _ca(common: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(_name(common))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    common: str,
    usage: x509.ObjectIdentifier,
    valid_for: datetime.timedelta = datetime.timedelta(days=1),
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + valid_for)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def make_tls_files(root: Path) -> TlsFiles:
    root.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _ca("poolkeeper test CA")
    server_key, server_cert = _leaf(ca_key, ca_cert, "etcd", ExtendedKeyUsageOID.SERVER_AUTH)
    client_key, client_cert = _leaf(ca_key, ca_cert, "poolkeeper", ExtendedKeyUsageOID.CLIENT_AUTH)
    wrong_key, wrong = _ca("some other CA")
    files = TlsFiles(
        ca=root / "ca.pem",
        server_cert=root / "server.pem",
        server_key=root / "server-key.pem",
        client_cert=root / "client.pem",
        client_key=root / "client-key.pem",
        wrong_ca=root / "wrong-ca.pem",
        ca_key=root / "ca-key.pem",
        wrong_ca_key=root / "wrong-ca-key.pem",
    )
    pem = serialization.Encoding.PEM
    files.ca.write_bytes(ca_cert.public_bytes(pem))
    files.server_cert.write_bytes(server_cert.public_bytes(pem))
    files.client_cert.write_bytes(client_cert.public_bytes(pem))
    files.wrong_ca.write_bytes(wrong.public_bytes(pem))
    _write_key(files.server_key, server_key)
    _write_key(files.client_key, client_key)
    _write_key(files.ca_key, ca_key)
    _write_key(files.wrong_ca_key, wrong_key)
    return files


def client_pair(
    files: TlsFiles, seconds: float = 86400, *, wrong_ca: bool = False
) -> tuple[bytes, bytes, datetime.datetime]:
    """A new client certificate and key (PEM) valid ``seconds`` from now, signed by the
    test CA (or by the wrong one); and when it expires."""
    pem = serialization.Encoding.PEM
    ca_pem, key_pem = (files.wrong_ca, files.wrong_ca_key) if wrong_ca else (files.ca, files.ca_key)
    ca_cert = x509.load_pem_x509_certificate(ca_pem.read_bytes())
    ca_key = serialization.load_pem_private_key(key_pem.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key, cert = _leaf(
        ca_key,
        ca_cert,
        "poolkeeper",
        ExtendedKeyUsageOID.CLIENT_AUTH,
        datetime.timedelta(seconds=seconds),
    )
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(pem), key_bytes, cert.not_valid_after_utc
