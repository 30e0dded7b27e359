"""A throwaway PKI for a loopback control plane: one CA, serving certificates, the service-account key."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import NameOID

_DAY = dt.timedelta(days=1)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class Pki:
    """Files under `root`: ca.crt/ca.key, <name>.crt/<name>.key, sa.key/sa.pub."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.ca_cert_path, self.ca_key_path = root / "ca.crt", root / "ca.key"
        if not self.ca_cert_path.exists():
            key = _key()
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "slow-injection-test-ca")])
            now = dt.datetime.now(dt.UTC)
            cert = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - _DAY)
                .not_valid_after(now + 365 * _DAY)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
                .sign(key, hashes.SHA256())
            )
            self.ca_key_path.write_bytes(_pem_key(key))
            self.ca_cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def serving(self, name: str, hosts: list[str]) -> tuple[Path, Path]:
        """A server certificate for `hosts` (DNS names or IPs), signed by the CA."""
        crt, key_path = self.root / f"{name}.crt", self.root / f"{name}.key"
        if crt.exists():
            return crt, key_path
        ca_key = serialization.load_pem_private_key(self.ca_key_path.read_bytes(), None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)  # __init__ wrote it (_key)
        ca = x509.load_pem_x509_certificate(self.ca_cert_path.read_bytes())
        key = _key()
        sans: list[x509.GeneralName] = []
        for host in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _DAY)
            .not_valid_after(now + 365 * _DAY)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        key_path.write_bytes(_pem_key(key))
        crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return crt, key_path

    def service_account_key(self) -> tuple[Path, Path]:
        """The key pair that signs service-account tokens (RSA: what the API server expects by default)."""
        private, public = self.root / "sa.key", self.root / "sa.pub"
        if not private.exists():
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            private.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.TraditionalOpenSSL,
                    serialization.NoEncryption(),
                )
            )
            public.write_bytes(
                key.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )
        return private, public
