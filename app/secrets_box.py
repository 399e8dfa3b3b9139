"""AES-256-GCM encryption of stored credentials, keyed from AUTOLOADER_SECRET_KEY."""

from __future__ import annotations

import base64
import hashlib
import os
from typing import TYPE_CHECKING

from core.errors import ConfigError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_PREFIX = "enc:v1:"


class SecretBox:
    def __init__(self, secret_key: str):
        self._key = hashlib.sha256(("autoloader-credentials:" + secret_key).encode()).digest()
        self._cipher: AESGCM | None = None

    @property
    def _aead(self) -> AESGCM:
        """The cipher, made on first use: most runs read no credential, and `autoloader run` need not import it."""
        if self._cipher is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            self._cipher = AESGCM(self._key)
        return self._cipher

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(12)
        return _PREFIX + base64.urlsafe_b64encode(nonce + self._aead.encrypt(nonce, plaintext.encode(), None)).decode()

    def decrypt(self, token: str) -> str:
        if not token.startswith(_PREFIX):
            return token
        from cryptography.exceptions import InvalidTag

        raw = base64.urlsafe_b64decode(token[len(_PREFIX) :])
        try:
            return self._aead.decrypt(raw[:12], raw[12:], None).decode()
        except InvalidTag:
            raise ConfigError(
                "A stored credential cannot be decrypted with the current secret key.",
                "Set AUTOLOADER_SECRET_KEY to the key used when the credential was saved, "
                "or enter the credential again; after `autoloader secrets rotate`, restart the servers so they use "
                "the new key.",
            ) from None

    @staticmethod
    def is_encrypted(value: str) -> bool:
        return value.startswith(_PREFIX)
