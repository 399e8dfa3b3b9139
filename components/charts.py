"""Small ECharts charts."""

from __future__ import annotations

from nicegui import ui


def bar_chart(labels: list[str], values: list[float], *, height: str = "h-24", name: str = "") -> ui.echart:
    return ui.echart(
        {
            "grid": {"left": 4, "right": 4, "top": 8, "bottom": 20, "containLabel": False},
            "tooltip": {"trigger": "axis"},
            "xAxis": {"type": "category", "data": labels, "axisTick": {"show": False}},
            "yAxis": {"type": "value", "show": False},
            "series": [{"type": "bar", "name": name, "data": values, "itemStyle": {"color": "#6673e5"}}],
        }
    ).classes(f"w-full {height}")
