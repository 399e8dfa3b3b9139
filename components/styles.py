"""Shared Quasar props and classes, so buttons and boxes look the same on every screen."""

PRIMARY = "no-caps unelevated color=indigo-7"
OUTLINE = "outline no-caps color=indigo-7"
FLAT = "flat no-caps color=indigo-7"
PANEL = "w-full p-4 rounded-lg bg-slate-50 border border-slate-200"
FOOTER = "w-full items-center justify-between px-6 py-4 bg-slate-50 border-t border-slate-200"
