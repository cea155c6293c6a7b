"""
Security profile 2: HTTP Basic auth over TLS. The listener is an ``ssl:``
endpoint string; nothing in ocppd's code is TLS-specific.
"""

from __future__ import annotations

import datetime
import json
import os
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet.defer import inlineCallbacks
from twisted.internet.ssl import Certificate
from twisted.trial.unittest import TestCase

from tests.integration.clients import connect
from tests.integration.daemon import start_daemon


def self_signed(directory: str) -> tuple[str, str, bytes]:
    """A certificate for ``localhost`` and its key as PEM files: their paths, and the PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = os.path.join(directory, "key.pem"), os.path.join(directory, "cert.pem")
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    with open(cert_path, "wb") as f:
        f.write(pem)
    return key_path, cert_path, pem


class SecurityProfile2Tests(TestCase):
    timeout = 30

    @inlineCallbacks
    def test_basic_auth_over_tls(self) -> Any:
        """The right key talks OCPP over TLS; a wrong key, or plain TCP, gets nothing."""
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        key_path, cert_path, pem = self_signed(directory)
        daemon = yield start_daemon(
            self,
            f"ocpp.listen=ssl:0:interface=127.0.0.1:privateKey={key_path}:certKey={cert_path}",
        )
        daemon.ocppctl("charger", "add", "CP-TLS", stdin="tls-key-0123456789\n")
        trust = Certificate.loadPEM(pem)

        client = yield connect(daemon.port, "CP-TLS", "tls-key-0123456789", tls_trust=trust)
        self.assertEqual(client.factory.negotiated, "ocpp1.6")
        client.send('[2,"h","Heartbeat",{}]')
        self.assertEqual(json.loads((yield client.messages.get()))[:2], [3, "h"])
        client.close()
        yield client.closed

        with self.assertRaises(ConnectionError):
            yield connect(daemon.port, "CP-TLS", "wrong-key", tls_trust=trust)
        with self.assertRaises(ConnectionError):  # plain WebSocket to a TLS port
            yield connect(daemon.port, "CP-TLS", "tls-key-0123456789")
        self.assertNotIn("CP-TLS", daemon.node.registry)
