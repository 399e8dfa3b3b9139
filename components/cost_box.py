"""The §9 cost estimate: compute + storage + discovery = monthly total, with its inputs."""

from __future__ import annotations

from nicegui import ui

from components.formatting import human_duration
from core.cost import CostEstimate, approx_dollars, format_dollars
from core.wording import counted


def cost_box(estimate: CostEstimate, schedule_text: str) -> None:
    with ui.column().classes("w-full gap-1 p-4 rounded-lg border border-green-300 bg-green-50").mark("cost-box"):
        ui.label("Estimated Monthly Cost").classes("text-lg font-semibold text-green-900")
        _line(
            f"Compute ({estimate.runs_per_month:,.0f} runs x {human_duration(estimate.minutes_per_run * 60)} avg, "
            f"{format_dollars(estimate.price_per_compute_hour)}/h)",
            estimate.compute,
        )
        _line(f"Storage ({estimate.stored_gb:,.2f} GB added a month)", estimate.storage)
        _line(f"File discovery ({estimate.list_calls:,.0f} list calls)", estimate.discovery)
        ui.separator().classes("bg-green-300")
        with ui.row().classes("w-full justify-between"):
            ui.label("Total Estimated Cost").classes("font-bold")
            ui.label(f"{approx_dollars(estimate.total)}/month").classes("font-bold").mark("cost-total")
        ui.label(
            f"Based on: {estimate.files_per_run:,.0f} files and {estimate.gb_per_run:,.3f} GB per run • "
            f"{counted(estimate.files_in_source, 'file')} in the source • {schedule_text} • engine throughput "
            f"{estimate.throughput_gb_per_hour:,.0f} GB/h • ${estimate.price_per_gb_month}/GB-month • "
            + (
                f"${estimate.price_per_1000_list_calls} per 1,000 list calls"
                if estimate.price_per_1000_list_calls
                else "listing a local folder is free"
            )
        ).classes("text-xs text-green-800")


def _line(label: str, amount: float) -> None:
    with ui.row().classes("w-full justify-between text-sm"):
        ui.label(label)
        ui.label(format_dollars(amount))
