"""The shared page layout: header with navigation, the signed-in user and the notification bell, content column."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from nicegui import ui

from components.notification_bell import Inbox, NotificationBell

# WCAG 2.1 AA: a focus ring one sees (2.4.7), and Quasar's own greys and step titles dark enough for 4.5:1 text.
ACCESSIBLE_CSS = """
/* Quasar's buttons carry .no-outline (outline: 0 !important, in NiceGUI's last layer, quasar_importants); an
   !important rule in the first layer outranks every later layer's. */
@layer theme { :focus-visible { outline: 3px solid #4338ca !important; outline-offset: 2px !important; } }
.q-stepper__tab .q-stepper__title, .q-stepper__tab .q-stepper__caption { color: #334155; }
.q-stepper__tab--active .q-stepper__title { color: #3730a3; }
.q-field__label, .q-field__bottom, .q-field__marginal { color: #475569; }
.q-field--focused .q-field__label { color: #3730a3; }
"""
# Quasar renders two things axe rightly flags and no prop reaches: the page-load bar (a progressbar without a name)
# and a table's scrolling body (a scrollable region that a keyboard cannot focus to scroll).
ACCESSIBLE_SCRIPT = """
<script>
(() => {
  const label = () => {
    document.querySelectorAll('.q-loading-bar:not([aria-label])').forEach(e => e.setAttribute('aria-label', 'Loading'));
    document.querySelectorAll('.q-table__middle.scroll:not([tabindex])').forEach(e => {
      e.setAttribute('tabindex', '0'); e.setAttribute('role', 'region'); e.setAttribute('aria-label', 'Table');
    });
  };
  new MutationObserver(label).observe(document.documentElement, {childList: true, subtree: true});
  document.addEventListener('DOMContentLoaded', label);
})();
</script>
"""
# WCAG 2.4.3: pages rebuild their sections when data changes (a run starts, progresses, ends); the control that had
# the focus is then replaced by its twin and a keyboard user would be thrown back to the page's start. This puts the
# focus on the twin: the element of the same tag, test id and name, the same one of those counted in page order.
FOCUS_KEEPING_SCRIPT = """
<script>
(() => {
  let last = null, key = null, ordinal = 0, lostAt = 0;
  const name = e => (e.getAttribute('aria-label') || e.innerText || '').trim();
  const keyOf = e => e.tagName + '|' + (e.getAttribute('data-testid') || '') + '|' + name(e);
  const twins = k => [...document.querySelectorAll(k.split('|')[0])].filter(e => keyOf(e) === k);
  document.addEventListener('pointerdown', () => { last = null; }, true);  // a click elsewhere lets the focus go
  document.addEventListener('focusin', event => {
    last = event.target; key = keyOf(last); ordinal = twins(key).indexOf(last); lostAt = 0;
  });
  const restore = () => {
    if (!last || last.isConnected) return;
    const active = document.activeElement;
    if (active && active !== document.body) { last = null; return; }
    lostAt = lostAt || Date.now();
    if (Date.now() - lostAt > 3000) { last = null; return; }
    const found = twins(key);
    const twin = found[Math.min(ordinal, found.length - 1)];
    if (twin) twin.focus({preventScroll: true});
  };
  new MutationObserver(restore).observe(document.documentElement, {childList: true, subtree: true});
})();
</script>
"""
PRIMARY_COLOR = "#4338ca"  # indigo-700: 7.9:1 on white, so primary-coloured text and focus labels pass AA

NAVIGATION = (("Ingestions", "/"), ("Clusters", "/clusters"), ("Audit", "/audit"), ("API docs", "/docs"))


@contextmanager
def frame(
    title: str, *, width: str = "max-w-6xl", inbox: Inbox | None = None, account: str | None = None
) -> Iterator[None]:
    """`account` is the signed-in user as shown in the header (none on the login and setup pages)."""
    ui.page_title(f"{title} · Autoloader")
    ui.query("body").classes("bg-slate-50")
    ui.colors(primary=PRIMARY_COLOR, positive="#15803d", negative="#b91c1c", info="#0e7490")
    ui.add_css(ACCESSIBLE_CSS)
    ui.add_head_html(ACCESSIBLE_SCRIPT)
    ui.add_head_html(FOCUS_KEEPING_SCRIPT)
    with ui.header(fixed=False).classes("items-center justify-between bg-white text-slate-800 shadow-sm px-6"):
        with ui.link(target="/").classes("no-underline flex items-center gap-2"):
            ui.icon("move_to_inbox").classes("text-2xl text-indigo-600").props('aria-hidden="true"')
            ui.label("Autoloader").classes("text-xl font-bold text-indigo-700")
        if account is not None:
            with ui.row().classes("gap-6 items-center"):
                for label, target in NAVIGATION:
                    ui.link(label, target).classes("no-underline text-slate-700 hover:text-indigo-600 font-medium")
                if inbox is not None:
                    NotificationBell(inbox)
                ui.link(account, "/account").classes("text-sm text-slate-600 no-underline").mark("account")
                ui.html(
                    '<form method="post" action="/auth/logout" class="m-0">'
                    '<button type="submit" class="text-sm text-indigo-700 underline">Log out</button></form>',
                    sanitize=False,
                )
    with ui.column().classes(f"w-full {width} mx-auto p-6 gap-5") as content:
        content.tag = "main"  # the landmark a screen reader jumps to
        yield


def page_heading(text: str) -> ui.label:
    """The page's one `h1` (WCAG 1.3.1 / 2.4.6): a label rendered as a heading element."""
    heading = ui.label(text)
    heading.tag = "h1"
    return heading


def account_label(email: str, tenant: str, role: str) -> str:
    """E.g. "ada@example.com · analytics (admin)" (shown as text, never as HTML)."""
    return f"{email} · {tenant} ({role})"
