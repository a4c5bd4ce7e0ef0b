"""The Textual app: a live worker table (desired vs observed), accounts and an event log.

Found by the CLI through the ``poolkeeper.frontends`` entry point (``run_tui``). Rows are
keyed by worker name and refreshed cell by cell, so a pass over 10,000 workers only
repaints what changed; nothing is applied unless the user asks and confirms.
"""

from __future__ import annotations

import argparse
import gc
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from rich.cells import cell_len
from rich.console import RenderableType
from rich.style import Style
from rich.text import Text
from textual import events
from textual.app import App, ComposeResult, SuspendNotSupported, SystemCommand
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import ContentSwitcher, DataTable, Footer, Input, Log, Static

from poolkeeper.control.protocol import connect_socket, socket_path
from poolkeeper.errors import InventoryError, PoolkeeperError
from poolkeeper.inventory import load_inventory
from poolkeeper.model.actions import DESTRUCTIVE_KINDS, Action
from poolkeeper.model.desired import Desired
from poolkeeper.observe.snapshot import load_snapshot
from poolkeeper_tui._data import (
    ACCOUNT_COLUMNS,
    WORKER_COLUMNS,
    AttachedSource,
    DataSource,
    Frame,
    LiveSource,
    RowCache,
    SnapshotSource,
    StaleInventory,
    account_rows,
    join_worker,
    unobserved_records,
    worker_records,
)
from poolkeeper_tui._detail import ConditionHistory, WorkerFiles, live_detail
from poolkeeper_tui._screens import (
    ConfirmApply,
    ConfirmQuit,
    DrillDownScreen,
    HelpScreen,
    PlanScreen,
)
from poolkeeper_tui._table import (
    POOL_COLUMNS,
    SEVERITY_CRITICAL,
    SEVERITY_PENDING,
    SEVERITY_WARN,
    WorkerRow,
    matching,
    pool_rows,
    sorted_keys,
)
from poolkeeper_tui._widgets import BulkTable, EventLog, KeyedTable

SORTABLE = [key for key, _ in WORKER_COLUMNS]
COLUMN_INDEX = {key: index for index, key in enumerate(SORTABLE)}
COLUMN_INDEX_ACCOUNT_ADDRESS = [key for key, _ in ACCOUNT_COLUMNS].index("address")
SEVERITY_STYLES = {
    SEVERITY_CRITICAL: Style(color="red", bold=True),
    SEVERITY_WARN: Style(color="yellow"),
    SEVERITY_PENDING: Style(color="cyan"),
}
STALE_STYLE = Style(dim=True)
ROW_STYLES = {
    (severity, stale): (SEVERITY_STYLES.get(severity) or Style())
    + (STALE_STYLE if stale else Style())
    for severity in range(SEVERITY_CRITICAL + 1)
    for stale in (False, True)
}
_RUNNING = frozenset({"observing", "reloading", "checking plan", "applying"})
"""Loop states of a pass under way (the header counts its seconds)."""
FULL_COLLECT_EVERY = 20
"""Frames between two full garbage collections (see ``_settle_heap``)."""


class PoolkeeperApp(App[None]):
    """Workers, accounts and passes of one inventory."""

    TITLE = "poolkeeper"
    COMMAND_PALETTE_BINDING = "colon"
    CSS = """
    #summary { height: auto; padding: 0 1; background: $boost; }
    #filter { dock: bottom; display: none; }
    #filter.shown { display: block; }
    ContentSwitcher { height: 1fr; }
    ContentSwitcher > * { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        # Help and quit first: a narrow terminal cuts the footer from the right.
        Binding("question_mark", "help", "help"),
        Binding("q", "quit", "quit"),
        Binding("1", "view('workers')", "workers"),
        Binding("2", "view('accounts')", "accounts"),
        Binding("3", "view('log')", "log"),
        Binding("4", "view('pools')", "pools"),
        Binding("exclamation_mark", "problems", "problems"),
        Binding("n", "next_problem", "next alert"),
        Binding("c", "copy", "copy", show=False),
        Binding("e", "edit", "edit", show=False),
        Binding("slash", "filter", "filter"),
        Binding("s", "sort", "sort"),
        Binding("S", "sort_reverse", "reverse", show=False),
        Binding("p", "plan", "plan"),
        Binding("a", "apply", "apply"),
        Binding("r", "reload", "reload"),
        Binding("escape", "clear_filter", "clear filter", show=False),
    ]

    def __init__(
        self,
        source: DataSource,
        *,
        readonly: bool = False,
        standalone: bool = False,
        notice: str | None = None,
        watch: Path | None = None,
    ) -> None:
        super().__init__()
        self.source = source
        self.readonly = readonly
        self.standalone = standalone
        """This process runs the loop itself (relays included): quitting asks first."""
        self.notice = notice
        """A line for the header (e.g. why this TUI only observes)."""
        self._watch = watch
        """Inventory directory to reload on change (standalone)."""
        self.frame: Frame | None = None
        self.loop_state = "starting"
        self.pass_seconds: float | None = None
        """Wall time of the last successful observe-and-plan (RPC and pRuntime latency)."""
        self.filter_text = ""
        self.problems_only = False
        """``!``: only rows with a warning or worse."""
        self.sort_column: str | None = None
        """Key of the column the rows are sorted by; None keeps inventory order."""
        self.sort_reverse = False
        self._records: dict[str, WorkerRow] = {}
        self._order: list[str] | None = None
        """All row keys in sort order (None: not computed for the current rows and sort)."""
        self._phase_counts: dict[str, int] = {}
        self._shown_keys: list[str] = []
        self._shown: dict[str, tuple[str, ...]] = {}
        self._account_shown: dict[str, tuple[str, ...]] = {}
        self._frames_since_collect = 0
        self.apply_progress: dict[str, bool | None] = {}
        """The last apply's actions: None while pending, then whether each succeeded."""
        self._applying: dict[str, Action] = {}
        self._busy = False
        self._reload_pending = False
        self._thread = threading.get_ident()
        self.condition_history = ConditionHistory()
        """Conditions and their transitions seen across passes (the drill-down)."""
        self.worker_files = WorkerFiles(getattr(source, "state_dir", None))
        self._row_cache = RowCache()
        self.last_error: str | None = None
        """Why the last pass failed (shown in the header until a pass succeeds)."""
        self._pass_started: float | None = None
        self.data_stale = False
        """The frame shown is older than the passes should make it: every row dimmed."""
        """The rows of the last frame with what they were built from (see ``RowCache``)."""
        self._summary_shape: tuple[int, int] | None = None
        """(line breaks, width) of the header when all its lines fit (see _paint_summary)."""

    # ---- layout

    def compose(self) -> ComposeResult:
        yield Static(id="summary")
        with ContentSwitcher(initial="workers"):
            yield BulkTable(id="workers", cursor_type="row", zebra_stripes=True)
            yield KeyedTable(id="accounts", cursor_type="row")
            yield EventLog(id="log", highlight=False)
            yield KeyedTable(id="pools", cursor_type="row", zebra_stripes=True)
        yield Input(placeholder="filter (any column; Enter keeps, Esc clears)", id="filter")
        yield Footer()

    def on_resize(self, event: events.Resize) -> None:
        """Below 120 columns the footer is compact and drops the palette hint."""
        footer = self.query_one(Footer)
        footer.compact = event.size.width < 120
        footer.show_command_palette = event.size.width >= 120

    async def on_mount(self) -> None:
        self._thread = threading.get_ident()
        workers = self.query_one("#workers", DataTable)
        for key, label in WORKER_COLUMNS:
            workers.add_column(label, key=key)
        accounts = self.query_one("#accounts", DataTable)
        for key, label in ACCOUNT_COLUMNS:
            accounts.add_column(label, key=key)
        pools = self.query_one("#pools", DataTable)
        for key, label in POOL_COLUMNS:
            pools.add_column(label, key=key)
        self.set_interval(1.0, self._paint_summary)  # the data age
        workers.focus()
        desired = getattr(self.source, "desired", None)
        if isinstance(desired, Desired) and self.frame is None:
            self._records = unobserved_records(desired)
            self._adopt_records()
        self._paint_summary()
        if isinstance(self.source, SnapshotSource):
            await self._load()
        elif isinstance(self.source, AttachedSource):
            self.run_worker(self._follow(self.source), group="stream")
        else:
            self.action_refresh()
            interval = getattr(self.source, "interval", 30.0)
            self.set_interval(interval, self.action_refresh)
        if self._watch is not None:
            self.run_worker(self._watch_inventory(self._watch), group="watch")

    @property
    def workers_table(self) -> BulkTable:
        return self.query_one("#workers", BulkTable)

    # ---- data

    def log_event(self, message: str) -> None:
        """Append to the event log; callable from any thread."""
        if threading.get_ident() != self._thread:
            self.call_from_thread(self.log_event, message)
            return
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        try:
            log = self.query_one("#log", Log)
        except NoMatches:  # shutting down: the widgets are gone
            return
        log.write_line(f"{stamp} {message}")

    async def _follow(self, source: AttachedSource) -> None:
        """Attached: the snapshot, then a frame per pass the loop streams."""
        try:
            frame = await source.current()
        except (OSError, ValueError) as error:
            self.loop_state = "detached"
            self.log_event(f"cannot attach: {_describe(error)}")
            self._paint_summary()
            return
        self.loop_state = "attached"
        if frame is not None:
            self.show_frame(frame)
        self._paint_summary()

        def show(frame: Frame) -> None:
            self.loop_state = "attached"
            self.show_frame(frame)

        try:
            await source.follow(show, self.log_event, self._paint_summary, self.record_result)
        except Exception as error:  # a stream this version cannot read: say so, keep running
            self.log_event(f"stopped following the loop: {_describe(error)}")
        self.loop_state = "detached"
        self._paint_summary()

    async def _watch_inventory(self, directory: Path) -> None:
        """Standalone: reload whenever an inventory file changes."""
        from watchfiles import awatch

        async for _ in awatch(directory):
            self.log_event("inventory changed on disk: reloading")
            self.action_reload()

    async def _load(self, *, reload: bool = False) -> None:
        self.loop_state = "reloading" if reload else "observing"
        started = self._pass_started = time.monotonic()
        self._paint_summary()
        try:
            if reload and hasattr(self.source, "reload"):
                frame = await self.source.reload()
                self.log_event("inventory reloaded")
            else:
                frame = await self.source.refresh()
        except InventoryError as error:
            self.loop_state = "error"
            self.log_event("inventory invalid; keeping the previous one:")
            for problem in error.problems:
                self.log_event("  " + problem)
            self.notify("the inventory is invalid (log: 3)", severity="error")
        except Exception as error:  # any failed pass is shown and the next one retried
            self.loop_state = "error"
            self._pass_failed(_describe(error))
        else:
            self.loop_state = "idle"
            self.last_error = None
            self.pass_seconds = time.monotonic() - started
            self.show_frame(frame)
        self._pass_started = None
        self._paint_summary()

    def _pass_failed(self, description: str) -> None:
        """Log the failure; the header keeps it until a pass succeeds; notify once."""
        self.log_event(f"pass failed: {description}")
        if self.last_error is None:
            self.notify(f"pass failed: {description}", severity="error", timeout=10)
        self.last_error = description

    def action_refresh(self, reload: bool = False) -> None:
        if self._busy:
            if reload:
                self._reload_pending = True
            return
        self._busy = True

        async def run() -> None:
            try:
                await self._load(reload=reload)
            finally:
                self._busy = False
            if self._reload_pending:
                self._reload_pending = False
                self.action_refresh(reload=True)

        self.run_worker(run(), group="data")

    def action_reload(self) -> None:
        """``r``: read the inventory again (the attached loop reloads it) and observe."""
        self.action_refresh(reload=hasattr(self.source, "reload"))

    def show_frame(self, frame: Frame) -> None:
        """Adopt a new frame: update rows by key, log the pass."""
        with gc_paused():
            self._show_frame(frame)
        self._settle_heap()

    def _show_frame(self, frame: Frame) -> None:
        self.frame = frame
        plan = frame.plan
        self.log_event(
            f"pass at #{frame.observed.head.best_number}: {len(plan.actions)} action(s), "
            f"{len(plan.waits)} wait(s), {len(plan.alerts)} alert(s), {len(plan.drift)} drift"
        )
        for message in frame.messages:
            self.log_event("  " + message)
        if frame.conditions is not None:
            self.condition_history.note(frame.conditions)
        before = self._records
        self._records = worker_records(frame, self._row_cache)
        changed = self._row_cache.changed
        was_stale, self.data_stale = self.data_stale, self._is_old(frame)
        if changed is not None and len(before) == len(self._records) and not was_stale:
            self._adopt_changes(before, changed)
        else:
            self._adopt_records()
        self._sync_accounts()
        self._sync_pools()
        self._paint_summary()
        if isinstance(self.screen, DrillDownScreen):
            self.screen.show(frame)  # the drill-down follows the passes

    def _adopt_records(self) -> None:
        """Show ``_records``: phase counts, column widths, row styles, rows."""
        counts: dict[str, int] = {}
        for key, record in self._records.items():
            if not key.startswith("worker/"):
                counts[record.phase] = counts.get(record.phase, 0) + 1
        self._phase_counts = counts
        self._order = None
        table = self.workers_table
        table.set_widths(table.measure_widths(r.values for r in self._records.values()))
        self._restyle()
        self._sync_workers()

    def _restyle(self) -> None:
        """Every row's style: its severity, dimmed when its data (or the frame) is old."""
        old = self.data_stale
        self.workers_table.set_row_styles(
            {
                key: ROW_STYLES[r.severity, r.stale or old]
                for key, r in self._records.items()
                if r.severity in SEVERITY_STYLES or r.stale or old
            }
        )

    def _is_old(self, frame: Frame | None) -> bool:
        """Whether ``frame`` is older than two intervals (plus 30 s): passes are failing."""
        if frame is None or getattr(self.source, "static", False):
            return False
        age = (datetime.now(UTC) - frame.observed.read_at).total_seconds()
        return age > 2 * getattr(self.source, "interval", 30.0) + 30

    def _adopt_changes(self, before: dict[str, WorkerRow], changed: list[str]) -> None:
        """Show ``_records`` when only the ``changed`` rows were rebuilt (the same keys as
        ``before``): counts, widths, styles and cells of those rows only. Columns then
        only widen; a rebuild of all rows (new inventory) fits them again."""
        records = self._records
        if self.data_stale or any(key not in before for key in changed):
            self._adopt_records()
            return
        counts = self._phase_counts
        styles: dict[str, Style] | None = None
        restyled: list[str] = []
        table = self.workers_table
        for key in changed:
            old, new = before[key], records[key]
            if not key.startswith("worker/") and old.phase != new.phase:
                counts[old.phase] -= 1
                counts[new.phase] = counts.get(new.phase, 0) + 1
                if not counts[old.phase]:
                    del counts[old.phase]
            if (old.severity, old.stale) != (new.severity, new.stale):
                styles = dict(table.row_styles) if styles is None else styles
                restyled.append(key)
                if new.severity in SEVERITY_STYLES or new.stale:
                    styles[key] = ROW_STYLES[new.severity, new.stale]
                else:
                    styles.pop(key, None)
        if changed:
            wider = table.measure_widths(records[k].values for k in changed)
            current = [c.content_width for c in table.ordered_columns]
            if any(w > c for w, c in zip(wider, current, strict=False)):
                table.set_widths([max(w, c) for w, c in zip(wider, current, strict=False)])
        if styles is not None:
            table.set_row_styles(styles, restyled)
        if self.sort_column is not None:
            self._order = None  # sorted by values that may have changed
        self._sync_workers(changed)

    def _settle_heap(self) -> None:
        """Keep the cyclic garbage collector off the frame just adopted.

        At 10,000 workers a frame is about a million objects; Python's full collections
        walked all of them during filter keystrokes and sorts (100-250 ms pauses). Frozen
        objects are still freed by reference counting when the next frame replaces them;
        only cycles among them wait for the full collection done every
        ``FULL_COLLECT_EVERY`` frames."""
        self._frames_since_collect += 1
        if self._frames_since_collect >= FULL_COLLECT_EVERY:
            self._frames_since_collect = 0
            gc.unfreeze()
            gc.collect()
        gc.freeze()

    def _ordered(self) -> list[str]:
        """All row keys in the current sort order (computed once per frame and sort)."""
        if self._order is None:
            column = self.sort_column
            if column is None:
                self._order = list(self._records)
            else:
                self._order = sorted_keys(
                    self._records, column, COLUMN_INDEX[column], reverse=self.sort_reverse
                )
        return self._order

    def _sync_workers(self, changed: list[str] | None = None) -> None:
        """Show the rows the filter keeps in sort order: one rebuild when the shown keys
        or their order change, otherwise only the changed cells, patched by key (of the
        ``changed`` rows only, when the caller knows which)."""
        table = self.workers_table
        records = self._records
        text = self.filter_text + (" problem" if self.problems_only else "")
        if (
            changed is not None
            and not text
            and self.sort_column is None
            and len(self._shown_keys) == len(records)
        ):
            visible = self._shown_keys  # all rows, inventory order: the same keys
        else:
            visible = matching([(k, records[k]) for k in self._ordered()], text)
        shown = self._shown
        if visible == self._shown_keys:
            changes: list[tuple[str, int, str]] = []
            for key in visible if changed is None else [k for k in changed if k in shown]:
                new = records[key].values
                old = shown[key]
                if old is new or old == new:
                    continue
                changes.extend(
                    (key, i, value)
                    for i, (was, value) in enumerate(zip(old, new, strict=True))
                    if was != value
                )
                shown[key] = new
            if changes:
                table.patch(changes)
            return
        values = {key: records[key].values for key in visible}
        table.replace_rows(visible, values, [c.content_width for c in table.ordered_columns])
        self._shown_keys = visible
        self._shown = values

    def _sync_pools(self) -> None:
        """The per-pool summary: a few dozen rows, rebuilt whole, only while it is the
        view shown (measuring its cells on every pass cost more than the worker patch)."""
        if self.query_one(ContentSwitcher).current != "pools":
            return
        table = self.query_one("#pools", DataTable)
        cursor = table.cursor_row
        table.clear()
        for key, values in pool_rows(self._records).items():
            table.add_row(*values, key=key)
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1))

    def _sync_accounts(self) -> None:
        """The accounts' rows, only while their view is shown (grouping a plan of 10,000
        workers' lines by account took ~4 ms of every status update)."""
        if self.frame is None or self.query_one(ContentSwitcher).current != "accounts":
            return
        rows = account_rows(self.frame)
        table = self.query_one("#accounts", DataTable)
        for key in [k for k in self._account_shown if k not in rows]:
            table.remove_row(key)
            del self._account_shown[key]
        for key, values in rows.items():
            before = self._account_shown.get(key)
            if before is None:
                table.add_row(*values, key=key)
            elif before != values:
                for (column, _), old, new in zip(ACCOUNT_COLUMNS, before, values, strict=True):
                    if old != new:
                        table.update_cell(key, column, new)
            self._account_shown[key] = values

    def _paint_summary(self) -> None:
        text = Text()
        text.append(f"poolkeeper · {self.source.label}", style="bold")
        if self.readonly:
            text.append(" · READ-ONLY", style="bold yellow")
        text.append(f" · loop: {self.loop_state}", style="bold red" if self.last_error else "")
        if self._pass_started is not None and self.loop_state in _RUNNING:
            elapsed = time.monotonic() - self._pass_started
            deadline = getattr(self.source, "pass_timeout", None)
            limit = f" of {deadline:g} s deadline" if deadline else ""
            text.append(f" ({int(elapsed)} s{limit})")
        if isinstance(self.source, AttachedSource) and self.loop_state == "attached":
            text.append(f" ({self.source.loop_state() or '?'})")
        if getattr(self.source, "secret_loaded", None) is False:
            text.append(" · NO MASTER SECRET: signing actions will fail", style="bold red")
        ha = self.source.ha() if isinstance(self.source, AttachedSource) else None
        if ha:
            text.append(*_ha_text(ha))
        if self.apply_progress:
            results = list(self.apply_progress.values())
            settled = sum(1 for r in results if r is not None)
            failed = sum(1 for r in results if r is False)
            verb = "applying" if self.loop_state == "applying" else "last apply"
            text.append(f" · {verb}: {settled}/{len(results)} done", style="bold")
            if failed:
                text.append(f", {failed} failed", style="bold red")
        if self.frame is not None:
            read_at = self.frame.observed.read_at
            if getattr(self.source, "static", False):  # a saved snapshot: its date
                text.append(f" · observed {read_at:%Y-%m-%d %H:%M:%S}Z")
            else:
                age = (datetime.now(UTC) - read_at).total_seconds()
                stale = self._is_old(self.frame)
                text.append(f" · data age {_age(age)}", style="bold red" if stale else "")
                if stale != self.data_stale:  # passes stopped succeeding (or resumed)
                    self.data_stale = stale
                    self._restyle()
        if self.pass_seconds is not None and not isinstance(self.source, SnapshotSource):
            text.append(f" · last pass {self.pass_seconds:.1f} s")
        if self.notice:
            text.append(f"\n{self.notice}", style="yellow")
        if self.last_error:
            text.append(f"\nlast pass failed: {self.last_error}", style="bold red")
            if self.data_stale:
                text.append(" · rows dimmed: their data is old", style="red")
        frame = self.frame
        if frame is None:
            text.append("\nno observation yet (the event log, 3, says why)")
        else:
            head = frame.observed.head
            text.append(f" · chain best #{head.best_number} finalized #{head.finalized_number}")
            plan = frame.plan
            text.append(
                f"\nplan: {len(plan.actions)} action(s), {len(plan.waits)} wait(s), "
                f"{len(plan.alerts)} alert(s)"
            )
            counts = ", ".join(f"{k} {v}" for k, v in sorted(self._phase_counts.items()))
            text.append(f" · phases: {counts or 'no workers'}")
        shown = len(self._shown)
        text.append(f"\nworkers shown: {shown}/{len(self._records)}")
        if self.filter_text:
            text.append(f" · filter: {self.filter_text!r}")
        if self.problems_only:
            text.append(" · problems only (!)", style="bold")
        if self.sort_column is not None:
            label = WORKER_COLUMNS[COLUMN_INDEX[self.sort_column]][1].strip() or "glyph"
            text.append(f" · sort: {label} {'▼' if self.sort_reverse else '▲'}")
        try:
            summary = self.query_one("#summary", Static)
        except NoMatches:  # shutting down (the once-a-second repaint may still fire)
            return
        # Its height is its line count while every line fits: then no layout pass (which
        # re-arranged and repainted the whole screen on every status update).
        width = summary.content_region.width
        fits = width > 0 and all(cell_len(line) <= width for line in text.plain.split("\n"))
        shape = (text.plain.count("\n"), width) if fits else None
        summary.update(text, layout=shape is None or shape != self._summary_shape)
        self._summary_shape = shape

    # ---- actions

    def action_view(self, name: str) -> None:
        self.query_one(ContentSwitcher).current = name
        if name == "pools":
            self._sync_pools()
        elif name == "accounts":
            self._sync_accounts()
        elif name == "log":
            self.query_one("#log", EventLog).flush()
        self.query_one(f"#{name}").focus()

    def action_problems(self) -> None:
        """``!``: show only workers with a warning or worse, or all again."""
        self.problems_only = not self.problems_only
        with gc_paused():
            self._sync_workers()
        self._paint_summary()

    def action_next_problem(self) -> None:
        """``n``: move the cursor to the next shown worker with a warning or worse."""
        self.action_view("workers")
        table = self.workers_table
        keys = self._shown_keys
        if not keys:
            return
        start = table.cursor_row
        for step in range(1, len(keys) + 1):
            index = (start + step) % len(keys)
            if self._records[keys[index]].severity >= SEVERITY_WARN:
                table.move_cursor(row=index)
                return
        self.notify("no alert among the workers shown")

    def _selected_worker(self) -> str | None:
        key = self.workers_table.cursor_key()
        return key if key in self._records else None

    def action_copy(self) -> None:
        """``c``: copy the address under the cursor (an account's, or a worker's pubkey)."""
        value: str | None = None
        if self.query_one(ContentSwitcher).current == "accounts":
            table = self.query_one("#accounts", DataTable)
            if table.row_count:
                value = str(table.get_row_at(table.cursor_row)[COLUMN_INDEX_ACCOUNT_ADDRESS])
                value = None if value.startswith("(") else value
        else:
            name = self._selected_worker()
            frame = self.frame
            spec = frame.desired.workers_by_name.get(name or "") if frame else None
            if spec is not None and frame is not None:
                prt, _ = join_worker(spec, frame.observed)
                info = prt.info if prt else None
                value = spec.pubkey or (info.public_key if info else None)
        if not value:
            self.notify("no address known for this row", severity="warning")
            return
        self.copy_to_clipboard(value)
        self.notify(f"copied {value}")

    def action_edit(self) -> None:
        """``e``: open the file declaring the worker under the cursor in ``$EDITOR``, at
        its line."""
        name = self._selected_worker()
        frame = self.frame
        desired = frame.desired if frame else getattr(self.source, "desired", None)
        spec = desired.workers_by_name.get(name or "") if isinstance(desired, Desired) else None
        directory = getattr(self.source, "directory", None)
        if spec is None or spec.source is None or directory is None:
            self.notify("no inventory file known for this row", severity="warning")
            return
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
        if not editor:
            self.notify(f"set $EDITOR to open {spec.source} (from {directory})", severity="warning")
            return
        path = Path(directory) / spec.source.file
        command = [*shlex.split(editor), f"+{spec.source.line}", str(path)]
        try:
            with self.suspend():
                self.run_editor(command)
        except SuspendNotSupported:
            self.notify("this terminal cannot hand over to an editor", severity="warning")
        except OSError as error:
            self.notify(f"cannot start {editor}: {error}", severity="error")

    def run_editor(self, command: list[str]) -> None:
        """Run the editor in the foreground (tests replace it)."""
        subprocess.run(command, check=False)

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("shown")
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        with gc_paused():
            self._sync_workers()
        self._paint_summary()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.input.remove_class("shown")
        self.workers_table.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.remove_class("shown")
        if box.value:
            box.value = ""  # Input.Changed resyncs the table
        self.workers_table.focus()

    def action_sort(self) -> None:
        """``s``: sort by the next column (ascending); after the last one, inventory order."""
        if self.sort_column is None:
            self._set_sort(SORTABLE[0], reverse=False)
        else:
            index = COLUMN_INDEX[self.sort_column] + 1
            self._set_sort(SORTABLE[index] if index < len(SORTABLE) else None, reverse=False)

    def action_sort_reverse(self) -> None:
        """``S``: reverse the current sort (by worker name when none)."""
        if self.sort_column is None:
            self._set_sort("name", reverse=True)
        else:
            self._set_sort(self.sort_column, reverse=not self.sort_reverse)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        """A click on a header: ascending, then descending, then inventory order."""
        if event.data_table.id != "workers":
            return
        column = str(event.column_key.value)
        if column != self.sort_column:
            self._set_sort(column, reverse=False)
        elif not self.sort_reverse:
            self._set_sort(column, reverse=True)
        else:
            self._set_sort(None, reverse=False)

    def _set_sort(self, column: str | None, *, reverse: bool) -> None:
        self.sort_column = column
        self.sort_reverse = reverse
        self._order = None
        with gc_paused():
            self._sync_workers()
        self._paint_summary()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id != "workers" or self.frame is None:
            return
        key = event.row_key.value
        if key is not None:
            self.push_screen(DrillDownScreen(self.frame, key, self._live_detail))

    def _live_detail(self, frame: Frame, key: str) -> RenderableType:
        """The drill-down's live part for a row key (a worker name)."""
        return live_detail(frame, key, self.condition_history, self.worker_files)

    def action_plan(self) -> None:
        if self.frame is not None:
            self.push_screen(PlanScreen(self.frame.plan))

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_apply(self) -> None:
        if self.readonly:
            self.notify(
                "read-only: apply is disabled (started with --readonly)", severity="warning"
            )
            self.log_event("apply refused: read-only")
            return
        if not self.source.can_apply:
            self.notify(
                f"{self.source.label} data: there is nothing to apply to", severity="warning"
            )
            return
        frame = self.frame
        if frame is None or not frame.plan.actions:
            self.notify("nothing to apply: the plan has no actions")
            return
        changed = getattr(self.source, "inventory_changed", None)
        if changed is not None and changed():
            self.notify(
                "the inventory changed on disk since this plan: press r to reload and review",
                severity="warning",
            )
            self.log_event("apply refused: the inventory changed on disk since the plan")
            return
        confirmed = {a.id for a in frame.plan.actions if a.kind in DESTRUCTIVE_KINDS}

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._apply(confirmed, frame), group="data")
            else:
                self.log_event("apply cancelled")

        self.push_screen(ConfirmApply(frame.plan), answered)

    async def _apply(self, confirmed_destructive: set[str], approved: Frame) -> None:
        if self._busy:
            self.notify("a pass is running; try again in a moment")
            return
        self._busy = True
        self._pass_started = time.monotonic()
        try:
            self.loop_state = "checking plan"
            self._paint_summary()
            fresh = await self.source.refresh()
            if fresh.inventory_digest != approved.inventory_digest:
                self.show_frame(fresh)
                self.log_event("apply stopped: the inventory changed since the plan you approved")
                self.notify("the inventory changed: review the plan and apply again")
                return
            new = [
                a.id
                for a in fresh.plan.actions
                if a.kind in DESTRUCTIVE_KINDS and a.id not in confirmed_destructive
            ]
            if new:
                self.show_frame(fresh)
                self.log_event("apply stopped: new destructive actions appeared: " + ", ".join(new))
                self.notify("the plan changed (new destructive actions): review it and apply again")
                return
            self.loop_state = "applying"
            self._start_progress(approved)
            self._paint_summary()
            apply_approved = getattr(self.source, "apply_approved", None)
            if apply_approved is not None:
                # Only what the operator saw: the approved actions still planned unchanged.
                self.show_frame(await apply_approved(approved))
            else:
                self.show_frame(await self.source.apply())
            self.loop_state = "idle"
        except StaleInventory as error:
            self.loop_state = "idle"
            self.log_event(f"apply refused: {error}")
            self.notify(str(error), severity="warning")
        except Exception as error:  # shown in the log; the app keeps running
            self.loop_state = "error"
            self.log_event(f"apply failed: {_describe(error)}")
        finally:
            self._busy = False
            # Results the loop reports later belong to its own passes, not this apply.
            self._applying = {}
            self._pass_started = None
            self._paint_summary()

    def _start_progress(self, approved: Frame) -> None:
        """Every approved action pending: its row says so until its result arrives."""
        self._applying = {a.id: a for a in approved.plan.actions}
        self.apply_progress = dict.fromkeys(self._applying)
        if getattr(self.source, "on_result", False) is None:
            self.source.on_result = self.record_result  # type: ignore[attr-defined]
        self._mark_rows((a, f"applying {a.kind.value}…") for a in self._applying.values())

    def record_result(self, action_id: str, ok: bool, error: str | None) -> None:
        """One applied action's result: counted in the header, shown on its row."""
        if threading.get_ident() != self._thread:
            self.call_from_thread(self.record_result, action_id, ok, error)
            return
        action = self._applying.get(action_id)
        if action is None:
            return
        self.apply_progress[action_id] = ok
        verdict = "done" if ok else f"failed: {error}"
        self._mark_rows([(action, f"{action.kind.value}: {verdict}")])
        self._paint_summary()

    def _mark_rows(self, marks: Iterable[tuple[Action, str]]) -> None:
        """Write a note into the message cell of each action's worker row (until the next
        frame replaces it)."""
        message = COLUMN_INDEX["message"]
        changes: list[tuple[str, int, str]] = []
        for action, note in marks:
            if not action.target.startswith("worker/"):
                continue
            name = action.target.removeprefix("worker/")
            key = name if name in self._shown else action.target
            shown = self._shown.get(key)
            if shown is not None:
                changes.append((key, message, note))
                # What the table shows now: the next frame's message replaces the note.
                self._shown[key] = (*shown[:message], note, *shown[message + 1 :])
        if changes:
            self.workers_table.patch(changes)

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Workers", "Show the worker table", lambda: self.action_view("workers"))
        yield SystemCommand("Accounts", "Show balances", lambda: self.action_view("accounts"))
        yield SystemCommand("Event log", "Show pass messages", lambda: self.action_view("log"))
        yield SystemCommand("Plan preview", "Show the plan", self.action_plan)
        yield SystemCommand("Apply", "Apply the plan (asks first)", self.action_apply)
        yield SystemCommand("Reload", "Reload the inventory, observe now", self.action_reload)

    async def action_quit(self) -> None:
        """Quit; a standalone TUI running relays asks first (quitting stops them)."""
        relays_running = getattr(self.source, "relays_running", None)
        relays = relays_running() if self.standalone and relays_running else 0
        if isinstance(self.screen, ConfirmQuit):
            return
        if not relays:
            self.exit()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.log_event(f"quitting: stopping {relays} relay(s)")
                self.exit()

        self.push_screen(ConfirmQuit(relays), answered)

    async def on_unmount(self) -> None:
        await self.source.close()


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{max(0, int(seconds))} s"
    if seconds < 7200:
        return f"{int(seconds // 60)} min"
    return f"{seconds / 3600:.1f} h"


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a frame or a filter is applied: these allocate
    tens of thousands of short tuples, and each full collection walks every object of
    the frames (hundreds of milliseconds at 10,000 workers). Reference counting still
    frees everything; collections resume right after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _describe(error: Exception) -> str:
    if isinstance(error, PoolkeeperError | OSError | RuntimeError):
        return str(error) or type(error).__name__
    return f"{type(error).__name__}: {error}"


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="poolkeeper tui", description="poolkeeper's TUI")
    parser.add_argument("directory", nargs="?", default="inventory", type=Path)
    parser.add_argument("--observed", type=Path, help="show this snapshot instead of the chain")
    parser.add_argument("--readonly", action="store_true", help="never apply")
    parser.add_argument(
        "--standalone",
        action="store_true",
        help="run the loop in this process (relays included) instead of attaching to `run`",
    )
    return parser.parse_args(argv)


def _served(path: Path) -> bool:
    """Whether a live ``poolkeeper run`` accepts connections on ``path``."""
    if not path.exists():
        return False
    try:
        connect_socket(path).close()
    except OSError:
        return False
    return True


def build_app(argv: list[str]) -> PoolkeeperApp:
    """The app for ``poolkeeper tui`` arguments; ``PoolkeeperError`` when it cannot start.

    A ``poolkeeper run`` serving the state dir is attached to (no reconciler, no relays
    here); without one the TUI observes read-only, unless ``--standalone`` asks it to run
    the loop itself."""
    from poolkeeper.app import state_dir_of

    args = _parse(argv)
    desired = load_inventory(args.directory)
    if args.observed is not None:
        snapshot = SnapshotSource(desired, load_snapshot(args.observed))
        snapshot.directory = args.directory
        return PoolkeeperApp(snapshot, readonly=args.readonly)
    state_dir = state_dir_of(desired, args.directory)
    sock = socket_path(state_dir)
    served = _served(sock)
    if args.standalone:
        if served:
            raise PoolkeeperError(
                f"a `poolkeeper run` serves {state_dir}: start `poolkeeper tui` without "
                "--standalone to attach to it (two loops would run two sets of relays)"
            )
        live = LiveSource(args.directory, desired, readonly=args.readonly, label="standalone")
        app = PoolkeeperApp(live, readonly=args.readonly, standalone=True, watch=args.directory)
        live.progress = app.log_event
        return app
    if served:
        attached = AttachedSource(sock, desired, readonly=args.readonly)
        attached.directory = args.directory
        return PoolkeeperApp(attached, readonly=args.readonly)
    observer = LiveSource(args.directory, desired, readonly=True)
    notice = (
        f"no `poolkeeper run` serves {state_dir}: observing read-only "
        "(start `poolkeeper run`, or `poolkeeper tui --standalone` to run the loop here)"
    )
    app = PoolkeeperApp(observer, readonly=True, notice=notice)
    observer.progress = app.log_event
    return app


def run_tui(argv: list[str]) -> int:
    """Run the TUI until the user quits; 1 when the inventory or snapshot cannot be read."""
    try:
        app = build_app(argv)
    except InventoryError as error:
        print("\n".join(error.problems) + f"\n{len(error.problems)} problem(s)", file=sys.stderr)
        return 1
    except PoolkeeperError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    app.run()
    return 0


def _ha_text(ha: dict[str, Any]) -> tuple[str, str]:
    """The header's HA part: which shard this run owns (or not), since when, lease TTL;
    holding several shards, one word per shard (red as soon as one lease is lost)."""
    rows = ha.get("shards")
    if isinstance(rows, list) and len(rows) > 1:
        words = [
            f"{r.get('shard')} {'owner' if r.get('owner') else r.get('state', '?')}" for r in rows
        ]
        style = (
            "bold red"
            if any(r.get("state") == "fenced" for r in rows)
            else "bold green"
            if all(r.get("owner") for r in rows)
            else "yellow"
        )
        return f" · HA shards: {', '.join(words)}", style
    shard = ha.get("shard", "?")
    if ha.get("owner"):
        since = ha.get("since")
        when = f" since {datetime.fromtimestamp(float(since), UTC):%H:%M:%S}Z" if since else ""
        ttl = ha.get("lease_ttl_seconds")
        return f" · HA shard {shard}: owner{when}, lease {ttl}s", "bold green"
    if ha.get("state") == "fenced":
        problem = ha.get("last_problem") or "lease lost"
        return f" · HA shard {shard}: LEASE LOST ({problem}): not signing", "bold red"
    return f" · HA shard {shard}: {ha.get('state', '?')} (another process signs)", "yellow"
