"""How each kind of source is reached: its credential choices and fields, and the fields kept only for that kind.

Credentials are saved only while they are used. Choosing another credential type or another kind of source sets
the unused values aside (on this page only), and they come back if the user returns to that choice; so no unused
secret is stored, and no field of one kind (an S3 region, an SFTP host key) is saved with another. Secrets are
never sent to the browser: their widgets show empty, and an empty field keeps the stored secret.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nicegui import ui

from app.pages.wizard.draft import OPTIONAL_TEXT, SpecDraft, secret_codec
from app.pages.wizard.fields import FormFields

CREDENTIAL_CHOICES: dict[str, dict[str, str]] = {
    "s3": {"ambient": "Ambient identity (IAM role, environment)", "access_key": "Access keys"},
    "azure_blob": {
        "connection_string": "Connection string",
        "account_key": "Account key",
        "sas": "SAS token",
        "ambient": "Ambient identity (managed identity, environment, Azure CLI)",
    },
    "gcs": {
        "service_account": "Service account key (JSON)",
        "ambient": "Ambient identity (workload identity, environment)",
        "anonymous": "Anonymous (emulators only)",
    },
    "sftp": {"password": "User name and password", "private_key": "User name and private key"},
    "local": {},
}
"""The credential types each kind of source offers; the first is where a newly chosen kind starts, except S3,
which starts at ambient identity as the spec's default does."""
CREDENTIAL_FIELDS: dict[str, tuple[str, ...]] = {
    "access_key": ("access_key_id", "secret_access_key", "session_token"),
    "connection_string": ("connection_string",),
    "account_key": ("account_key",),
    "sas": ("sas_token",),
    "service_account": ("service_account_json",),
    "password": ("username", "password"),
    "private_key": ("username", "private_key", "password"),
}
"""The fields each credential type uses (`password` is the private key's passphrase for `private_key`)."""
ALL_CREDENTIAL_FIELDS = tuple(dict.fromkeys(f for fields in CREDENTIAL_FIELDS.values() for f in fields))
SHARED_FIELDS = ("username",)
"""Fields that keep their meaning across credential types (the SFTP user name of a password or of a key)."""
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "s3": ("region", "endpoint_url"),
    "azure_blob": ("endpoint_url",),
    "gcs": ("endpoint_url",),
    "sftp": ("host_key_fingerprint",),
    "local": (),
}
"""Source fields that belong to one kind (an S3 endpoint is not an Azure emulator's)."""
ENDPOINT_LABELS = {
    "s3": "Endpoint URL (S3-compatible)",
    "azure_blob": "Endpoint URL (optional: Azurite or Azure Stack)",
    "gcs": "Endpoint URL (optional: an emulator such as fake-gcs-server)",
}
MASKED_TEXTAREA = "-webkit-text-security: disc; font-family: monospace"
"""A pasted key shows as dots, as a password field's text does (browsers without the property show it plainly)."""


def default_type(kind: str) -> str:
    if kind == "s3":
        return "ambient"
    return next(iter(CREDENTIAL_CHOICES.get(kind) or {"ambient": ""}))


class CredentialMemory:
    """Keeps the draft's credentials and kind-specific fields to what the chosen kind and type use."""

    def __init__(self, draft: SpecDraft) -> None:
        self.draft = draft
        self.kind: str = draft.get("source.type")
        self.credential_type: str = draft.get("source.credentials.type")
        self.type_of_kind: dict[str, str] = {self.kind: self.credential_type}
        self.set_aside: dict[tuple[str, str], Any] = {}
        """(credential type or kind, field) → value while unused; shared fields under ("*", field)."""

    def follow(self) -> list[str]:
        """Bring the draft in line with its kind and credential type; returns the changed fields' paths."""
        kind = self.draft.get("source.type")
        credentials = self.draft.get("source.credentials")
        if kind != self.kind:
            self._switch_kind_fields(self.kind, kind)
            self.type_of_kind[self.kind] = self.credential_type
            credentials["type"] = self.type_of_kind.get(kind) or default_type(kind)
            self.kind = kind
        elif credentials["type"] not in CREDENTIAL_CHOICES.get(kind, {}):
            credentials["type"] = default_type(kind)
        self._switch_credentials(credentials, credentials["type"])
        return ["source.credentials.type", *(f"source.credentials.{f}" for f in ALL_CREDENTIAL_FIELDS), *self._paths()]

    def _switch_credentials(self, credentials: dict[str, Any], new_type: str) -> None:
        used = CREDENTIAL_FIELDS.get(new_type, ())
        for field in ALL_CREDENTIAL_FIELDS:
            if credentials.get(field) is not None and field not in used:
                self.set_aside[self._key(self.credential_type, field)] = credentials[field]
                credentials[field] = None
        for field in used:
            kept = self.set_aside.pop(self._key(new_type, field), None)
            if credentials.get(field) is None:
                credentials[field] = kept
        self.credential_type = new_type

    def _switch_kind_fields(self, old: str, new: str) -> None:
        source = self.draft.get("source")
        for field in KIND_FIELDS.get(old, ()):
            if source.get(field) is not None:
                self.set_aside[(old, field)] = source[field]
                source[field] = None
        for field in KIND_FIELDS.get(new, ()):
            kept = self.set_aside.pop((new, field), None)
            if source.get(field) is None:
                source[field] = kept

    @staticmethod
    def _key(credential_type: str, field: str) -> tuple[str, str]:
        return ("*", field) if field in SHARED_FIELDS else (credential_type, field)

    @staticmethod
    def _paths() -> list[str]:
        return [f"source.{f}" for f in dict.fromkeys(f for fields in KIND_FIELDS.values() for f in fields)]


class CredentialFields:
    """The credential choice and the fields of the chosen type, for every kind of source."""

    def __init__(self, fields: FormFields) -> None:
        self.fields = fields
        self.draft = fields.draft
        self.stored = {f: self.draft.get(f"source.credentials.{f}") for f in ALL_CREDENTIAL_FIELDS}
        """The secrets as loaded (an edited ingestion's): an empty secret field keeps them."""
        self.choice: ui.radio | None = None

    def render(self, on_change: Callable[[], None]) -> None:
        kind = self.draft.get("source.type")
        self.choice = ui.radio(dict(CREDENTIAL_CHOICES.get(kind) or {"ambient": "Ambient"})).props("inline")
        self.choice.props('aria-label="Credentials"')
        self.fields.bind(self.choice, "source.credentials.type", after=on_change)
        self.fields.when(self.choice, lambda: bool(CREDENTIAL_CHOICES.get(self.draft.get("source.type"))))
        with self._shown_for("access_key"):
            with ui.column().classes("flex-1"):
                self.fields.input("Access Key ID", "source.credentials.access_key_id", OPTIONAL_TEXT, lockable=False)
            with ui.column().classes("flex-1"):
                self._secret("Secret Access Key", "secret_access_key")
        with self._shown_for("connection_string"):
            self._secret("Connection string", "connection_string")
        with self._shown_for("account_key"):
            self._secret("Account key", "account_key")
        with self._shown_for("sas"):
            self._secret("SAS token", "sas_token")
        with self._shown_for("service_account"):
            self._secret_text("Service account key (JSON)", "service_account_json")
        with self._shown_for("password", "private_key"):
            self.fields.input("User name", "source.credentials.username", OPTIONAL_TEXT, lockable=False)
        with self._shown_for("password"):
            self._secret("Password", "password")
        with self._shown_for("private_key"):
            self._secret_text("Private key (OpenSSH or PEM)", "private_key")
            self._secret("Passphrase (optional)", "password", marker="source.credentials.passphrase")

    def show_choices(self) -> None:
        """The choices of the kind now selected (the draft's type is already one of them)."""
        if self.choice is not None:
            self.fields.set_options(self.choice, dict(CREDENTIAL_CHOICES.get(self.draft.get("source.type")) or {}))

    def _shown_for(self, *types: str) -> Any:
        """A container shown while the credential type is one of `types` (S3's two keys side by side)."""
        element = ui.row().classes("no-wrap gap-3") if "access_key" in types else ui.column().classes("gap-2")
        element.classes("w-full")
        return self.fields.when(element, lambda: self.draft.get("source.credentials.type") in types)

    def _secret(self, label: str, field: str, marker: str | None = None) -> ui.input:
        stored = self.stored[field]
        element = ui.input(
            label,
            password=True,
            password_toggle_button=False,
            placeholder="unchanged (stored encrypted)" if stored else "",
        )
        element.props("outlined autocomplete=off").classes("w-full")
        path = f"source.credentials.{field}"
        self.fields.bind(element, path, secret_codec(stored), marked=marker is None)
        if marker is not None:
            element.mark(marker).props(f"data-testid={marker}")
        return element

    def _secret_text(self, label: str, field: str) -> ui.textarea:
        stored = self.stored[field]
        element = ui.textarea(label, placeholder="unchanged (stored encrypted)" if stored else "Paste it here")
        element.props("outlined autogrow spellcheck=false autocomplete=off").classes("w-full")
        element.style(MASKED_TEXTAREA)
        self.fields.bind(element, f"source.credentials.{field}", secret_codec(stored))
        return element
