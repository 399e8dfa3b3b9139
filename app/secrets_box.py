"""AES-256-GCM encryption of stored credentials, keyed from AUTOLOADER_SECRET_KEY."""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.errors import ConfigError

_PREFIX = "enc:v1:"


class SecretBox:
    def __init__(self, secret_key: str):
        self._aead = AESGCM(hashlib.sha256(("autoloader-credentials:" + secret_key).encode()).digest())

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(12)
        return _PREFIX + base64.urlsafe_b64encode(nonce + self._aead.encrypt(nonce, plaintext.encode(), None)).decode()

    def decrypt(self, token: str) -> str:
        if not token.startswith(_PREFIX):
            return token
        raw = base64.urlsafe_b64decode(token[len(_PREFIX) :])
        try:
            return self._aead.decrypt(raw[:12], raw[12:], None).decode()
        except InvalidTag:
            raise ConfigError(
                "A stored credential cannot be decrypted with the current secret key.",
                "Set AUTOLOADER_SECRET_KEY to the key used when the credential was saved, "
                "or enter the credential again.",
            ) from None

    @staticmethod
    def is_encrypted(value: str) -> bool:
        return value.startswith(_PREFIX)
