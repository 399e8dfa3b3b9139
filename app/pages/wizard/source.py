"""Step 1, Source: the name, where the files are, how to reach them, and Test Connection."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from nicegui import ui

from app.pages.wizard import actions
from app.pages.wizard.draft import OPTIONAL_TEXT, SAME, WHOLE_NUMBER
from app.pages.wizard.fields import WizardState, lock_banner, section
from app.pages.wizard.partitions import PartitionFolders
from app.pages.wizard.source_credentials import ENDPOINT_LABELS, CredentialFields, CredentialMemory
from app.pages.wizard.validation import engine_problems, validate_parts
from components.feedback import error_text
from components.formatting import human_bytes
from components.keyboard import mark_checked, radio_choice, radio_group
from core.errors import AutoloaderError
from core.preview import PreviewResult
from core.storage.sftp import HostKeyNotPinned
from core.wording import counted

SOURCE_CARDS = (
    ("s3", "cloud", "AWS S3", "Amazon Simple Storage"),
    ("azure_blob", "cloud_queue", "Azure Blob", "Azure Blob Storage"),
    ("gcs", "cloud_circle", "Google Cloud", "GCS Buckets"),
    ("sftp", "lan", "SFTP", "Secure File Transfer"),
    ("local", "folder", "Local Path", "File System Path"),
)
PATH_HELP: dict[str, tuple[str, str]] = {
    "s3": ("s3://bucket/prefix/", "The S3 location: s3://bucket/prefix/"),
    "azure_blob": (
        "abfss://container@account.dfs.core.windows.net/prefix/",
        "abfss://container@account.dfs.core.windows.net/prefix/ or https://account.blob.core.windows.net/container/prefix/",
    ),
    "gcs": ("gs://bucket/prefix/", "The GCS location: gs://bucket/prefix/"),
    "sftp": ("sftp://host:22/folder", "The server, its port and an absolute folder; the user name goes below"),
    "local": ("/data/landing/orders", "An absolute folder on this server, e.g. /data/landing/orders"),
}
"""Each kind's path placeholder and hint."""
FILE_AGE_SUGGESTED = ("local", "sftp")
SUGGESTED_FILE_AGE = 60
OK_STYLE, FAILED_STYLE = "bg-green-50 text-green-800", "bg-red-50 text-red-800"


class SourceStep:
    def __init__(self, state: WizardState, on_probed: Callable[[], bool]) -> None:
        """`on_probed` is told of each successful Test Connection; True asks for the sample to be read again."""
        self.state = state
        self.fields = state.fields
        self.draft = state.draft
        self.on_probed = on_probed
        self.memory = CredentialMemory(self.draft)
        self.credentials = CredentialFields(self.fields)
        self.failed_source: dict[str, Any] | None = None
        """The source as it was when Test Connection last failed (None: not failed, or succeeded since)."""
        self.pinned_now: str | None = None
        """The SFTP host key fingerprint the last Test Connection pinned (said with its result)."""

    def render(self) -> None:
        fields = self.fields
        lock_banner(self.state.locked, self.fields.loaded_lock)
        name = fields.input("Ingestion name *", "name", lockable=False, placeholder="e.g. orders_raw")
        name.on("blur", self.check_name)
        section("Select Data Source", "dns")
        with radio_group(ui.grid(columns=3).classes("w-full gap-3"), "Data source"):
            self.source_cards = {
                kind: self._source_card(kind, icon, title, subtitle) for kind, icon, title, subtitle in SOURCE_CARDS
            }
        self._paint_source_cards()
        ui.label("Connection Details").classes("text-lg font-semibold text-slate-800 mt-2")
        self.path = fields.input("Bucket/Path *", "source.path")
        fields.input(
            "File Pattern (optional)", "source.file_pattern", OPTIONAL_TEXT, placeholder="*.json or logs-2024-*.json"
        ).props("hint='Filter files by pattern (** for sub-folders). Leave empty to process all files'")
        PartitionFolders(fields).render()
        self._file_age()
        self._reload_changed()
        self._incremental_listing()
        self._access_details()
        self._show_kind()
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
        age = ui.number("Minimum file age (seconds)", precision=0)  # out of range: said at the field, not clamped
        age.props("outlined").classes("w-full")
        self.fields.bind(age, "source.min_file_age_seconds", WHOLE_NUMBER)
        with self.fields.when(ui.row(), lambda: self.draft.get("source.type") in FILE_AGE_SUGGESTED):
            ui.label(
                f"Suggested: {SUGGESTED_FILE_AGE} for local and SFTP sources, where producers may still be writing a "
                "file when it is listed (0 loads every file as soon as it is seen)."
            ).classes("text-xs text-slate-500").mark("min-file-age-hint")

    def _reload_changed(self) -> None:
        switch = ui.switch("Reload files changed after loading")
        self.fields.bind(switch, "source.reload_changed_files", SAME, lockable=True)
        ui.label(
            "A file changed after it was loaded is loaded again: appended lines add only the new records, any other "
            "change replaces the file's rows (embedded engine only)."
        ).classes("text-xs text-slate-500 -mt-2")

    def _incremental_listing(self) -> None:
        """Editable on an active ingestion too: turning it on or off never loses or repeats a file."""
        switch = ui.switch("Incremental listing (file names in time order)")
        self.fields.bind(switch, "source.incremental_listing", SAME)
        ui.label(
            "List only the files whose path sorts after those already listed (dates or sequence numbers in the "
            "names): a no-op run stays fast over millions of loaded files. A file arriving with an earlier name is "
            "found by the next full listing."
        ).classes("text-xs text-slate-500 -mt-2")
        with self.fields.when(ui.row().classes("w-full"), lambda: bool(self.draft.get("source.incremental_listing"))):
            hours = ui.number("Full listing every (hours)", precision=0)
            hours.props("outlined").classes("w-full")
            self.fields.bind(hours, "source.full_listing_interval_hours", WHOLE_NUMBER)

    def _access_details(self) -> None:
        """How the chosen kind is reached: credentials, then its endpoint, region or pinned host key."""
        fields = self.fields
        kind = self._kind
        self.credentials.render(on_change=self._credentials_follow_choice)
        with ui.row().classes("w-full no-wrap gap-3"):
            with fields.when(ui.column().classes("flex-1"), lambda: kind() == "s3"):
                fields.input("Region", "source.region", OPTIONAL_TEXT, placeholder="us-east-1")
            with fields.when(ui.column().classes("flex-1"), lambda: kind() in ENDPOINT_LABELS):
                self.endpoint = fields.input("Endpoint URL", "source.endpoint_url", OPTIONAL_TEXT)
        with fields.when(ui.column().classes("w-full gap-1"), lambda: kind() == "sftp"):
            fingerprint = fields.input(
                "Pinned host key (SHA256)", "source.host_key_fingerprint", OPTIONAL_TEXT, placeholder="SHA256:..."
            )
            fingerprint.props(
                "hint='Test Connection pins the key the server presents; compare it with ssh-keygen -lf on the "
                "server. A server presenting another key is refused; clear this to pin again.'"
            )

    def _kind(self) -> str:
        kind: str = self.draft.get("source.type")
        return kind

    def _show_kind(self) -> None:
        """The path's placeholder and hint, the endpoint's label and the credential choices of the chosen kind."""
        kind = self.draft.get("source.type")
        placeholder, hint = PATH_HELP[kind]
        self.path.props(f"placeholder='{placeholder}' hint='{hint}'")
        if kind in ENDPOINT_LABELS:
            self.endpoint.props(f"label='{ENDPOINT_LABELS[kind]}'")
        self.credentials.show_choices()

    def _credentials_follow_choice(self) -> None:
        """Only what the chosen kind and credential type use is saved (see source_credentials.py)."""
        self.fields.pull(*self.memory.follow())
        self.fields.sync()

    def _source_card(self, kind: str, icon: str, title: str, subtitle: str) -> ui.card:
        card = ui.card().classes("items-center p-4 gap-1 cursor-pointer border-2").mark(f"source-{kind}")
        card.props(f"data-testid=source-{kind}")
        with card:
            ui.icon(icon).classes("text-3xl").props('aria-hidden="true"')
            ui.label(title).classes("font-semibold")
            ui.label(subtitle).classes("text-xs text-slate-600")
        radio_choice(card, lambda: self._choose_source(kind))
        return card

    def _choose_source(self, kind: str) -> None:
        if self.fields.loaded_lock:
            return
        self.draft.set("source.type", kind)
        self.state.probe = None
        self._credentials_follow_choice()
        self._show_kind()
        self._paint_source_cards()

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
        if self.fields.loaded_lock:  # a locked source cannot be fixed here: the failure is shown, not blocking
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
            result = await self._test_pinning_the_host_key()
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
        pinned = (
            f" Host key {self.pinned_now} pinned: compare it with the server's (ssh-keygen -lf)."
            if self.pinned_now
            else ""
        )
        self.show_result(
            f"✓ Connection successful — {counted(result.files, 'file', more=result.files_truncated)}, "
            f"{human_bytes(result.total_bytes)}.{pinned}",
            ok=True,
        )
        if self.on_probed():  # the sample's files name another format than the default: read them as that
            return await self.probe()
        return True

    async def _test_pinning_the_host_key(self) -> PreviewResult | None:
        """Test the source. An SFTP server whose host key is not pinned yet has it pinned (shown in the pinned field
        and said with the result, for the user to compare) and is tested again; a key other than the pinned one is
        refused (HostKeyMismatch), never re-pinned. A locked source is not changed: the fingerprint is only said."""
        self.pinned_now = None
        try:
            return await actions.test_configuration(self.draft.probe_spec(), check_table=False)
        except HostKeyNotPinned as exc:
            if self.fields.loaded_lock:
                raise
            self.draft.set("source.host_key_fingerprint", exc.fingerprint)
            self.fields.pull("source.host_key_fingerprint")
            self.pinned_now = exc.fingerprint
        return await actions.test_configuration(self.draft.probe_spec(), check_table=False)
