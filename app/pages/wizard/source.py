"""Step 1, Source: the name, where the files are, how to reach them, and Test Connection."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from nicegui import ui

from app.pages.wizard import actions
from app.pages.wizard.draft import OPTIONAL_TEXT, WHOLE_NUMBER, secret_codec
from app.pages.wizard.fields import WizardState, lock_banner, section
from app.pages.wizard.partitions import PartitionFolders
from app.pages.wizard.validation import engine_problems, validate_parts
from components.feedback import error_text
from components.formatting import human_bytes
from components.keyboard import mark_checked, radio_choice, radio_group
from core.config import MAX_FILE_AGE_SECONDS
from core.errors import AutoloaderError

SOURCE_CARDS = (
    ("s3", "cloud", "AWS S3", "Amazon Simple Storage", True),
    ("azure_blob", "cloud_queue", "Azure Blob", "Azure Blob Storage", False),
    ("gcs", "cloud_circle", "Google Cloud", "GCS Buckets", False),
    ("sftp", "lan", "SFTP", "Secure File Transfer", False),
    ("local", "folder", "Local Path", "File System Path", True),
)
AUTH_CHOICES = {"ambient": "Ambient identity (IAM role, environment)", "access_key": "Access keys"}
ACCESS_KEY_FIELDS = ("access_key_id", "secret_access_key", "session_token")
FILE_AGE_SUGGESTED = ("local", "sftp")
SUGGESTED_FILE_AGE = 60
OK_STYLE, FAILED_STYLE = "bg-green-50 text-green-800", "bg-red-50 text-red-800"


class SourceStep:
    def __init__(self, state: WizardState, on_probed: Callable[[], None]) -> None:
        self.state = state
        self.fields = state.fields
        self.draft = state.draft
        self.on_probed = on_probed
        self.stored_secret: str | None = self.draft.get("source.credentials.secret_access_key")
        self.set_aside: dict[str, Any] = {}
        self.failed_source: dict[str, Any] | None = None
        """The source as it was when Test Connection last failed (None: not failed, or succeeded since)."""
        """Access keys of an S3 source while the user has chosen a local source or ambient identity."""

    def render(self) -> None:
        fields = self.fields
        lock_banner(self.state.locked)
        name = fields.input("Ingestion name *", "name", lockable=False, placeholder="e.g. orders_raw")
        name.on("blur", self.check_name)
        section("Select Data Source", "dns")
        with radio_group(ui.grid(columns=3).classes("w-full gap-3"), "Data source"):
            self.source_cards = {
                kind: self._source_card(kind, icon, title, subtitle, enabled)
                for kind, icon, title, subtitle, enabled in SOURCE_CARDS
            }
        self._paint_source_cards()
        ui.label("Connection Details").classes("text-lg font-semibold text-slate-800 mt-2")
        path = fields.input("Bucket/Path *", "source.path")
        path.props("hint='The folder (e.g. /data/landing/orders) or S3 location (s3://bucket/prefix/)'")
        fields.input(
            "File Pattern (optional)", "source.file_pattern", OPTIONAL_TEXT, placeholder="*.json or logs-2024-*.json"
        ).props("hint='Filter files by pattern (** for sub-folders). Leave empty to process all files'")
        PartitionFolders(fields).render()
        self._file_age()
        with fields.when(ui.column().classes("w-full gap-3"), lambda: self.draft.get("source.type") == "s3"):
            self._s3_details()
        with ui.row().classes("w-full items-center gap-4"):
            ui.button("Test Connection", icon="network_check", on_click=self.test_connection).props(
                "outline no-caps"
            ).mark("test-connection")
            self.connection_spinner = ui.spinner(size="sm")
            self.connection_spinner.set_visibility(False)
        self.connection_result = ui.label().classes("w-full p-3 rounded text-sm").mark("connection-result")
        self.connection_result.set_visibility(False)

    def _file_age(self) -> None:
        """Files younger than this wait for a later run; local folders and SFTP drops are often written in place,
        so for them the hint suggests a minute."""
        age = ui.number("Minimum file age (seconds)", min=0, max=MAX_FILE_AGE_SECONDS, precision=0)
        age.props("outlined").classes("w-full")
        self.fields.bind(age, "source.min_file_age_seconds", WHOLE_NUMBER)
        with self.fields.when(ui.row(), lambda: self.draft.get("source.type") in FILE_AGE_SUGGESTED):
            ui.label(
                f"Suggested: {SUGGESTED_FILE_AGE} for local and SFTP sources, where producers may still be writing a "
                "file when it is listed (0 loads every file as soon as it is seen)."
            ).classes("text-xs text-slate-500").mark("min-file-age-hint")

    def _s3_details(self) -> None:
        fields = self.fields
        auth = ui.radio(dict(AUTH_CHOICES)).props("inline")
        fields.bind(auth, "source.credentials.type", after=self._credentials_follow_choice)
        uses_keys = self._uses_keys
        with fields.when(ui.row().classes("w-full no-wrap gap-3"), uses_keys):
            with ui.column().classes("flex-1"):
                fields.input("Access Key ID", "source.credentials.access_key_id", OPTIONAL_TEXT, lockable=False)
            with ui.column().classes("flex-1"):
                fields.input(
                    "Secret Access Key",
                    "source.credentials.secret_access_key",
                    secret_codec(self.stored_secret),
                    lockable=False,
                    password=True,
                    password_toggle_button=False,
                    placeholder="unchanged (stored encrypted)" if self.stored_secret else "",
                )
        with ui.row().classes("w-full no-wrap gap-3"):
            with ui.column().classes("flex-1"):
                fields.input("Region", "source.region", OPTIONAL_TEXT, placeholder="us-east-1")
            with ui.column().classes("flex-1"):
                fields.input("Endpoint URL (S3-compatible)", "source.endpoint_url", OPTIONAL_TEXT)

    def _uses_keys(self) -> bool:
        return bool(self.draft.get("source.type") == "s3" and self.draft.get("source.credentials.type") == "access_key")

    def _credentials_follow_choice(self) -> None:
        """Access keys are saved only while they are used: choosing ambient identity or a local source sets them
        aside (back if the user returns to S3 and access keys on this page), so no unused secret is stored."""
        credentials = self.draft.get("source.credentials")
        is_s3 = self.draft.get("source.type") == "s3"
        if is_s3 and "type" in self.set_aside:
            credentials["type"] = self.set_aside.pop("type")
        if self._uses_keys():
            credentials.update({k: v for k, v in self.set_aside.items() if credentials.get(k) is None})
            self.set_aside = {}
        else:
            self.set_aside |= {k: credentials[k] for k in ACCESS_KEY_FIELDS if credentials.get(k) is not None}
            credentials.update(dict.fromkeys(ACCESS_KEY_FIELDS))
            if not is_s3 and credentials["type"] == "access_key":
                self.set_aside["type"], credentials["type"] = "access_key", "ambient"
        self.fields.pull(*(f"source.credentials.{k}" for k in ("type", *ACCESS_KEY_FIELDS)))

    def _source_card(self, kind: str, icon: str, title: str, subtitle: str, enabled: bool) -> ui.card:
        card = ui.card().classes("items-center p-4 gap-1 cursor-pointer border-2").mark(f"source-{kind}")
        card.props(f"data-testid=source-{kind}")
        with card:
            ui.icon(icon).classes("text-3xl").props('aria-hidden="true"')
            ui.label(title).classes("font-semibold")
            ui.label(subtitle if enabled else "Coming soon").classes("text-xs text-slate-600")
        radio_choice(card, lambda: self._choose_source(kind), enabled=enabled)
        if not enabled:
            card.classes("bg-slate-100 text-slate-600 cursor-not-allowed")
        return card

    def _choose_source(self, kind: str) -> None:
        if self.state.locked:
            return
        self.draft.set("source.type", kind)
        self.state.probe = None
        self._credentials_follow_choice()
        self._paint_source_cards()
        self.fields.sync()

    def _paint_source_cards(self) -> None:
        for kind, card in self.source_cards.items():
            selected = kind == self.draft.get("source.type")
            mark_checked(card, selected)
            card.classes(
                add="border-indigo-500 bg-indigo-50" if selected else "border-slate-200",
                remove="border-slate-200" if selected else "border-indigo-500 bg-indigo-50",
            )

    async def check_name(self) -> None:
        """A name another ingestion has is said when the user leaves the field, not at Create."""
        name = self.draft.get("name")
        if name and await actions.name_taken(name, self.state.editing_id):
            self.fields.show_error("name", f"An ingestion named '{name}' already exists. Choose another name.")

    def connection_failure(self) -> str | None:
        """The last Test Connection's failure while the source is still as tested (Next waits for a fix)."""
        if self.state.locked:  # a locked source cannot be fixed here: the failure is shown, not blocking
            return None
        if self.failed_source is not None and self.failed_source == self.draft.get("source"):
            return self.connection_result.text
        return None

    # --- Test Connection ------------------------------------------------------------------------------------------
    async def test_connection(self) -> None:
        problems = validate_parts(self.draft, ("source",))
        self.fields.show_errors(problems)
        if problems:
            return
        await self.probe()
        self.connection_result.set_visibility(True)

    def show_result(self, text: str, ok: bool) -> None:
        self.connection_result.set_text(text)
        self.connection_result.classes(add=OK_STYLE if ok else FAILED_STYLE, remove=FAILED_STYLE if ok else OK_STYLE)

    async def probe(self) -> bool:
        """Read the source (and sample the format) into `state.probe`; False with the reason shown if it fails."""
        problems = engine_problems(self.draft)
        if problems:
            self.state.probe = None
            self.show_result(f"✕ {problems['format.type']}", ok=False)
            self.fields.show_errors(problems)
            return False
        self.connection_spinner.set_visibility(True)
        try:
            result = await actions.test_configuration(self.draft.probe_spec(), check_table=False)
        except AutoloaderError as exc:
            self.state.probe = None
            self.failed_source = copy.deepcopy(self.draft.get("source"))
            self.show_result(f"✕ {error_text(exc)}", ok=False)
            return False
        finally:
            self.connection_spinner.set_visibility(False)
        if result is None:
            return False
        self.state.probe = result
        self.failed_source = None
        truncated = "+" if result.files_truncated else ""
        self.show_result(
            f"✓ Connection successful — {result.files:,}{truncated} files, {human_bytes(result.total_bytes)}", ok=True
        )
        self.on_probed()
        return True
