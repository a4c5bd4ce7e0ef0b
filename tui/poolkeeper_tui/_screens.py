"""The screens pushed over the main view: drill-down, plan preview, apply confirmation, help.

Each is built from a ``Frame`` (already observed and planned) and shows text only; none
of them talks to the chain. The apply confirmation returns the user's answer and the
destructive action ids it showed, so the caller can refuse to act on a plan that grew
new destructive steps in the meantime.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Static

from poolkeeper.model.actions import DESTRUCTIVE_KINDS, Plan
from poolkeeper.model.amounts import format_pha
from poolkeeper.model.phase import phase_of
from poolkeeper.render import render_text
from poolkeeper_tui._data import GLYPH_MEANING, Frame, items_by_target, join_worker
from poolkeeper_tui._widgets import AnsiLines


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    return str(value)


def worker_detail(frame: Frame, key: str) -> Text | Table:
    """Desired vs observed fields, the plan's lines and the inventory location of a worker."""
    spec = frame.desired.workers_by_name.get(key)
    items = items_by_target(frame.plan).get(key if key.startswith("worker/") else f"worker/{key}")
    fields = Table(title=f"worker {key}", expand=True, show_lines=False)
    fields.add_column("field")
    fields.add_column("desired (inventory)")
    fields.add_column("observed")
    fields.add_column("", width=1)
    if spec is None:
        fields.add_row("inventory", "(not in inventory)", "on chain in a managed pool", "-")
    else:
        prt, chain = join_worker(spec, frame.observed)
        info = prt.info if prt else None
        head = frame.observed.head
        pools_by_pid = {p.pid: p.name for p in frame.desired.pools if p.pid is not None}
        chain_pool = (
            pools_by_pid.get(chain.pool_pid, f"pid {chain.pool_pid}")
            if chain and chain.pool_pid is not None
            else None
        )
        stake = frame.desired.stake_of(spec)
        rows: list[tuple[str, str, str]] = [
            ("inventory", _fmt(spec.source), ""),
            ("endpoint", spec.endpoint, (f"error: {prt.error}" if prt and prt.error else "ok")),
            ("state / phase", spec.state.value, phase_of(prt, chain, head).value),
            ("pool", _fmt(spec.pool), _fmt(chain_pool)),
            (
                "pubkey",
                spec.pubkey or "(from pRuntime)",
                _fmt(info.public_key if info else None),
            ),
            (
                "stake",
                format_pha(stake) if stake is not None else "-",
                format_pha(chain.stake) if chain and chain.stake is not None else "-",
            ),
            (
                "pRuntime blocknum",
                f"≥ finalized #{head.finalized_number}",
                _fmt(info.blocknum if info else None),
            ),
            (
                "session state",
                "-",
                _fmt(chain.session_state.value if chain and chain.session_state else None),
            ),
            ("initial score", "-", _fmt(chain.initial_score if chain else None)),
            (
                "relay",
                "-",
                _fmt(
                    frame.observed.relay_details.get(spec.name)
                    or frame.observed.relays.get(spec.name)
                ),
            ),
            ("labels", ", ".join(f"{k}={v}" for k, v in spec.labels.items()) or "-", ""),
        ]
        for name, want, seen in rows:
            known = want not in ("", "-") and seen not in ("", "-")
            differs = known and want != seen and name in ("pool", "stake")
            fields.add_row(name, want, seen, "≠" if differs else "")
    lines = Table.grid(padding=(0, 1))
    lines.add_column()
    lines.add_column()
    if items is None:
        lines.add_row("=", "nothing planned: converged")
    else:
        for action in items.actions:
            flag = " (destructive)" if action.kind in DESTRUCTIVE_KINDS else ""
            lines.add_row(action.symbol.value, f"{action.kind.value}{flag}: {action.reason}")
        for wait in items.waits:
            eta = f" (~{wait.eta_seconds}s)" if wait.eta_seconds is not None else ""
            lines.add_row("…", f"waiting for {wait.awaiting}{eta}: {wait.reason}")
        for alert in items.alerts:
            lines.add_row("!", f"{alert.severity.value}: {alert.message}")
        for drift in items.drift:
            lines.add_row("~", f"drift: {drift.message}")
    outer = Table.grid()
    outer.add_column()
    outer.add_row(fields)
    outer.add_row(Text("\nPlan for this worker", style="bold"))
    outer.add_row(lines)
    return outer


class DrillDownScreen(Screen[None]):
    """One worker in detail. Esc goes back."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "app.pop_screen", "back")]

    def __init__(
        self,
        frame: Frame,
        key: str,
        live: Callable[[Frame, str], RenderableType] | None = None,
    ) -> None:
        super().__init__()
        self._frame = frame
        self._key = key
        self._live = live
        """Conditions and their history, extrinsics, relay output (the app keeps them)."""

    @property
    def key(self) -> str:
        return self._key

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(worker_detail(self._frame, self._key), id="detail")
            yield Static(self._live_part(self._frame), id="live")
        yield Footer()

    def _live_part(self, frame: Frame) -> RenderableType:
        return self._live(frame, self._key) if self._live is not None else ""

    def show(self, frame: Frame) -> None:
        """A new pass: the detail follows it (the drill-down is live)."""
        self._frame = frame
        self.query_one("#detail", Static).update(worker_detail(frame, self._key))
        self.query_one("#live", Static).update(self._live_part(frame))


class PlanScreen(Screen[None]):
    """The whole plan as ``poolkeeper plan`` prints it."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "app.pop_screen", "back")]

    def __init__(self, plan: Plan) -> None:
        super().__init__()
        self._plan = plan

    def compose(self) -> ComposeResult:
        yield AnsiLines(render_text(self._plan, colour=True), id="plan-text")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(AnsiLines).focus()


def destructive_lines(plan: Plan) -> list[str]:
    return [
        f"- {a.target}: {a.kind.value} ({a.reason})"
        for a in plan.actions
        if a.kind in DESTRUCTIVE_KINDS
    ]


def kind_counts(plan: Plan) -> list[str]:
    """``N kind`` per action kind, most first (destructive kinds marked)."""
    counts: dict[str, int] = {}
    for action in plan.actions:
        counts[action.kind.value] = counts.get(action.kind.value, 0) + 1
    destructive = {k.value for k in DESTRUCTIVE_KINDS}
    return [
        f"{n} {kind}" + (" (destructive)" if kind in destructive else "")
        for kind, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def money_text(plan: Plan) -> str:
    """The fees and the stake the plan moves, as the operator confirms it."""
    fee = plan.fee_total
    fees = (
        f"Estimated fees ≈ {format_pha(fee)}"
        if fee is not None
        else "Estimated fees: unknown (this plan carries no estimate)"
    )
    return (
        f"{fees}; stake moved: locks {format_pha(plan.stake_locked)}, "
        f"releases {format_pha(plan.stake_released)}"
    )


class ConfirmApply(ModalScreen[bool]):
    """Asks before applying: counts per kind, estimated fees, the stake moved and every
    destructive action, in a box that scrolls; the focus starts on Cancel, so Enter alone
    never applies."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "apply"),
        Binding("n,escape", "answer(False)", "cancel"),
    ]
    DEFAULT_CSS = """
    ConfirmApply { align: center middle; }
    ConfirmApply > Vertical {
        width: 90%; height: auto; max-height: 90%;
        border: thick $warning; background: $surface; padding: 1 2;
    }
    ConfirmApply VerticalScroll { height: auto; max-height: 1fr; }
    ConfirmApply Horizontal { height: auto; margin-top: 1; }
    ConfirmApply Button { margin-right: 2; }
    """

    def __init__(self, plan: Plan) -> None:
        super().__init__()
        self._plan = plan

    def compose(self) -> ComposeResult:
        plan = self._plan
        destructive = destructive_lines(plan)
        text = Text()
        text.append(f"Apply {len(plan.actions)} action(s)?\n", style="bold")
        text.append("By kind: " + ", ".join(kind_counts(plan)) + "\n")
        text.append(money_text(plan) + "\n")
        if destructive:
            text.append(f"{len(destructive)} destructive action(s):\n", style="bold red")
            text.append("\n".join(destructive) + "\n")
        else:
            text.append("No destructive action in this plan.\n")
        text.append(
            "\npoolkeeper observes again before acting; if new destructive actions appear "
            "it stops without acting."
        )
        with Vertical():
            with VerticalScroll(id="confirm-scroll"):
                yield Static(text, id="confirm-text")
            with Horizontal():
                yield Button("Apply (y)", id="yes", variant="error")
                yield Button("Cancel (n)", id="no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class ConfirmQuit(ModalScreen[bool]):
    """Asks before quitting a TUI that runs relays: stopping them leaves computing
    workers without their relay (the chain marks them unresponsive)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "quit"),
        Binding("n,escape", "answer(False)", "stay"),
    ]
    DEFAULT_CSS = """
    ConfirmQuit { align: center middle; }
    ConfirmQuit > Vertical {
        width: 80%; height: auto; border: thick $warning; background: $surface; padding: 1 2;
    }
    ConfirmQuit Horizontal { height: auto; margin-top: 1; }
    ConfirmQuit Button { margin-right: 2; }
    """

    def __init__(self, relays: int) -> None:
        super().__init__()
        self._relays = relays

    def compose(self) -> ComposeResult:
        text = Text()
        text.append(f"Quit and stop {self._relays} relay(s)?\n", style="bold")
        text.append(
            "Computing workers need their relay: without one the chain soon marks them "
            "unresponsive. Keep `poolkeeper run` (or `poolkeeper relay`) running instead, "
            "and attach the TUI to it."
        )
        with Vertical():
            yield Static(text, id="quit-text")
            with Horizontal():
                yield Button("Quit, stop relays (y)", id="yes", variant="error")
                yield Button("Stay (n)", id="no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


HELP = [
    ("1 / 2 / 3 / 4", "workers / accounts / event log / pools"),
    ("/", "filter: pool:x phase:x label:k=v drift alert behind>10 text"),
    ("s / S", "sort by the next column (then off) / reverse"),
    ("!", "problems only (warnings and worse), on/off"),
    ("n", "next worker with a warning or worse"),
    ("j / k / g / G", "down / up / top / bottom"),
    ("Enter", "drill down into the worker under the cursor (follows each pass)"),
    ("c", "copy the address (worker pubkey, account address)"),
    ("e", "open the worker's inventory file at its line in $EDITOR"),
    ("Esc", "back"),
    ("p", "plan preview"),
    ("a", "apply the plan (asks first; disabled with --readonly)"),
    ("r", "reload the inventory and observe now"),
    (":", "command palette"),
    ("?", "this help"),
    ("q", "quit"),
]


class HelpScreen(ModalScreen[None]):
    """Keys and glyphs."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "app.pop_screen", "close")
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 76; max-width: 100%; height: auto; max-height: 100%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    """

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        for key, meaning in HELP:
            table.add_row(key, meaning)
        table.add_row("", "")
        for glyph, meaning in GLYPH_MEANING.items():
            table.add_row(glyph, meaning)
        with VerticalScroll():  # at 80×24 the list is taller than the screen
            yield Static(table, id="help-text")
