"""Widgets bound to the draft, the error label under each, visibility rules, and the state the steps share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nicegui import ui
from nicegui.elements.choice_element import ChoiceElement
from nicegui.elements.mixins.disableable_element import DisableableElement
from nicegui.elements.mixins.value_element import ValueElement

from app.db.models import ClusterPublic
from app.pages.wizard.draft import SAME, TEXT, Codec, SpecDraft
from components.feedback import error_text, notify_error
from core.errors import AutoloaderError
from core.preview import PreviewResult

LOCK_REASON = (
    "Source, format and destination are locked once an ingestion has been activated. "
    "To change them, create a new ingestion."
)
OPEN_UNTIL_LOADED_REASON = (
    "The destination is locked once an ingestion has been activated. The source and the format can still change: "
    "no file has been loaded yet. To change the destination, create a new ingestion."
)


def _offering(options: list[Any] | dict[Any, Any], value: Any) -> list[Any] | dict[Any, Any]:
    """The options plus `value` if it is missing: a choice element resets an unknown value to None, which would
    overwrite a stored value the console does not offer (e.g. a time zone or weekday spelled differently)."""
    if value is None or isinstance(value, list) or value in options:
        return options
    return [*options, value] if isinstance(options, list) else {**options, value: str(value)}


class FormFields:
    """Each bound widget shows its field of the draft when built and writes it back, through its codec, only
    when the user changes it."""

    def __init__(self, draft: SpecDraft, locked: bool, loaded_lock: bool | None = None) -> None:
        """`loaded_lock` defaults to `locked`: the source and the format stay open on an activated ingestion that
        has not loaded a file yet (nothing in the table depends on them)."""
        self.draft = draft
        self.locked = locked
        self.loaded_lock = locked if loaded_lock is None else loaded_lock
        self.open_until_loaded: list[DisableableElement] = []
        self.check_field: Callable[[str], dict[str, str]] | None = None
        """Checks one changed field (the wizard's validation): its problems show at the field as the user types."""
        self.errors: dict[str, ui.label] = {}
        self.shown_when: list[tuple[ui.element, Callable[[], bool]]] = []
        self.lockable: list[DisableableElement] = []
        self.bound: dict[str, list[tuple[ValueElement[Any], Codec]]] = {}
        self._quiet = False

    def bind(
        self,
        element: Any,
        path: str,
        codec: Codec = SAME,
        *,
        marked: bool = True,
        lockable: bool = False,
        after: Callable[[], Any] | None = None,
    ) -> Any:
        def changed(event: Any) -> None:
            if self._quiet:
                return
            self.draft.set(path, codec.read(event.value))
            self.clear_error(path)
            self.sync()
            self._check(path)
            if after:
                after()

        shown = codec.show(self.draft.get(path))
        if isinstance(element, ChoiceElement):
            element.set_options(_offering(element.options, shown))
        element.value = shown
        element.on_value_change(changed)
        self.bound.setdefault(path, []).append((element, codec))
        if marked:
            element.mark(path).props(f"data-testid={path}")
            self.error_slot(path)
        if lockable:
            self.lockable_for(path).append(element)
        return element

    def _check(self, path: str) -> None:
        if self.check_field is None:
            return
        for problem_path, message in self.check_field(path).items():
            slot = self.slot_for(problem_path)
            if slot is not None and _shown(slot):
                _reveal(slot, message)

    def lockable_for(self, path: str) -> list[DisableableElement]:
        """The list an element bound to `path` is locked with: the source's and the format's (open until a file
        has loaded), or the rest's."""
        return self.open_until_loaded if path.startswith(("source.", "format.")) else self.lockable

    def input(self, label: str, path: str, codec: Codec = TEXT, *, lockable: bool = True, **kwargs: Any) -> ui.input:
        element = ui.input(label, **kwargs).props("outlined").classes("w-full")
        bound: ui.input = self.bind(element, path, codec, lockable=lockable)
        return bound

    def pull(self, *paths: str) -> None:
        """Show the draft's value again in the widgets of `paths`, after the wizard itself changed it; an error
        shown for the value before is checked again (choosing Custom (cron) showed "Cron expression '' is not
        valid" under the default the wizard had just filled in)."""
        self._quiet = True
        try:
            for path in paths:
                for element, codec in self.bound.get(path, []):
                    shown = codec.show(self.draft.get(path))
                    if isinstance(element, ChoiceElement):
                        element.set_options(_offering(element.options, shown))
                    element.value = shown
        finally:
            self._quiet = False
        for path in paths:
            self.clear_error(path)
            self._check(path)

    def set_options(self, element: ChoiceElement, options: list[Any] | dict[Any, Any]) -> None:
        """New options for a bound choice element; its value (the draft's) stays, so nothing is written."""
        self._quiet = True
        try:
            element.set_options(_offering(options, element.value))
        finally:
            self._quiet = False

    def when(self, element: ui.element, predicate: Callable[[], bool]) -> ui.element:
        self.shown_when.append((element, predicate))
        return element

    def sync(self) -> None:
        for element, predicate in self.shown_when:
            element.set_visibility(predicate())

    def lock(self) -> None:
        if self.locked:
            for element in self.lockable:
                element.disable()
        if self.loaded_lock:
            for element in self.open_until_loaded:
                element.disable()

    # --- errors ---------------------------------------------------------------------------------------------------
    def error_slot(self, path: str) -> None:
        label = ui.label().classes("text-xs text-red-600 -mt-2").mark(f"error-{path}")
        label.set_visibility(False)
        self.errors[path] = label

    def show_error(self, path: str, message: str) -> None:
        slot = self.slot_for(path)
        if slot is None:
            ui.notify(f"{field_name(path)}: {message}", type="negative")
            return
        slot.set_text(message)
        slot.set_visibility(True)

    def clear_error(self, path: str) -> None:
        if path in self.errors:
            self.errors[path].set_visibility(False)

    def show_errors(self, problems: dict[str, str]) -> None:
        """Each message under its field; one whose field is hidden (e.g. a CSV option after switching to JSON,
        still validated because the draft keeps it) or has no label becomes a notification naming the field."""
        for label in self.errors.values():
            label.set_visibility(False)
        for path, message in problems.items():
            slot = self.slot_for(path)
            if slot is None or not _shown(slot):
                ui.notify(f"{field_name(path)}: {message}", type="negative")
                continue
            _reveal(slot, message)

    def slot_for(self, path: str) -> ui.label | None:
        parts = path.split(".")
        while parts:
            if ".".join(parts) in self.errors:
                return self.errors[".".join(parts)]
            parts.pop()
        return None

    def show_service_error(self, exc: AutoloaderError) -> None:
        slot = self.slot_for(exc.field) if exc.field else None
        if slot is not None:
            slot.set_text(error_text(exc))
            slot.set_visibility(True)
        notify_error(exc)


def field_name(path: str) -> str:
    """A field's name as a user reads it: "format.schema.schema_json" → "Schema json" (its last part)."""
    return path.rsplit(".", 1)[-1].replace("_", " ").capitalize()


def _reveal(slot: ui.label, message: str) -> None:
    slot.set_text(message)
    slot.set_visibility(True)
    for element in _containers(slot):  # a collapsed expansion (Advanced reader options) opens
        if isinstance(element, ui.expansion):
            element.open()


def _containers(label: ui.element) -> list[ui.element]:
    """The elements around an error label, innermost first."""
    found, slot = [], label.parent_slot
    while slot is not None:
        found.append(slot.parent)
        slot = slot.parent.parent_slot
    return found


def _shown(label: ui.element) -> bool:
    """Whether the containers around an error label are visible (the label itself is shown on demand)."""
    return all(element.visible for element in _containers(label))


@dataclass
class WizardState:
    """What the steps share: the bound draft, the registered clusters and the last probe of the source."""

    fields: FormFields
    clusters: list[ClusterPublic]
    probe: PreviewResult | None = None
    editing_id: int | None = None

    @property
    def draft(self) -> SpecDraft:
        return self.fields.draft

    @property
    def locked(self) -> bool:
        return self.fields.locked

    def cluster(self) -> ClusterPublic | None:
        return next((c for c in self.clusters if c.id == self.draft.get("cluster_id")), None)


def section(title: str, icon: str) -> None:
    with ui.row().classes("items-center gap-2 mt-2"):
        ui.icon(icon).classes("text-xl text-slate-700")
        ui.label(title).classes("text-lg font-semibold text-slate-800")


def lock_banner(locked: bool, loaded_lock: bool | None = None) -> None:
    if locked:
        reason = LOCK_REASON if loaded_lock in (None, True) else OPEN_UNTIL_LOADED_REASON
        with ui.row().classes("w-full p-3 rounded bg-amber-50 border border-amber-200 items-center"):
            ui.icon("lock").classes("text-amber-700")
            ui.label(reason).classes("text-sm text-amber-900")
