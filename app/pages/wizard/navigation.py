"""Moving between the steps: Back, Next (validating the step being left) and clicks on the progress bar."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from nicegui import ui

from app.pages.wizard.fields import FormFields
from app.pages.wizard.validation import STEPS, validate_step
from components.styles import FLAT, FOOTER, OUTLINE, PRIMARY


class Navigation:
    def __init__(
        self,
        fields: FormFields,
        on_entered: Callable[[str], Awaitable[None]],
        on_finish: Callable[[], Awaitable[None]],
    ) -> None:
        """`on_entered(step)` runs after every move; `on_finish` is Next on the last step (Test & Preview)."""
        self.fields = fields
        self.on_entered = on_entered
        self.on_finish = on_finish
        self.blocker: Callable[[str], str | None] = lambda step: None
        """Why a step may not be left although its fields are valid (Source: a failed Test Connection)."""
        self.moved_to: str | None = None
        """The step the wizard itself moved to; its change event is not a user's click on the progress bar."""

    def stepper(self) -> ui.stepper:
        self._stepper = ui.stepper(on_value_change=self._on_step_change).props("header-nav flat animated")
        return self._stepper.classes("w-full")

    def footer(self, save_draft: Callable[[], Awaitable[None]]) -> None:
        with ui.row().classes(FOOTER):
            self.back_button = ui.button("Back", icon="arrow_back", on_click=self.back).props(OUTLINE)
            with ui.row().classes("items-center gap-3"):
                ui.button("Save as Draft", on_click=save_draft).props(FLAT).mark("save-draft")
                self.next_button = ui.button("Next", on_click=self.next).props(PRIMARY)
                self.next_button.mark("next")
        self.update()

    def current(self) -> int:
        value = self._stepper.value
        return STEPS.index(value if isinstance(value, str) else STEPS[0])

    def update(self) -> None:
        index = self.current()
        self.back_button.set_enabled(index > 0)
        last = index == len(STEPS) - 1
        self.next_button.set_text("Test & Preview" if last else "Next")
        self.next_button.props(f"icon-right={'science' if last else 'arrow_forward'}")

    async def _on_step_change(self, event: Any) -> None:
        if event.value == self.moved_to:
            self.moved_to = None
            return
        target = STEPS.index(event.value)
        previous = STEPS.index(event.previous_value) if event.previous_value in STEPS else 0
        if target > previous:
            for step in STEPS[previous:target]:
                problems = validate_step(self.fields.draft, step)
                if problems or self._blocked(step):
                    self.go(step)
                    self.fields.show_errors(problems)
                    return
        await self.on_entered(STEPS[target])

    def _blocked(self, step: str) -> bool:
        reason = self.blocker(step)
        if reason:
            ui.notify(f"{reason} Fix it and test the connection again before going on.", type="warning")
        return bool(reason)

    def go(self, step: str) -> None:
        if self._stepper.value != step:
            self.moved_to = step
            self._stepper.set_value(step)
        self.update()

    async def back(self) -> None:
        index = self.current()
        if index > 0:
            self.go(STEPS[index - 1])
            await self.on_entered(STEPS[index - 1])

    async def next(self) -> None:
        step = STEPS[self.current()]
        problems = validate_step(self.fields.draft, step)
        self.fields.show_errors(problems)
        if problems or self._blocked(step):
            return
        if step == STEPS[-1]:
            await self.on_finish()
            return
        following = STEPS[self.current() + 1]
        self.go(following)
        await self.on_entered(following)
