"""AES-256-GCM for data at rest, with a key id in every blob so keys can be rotated.

DATA_KEYS is "id:base64key[,id:base64key...]": the first key encrypts, every key decrypts.
Blob layout: b"<id>$" + 12-byte nonce + ciphertext-with-tag. The associated data binds a blob to
its purpose (e.g. b"id-copy:42"), so a blob copied to another row does not decrypt.
"""
from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class DataKeyError(ValueError):
    """The configured keys are malformed, or a blob names an unknown key."""


class Keyring:
    def __init__(self, spec: str) -> None:
        self.keys: dict[str, AESGCM] = {}
        self.current: str | None = None
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key_id, _, b64 = part.partition(":")
            if not key_id.isalnum() or not b64:
                raise DataKeyError("DATA_KEYS entries look like id:base64key")
            try:
                raw = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
            except ValueError:
                raise DataKeyError(f"data key {key_id} is not valid base64") from None
            if len(raw) != 32:
                raise DataKeyError(f"data key {key_id} must be 32 bytes")
            self.keys[key_id] = AESGCM(raw)
            self.current = self.current or key_id
        if self.current is None:
            raise DataKeyError("DATA_KEYS holds no key")

    def encrypt(self, plaintext: bytes, context: bytes) -> bytes:
        nonce = os.urandom(12)
        sealed = self.keys[self.current].encrypt(nonce, plaintext, context)
        return self.current.encode() + b"$" + nonce + sealed

    def decrypt(self, blob: bytes, context: bytes) -> bytes:
        key_id, sep, rest = blob.partition(b"$")
        aes = self.keys.get(key_id.decode(errors="replace")) if sep else None
        if aes is None:
            raise DataKeyError("the blob was encrypted with a key that is not configured")
        return aes.decrypt(rest[:12], rest[12:], context)

    def key_id_of(self, blob: bytes) -> str:
        return blob.partition(b"$")[0].decode()


def keyring() -> Keyring:
    """The app's keyring (built once per app from DATA_KEYS)."""
    from flask import current_app

    ring = current_app.extensions.get("portal_keyring")
    if ring is None:
        ring = current_app.extensions["portal_keyring"] = Keyring(current_app.config["DATA_KEYS"])
    return ring
