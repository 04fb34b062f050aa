"""Ed25519 signatures over request receipts, so a receipt can be shown to be the portal's own.

The private key comes from SIGNING_KEY (base64 of 32 raw bytes); development generates one in
instance/. The signature covers a canonical JSON of the receipt's fields.
"""
from __future__ import annotations

import base64
import json

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (Ed25519PrivateKey,
                                                               Ed25519PublicKey)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def canonical(payload: dict) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def load_private_key(b64: str) -> Ed25519PrivateKey:
    raw = base64.b64decode(b64 + "=" * (-len(b64) % 4), validate=False)
    if len(raw) != 32:
        raise ValueError("SIGNING_KEY must be 32 bytes, base64-encoded")
    return Ed25519PrivateKey.from_private_bytes(raw)


def new_private_key_b64() -> str:
    from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return base64.b64encode(raw).decode()


def sign(key: Ed25519PrivateKey, payload: dict) -> str:
    return base64.b64encode(key.sign(canonical(payload))).decode()


def verify(public_key: Ed25519PublicKey, payload: dict, signature_b64: str) -> bool:
    try:
        public_key.verify(base64.b64decode(signature_b64), canonical(payload))
        return True
    except (InvalidSignature, ValueError):
        return False


def public_key_b64(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()
