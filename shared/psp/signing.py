"""Sign webhook deliveries the way each PSP does, for the local stack, the demo and the benchmarks.

Production never signs anything; this exists so the demo and local tools can drive the real
function with authentic-looking traffic. Tests check these signers against the PSPs' own SDKs, and
verify with the SDKs as oracles rather than with these functions.

PayPal needs a certificate: :func:`paypal_test_pki` makes a throwaway CA and a leaf for
``messageverificationcerts.sandbox.paypal.com`` and writes them where the local certificate directory
(``PAYPAL_CERT_DIR``, honoured only on the emulators) serves them from.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.psp import adyen as adyen_mod
from shared.psp import braintree as braintree_mod
from shared.psp import paypal as paypal_mod


def stripe_header(body: bytes, secret: str, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    sig = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={sig}"


def adyen_sign(body: dict[str, Any], key_hex: str) -> dict[str, Any]:
    """The body with every item's ``additionalData.hmacSignature`` set."""
    out: dict[str, Any] = json.loads(json.dumps(body))
    for wrapper in out["notificationItems"]:
        item = wrapper["NotificationRequestItem"]
        item.setdefault("additionalData", {})["hmacSignature"] = adyen_mod.item_signature(item, key_hex)
    return out


def basic_auth(user_password: str) -> str:
    return "Basic " + base64.b64encode(user_password.encode()).decode()


def hex_hmac(body: bytes, secret: str) -> str:
    """GoCardless ``Webhook-Signature`` and Checkout.com ``Cko-Signature``."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def braintree_form(xml: str, public_key: str, private_key: str) -> bytes:
    payload = base64.encodebytes(xml.encode())
    sig = f"{public_key}|{braintree_mod.sign(private_key, payload)}"
    return urllib.parse.urlencode({"bt_signature": sig, "bt_payload": payload.decode()}).encode()


@dataclass(frozen=True)
class PayPalPki:
    key: Any  # RSAPrivateKey
    chain_pem: bytes  # leaf + CA
    root_pem: bytes
    cert_url: str

    def headers(self, body: bytes, webhook_id: str, transmission_id: str | None = None) -> dict[str, str]:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        tid = transmission_id or str(uuid.uuid4())
        ttime = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        sig = self.key.sign(
            paypal_mod.signed_message(tid, ttime, webhook_id, body), padding.PKCS1v15(), hashes.SHA256()
        )
        return {
            "PAYPAL-TRANSMISSION-ID": tid,
            "PAYPAL-TRANSMISSION-TIME": ttime,
            "PAYPAL-TRANSMISSION-SIG": base64.b64encode(sig).decode(),
            "PAYPAL-CERT-URL": self.cert_url,
            "PAYPAL-AUTH-ALGO": "SHA256withRSA",
        }


def paypal_test_pki(
    *,
    host: str = "api.sandbox.paypal.com",
    dns_name: str = "messageverificationcerts.sandbox.paypal.com",
    valid_from: dt.datetime | None = None,
    valid_days: int = 30,
    write_to: Path | None = None,
) -> PayPalPki:
    """A throwaway CA and leaf in PayPal's shape; optionally written into a local cert directory."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = valid_from or (dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Local Test Root CA (not trusted anywhere)")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, dns_name),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "PayPal, Inc. (test)"),
                ]
            )
        )
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=valid_days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    name = f"CERT-{uuid.uuid4().hex[:16]}"
    pki = PayPalPki(
        key=key,
        chain_pem=leaf.public_bytes(pem) + ca.public_bytes(pem),
        root_pem=ca.public_bytes(pem),
        cert_url=f"https://{host}{paypal_mod.CERT_PATH_PREFIX}{name}",
    )
    if write_to is not None:
        (write_to / "roots").mkdir(parents=True, exist_ok=True)
        (write_to / name).write_bytes(pki.chain_pem)
        (write_to / "roots" / f"{name}.pem").write_bytes(pki.root_pem)
    return pki
