"""A ``DataTable`` that takes its rows in bulk and colours them by severity.

Textual's ``DataTable`` measures every new cell with Rich and rebuilds its row index on
each ``remove_row``: cutting 10,000 rows to 1,000 one removal at a time took 31 s. This
table replaces all rows in one step (the order and cells computed by ``_table``), sizes
columns from the values' lengths (so a column widens to its longest value), and patches
single cells of a status delta in place with one repaint. It relies on ``DataTable``'s
internal fields (Textual 8); ``tests/tui`` covers what it depends on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Self

from rich.cells import set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual._two_way_dict import TwoWayDict
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.coordinate import Coordinate
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import DataTable, Log
from textual.widgets._data_table import ColumnKey, Row, RowKey

_ANSI = re.compile(r"\x1b\[[0-9;]*m")

MAX_COLUMN_WIDTH = 120
"""A longer value (an error message) is cut at the column's edge rather than widening it."""


class KeyedTable(DataTable[str]):
    """A ``DataTable`` that also moves with j/k/g/G."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "down", show=False),
        Binding("k", "cursor_up", "up", show=False),
        Binding("g", "scroll_top", "top", show=False),
        Binding("G", "scroll_bottom", "bottom", show=False),
    ]


class BulkTable(KeyedTable):
    """Rows replaced or patched in bulk; an optional style per row (severity, staleness)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.row_styles: dict[str, Style] = {}
        """Extra style of a row by key (colour by severity, dim when stale)."""
        self.rebuilds = 0
        """How many times all rows were replaced (tests and the benchmark read it)."""
        self._cells: dict[str, tuple[tuple[str, ...], RowKey, Row, dict[ColumnKey | str, str]]] = {}
        """Per row key: the values its cell dict was made from, its key, row and cells
        (reused while the values are the same object: a filter keystroke rebuilds
        nothing but the order)."""
        self._all_cells: dict[RowKey, dict[ColumnKey | str, str]] = {}
        """``DataTable._data``: the cells of every row ever shown, hidden ones included
        (only ``rows`` and the row order say what is shown)."""

    def cursor_key(self) -> str | None:
        """The key of the row under the cursor, if any."""
        if not self.rows:
            return None
        try:
            key = self._row_locations.get_key(self.cursor_row)
        except KeyError:
            return None
        return None if key is None else key.value

    def replace_rows(
        self,
        keys: Sequence[str],
        values: Mapping[str, tuple[str, ...]],
        widths: Sequence[int] | None = None,
    ) -> None:
        """Show exactly ``keys`` in this order, with their ``values``; one repaint.

        The cursor stays on the same row key when it is still shown."""
        keep = self.cursor_key()
        column_keys: list[ColumnKey] = [c.key for c in self.ordered_columns]
        rows: dict[RowKey, Row] = {}
        locations: dict[RowKey, int] = {}
        cells = self._cells
        all_cells = self._all_cells
        if len(cells) > 2 * len(values) + 1000:
            cells.clear()
            all_cells.clear()
        for index, key in enumerate(keys):
            row_values = values[key]
            cached = cells.get(key)
            if cached is None or cached[0] is not row_values:
                row_key = RowKey(key)
                cached = (
                    row_values,
                    row_key,
                    Row(row_key, 1),
                    dict(zip(column_keys, row_values, strict=True)),
                )
                cells[key] = cached
                all_cells[row_key] = cached[3]
            _, row_key, row, _ = cached
            rows[row_key] = row
            locations[row_key] = index
        self._clear_caches()
        self._data = all_cells  # type: ignore[assignment]
        self.rows = rows
        self._row_locations = TwoWayDict(locations)
        self._new_rows.clear()
        self._updated_cells.clear()
        self.set_widths(widths if widths is not None else self.measure_widths(values.values()))
        self._update_count += 1
        self.rebuilds += 1
        self._require_update_dimensions = True
        cursor = locations.get(RowKey(keep), 0) if keep is not None else 0
        self.cursor_coordinate = Coordinate(cursor, self.cursor_coordinate.column)
        self.check_idle()
        self.refresh()

    def measure_widths(self, rows: Iterable[tuple[str, ...]]) -> list[int]:
        """The widest value of each column (header labels included)."""
        widths = [c.label.cell_len for c in self.ordered_columns]
        for index, column in enumerate(zip(*rows, strict=False)):
            widths[index] = max(widths[index], *map(len, column))
        return widths

    def set_widths(self, widths: Sequence[int]) -> None:
        """Columns exactly as wide as their widest value (capped), growing or shrinking."""
        for column, width in zip(self.ordered_columns, widths, strict=False):
            column.content_width = min(width, MAX_COLUMN_WIDTH)
        self._require_update_dimensions = True

    def patch(self, changes: Iterable[tuple[str, int, str]]) -> int:
        """Set cells (row key, column index, value) in place; one repaint; the count set.

        A value longer than its column widens the column."""
        columns = self.ordered_columns
        count = 0
        widened = False
        keys: set[str] = set()
        last: str | None = None
        row: dict[ColumnKey, str] | None = None
        for key, index, value in changes:
            if key != last:  # a row's cells come together: one key lookup per row
                last = key
                row = self._data.get(RowKey(key))
                self._cells.pop(key, None)  # its cell dict no longer matches its values
            if row is None:
                continue
            column = columns[index]
            row[column.key] = value
            count += 1
            keys.add(key)
            width = min(len(value), MAX_COLUMN_WIDTH)
            if width > column.content_width:
                column.content_width = width
                widened = True
        if count:
            if widened:  # every row's layout changes
                self._forget_rendering()
                self._require_update_dimensions = True
                self.check_idle()
                self.refresh()
            else:
                self._repaint_rows(keys)
        return count

    def set_row_styles(
        self, styles: dict[str, Style], changed: Iterable[str] | None = None
    ) -> None:
        """Each row's extra style; ``changed``: the only rows whose style changed (their
        rendering alone is dropped), None: any row's may have."""
        if styles != self.row_styles:
            self.row_styles = styles
            if changed is None:
                self._forget_rendering()
                self.refresh()
            else:
                self._repaint_rows(set(changed))

    def _repaint_rows(self, keys: set[str]) -> None:
        """Drop the rendering of these rows only (shown or not: a row scrolled to later
        must not come from a cache) and repaint those on screen. A status delta of 1,000
        rows of 10,000 repaints the few on screen, not the whole window.

        The caches hold what was rendered (a few hundred entries for a screenful), so
        this costs their size and the screen's height, not the number of rows changed."""
        get_key = self._row_locations.get_key

        def changed(index: int) -> bool:
            key = get_key(index)
            return key is not None and key.value in keys

        header = self.header_height if self.show_header else 0
        _discard(self._row_render_cache, lambda k: k[0].value in keys)
        _discard(self._cell_render_cache, lambda k: k[0].value in keys)
        _discard(self._row_renderable_cache, lambda k: changed(k[1]))
        _discard(self._line_cache, lambda k: changed(k[0] - header))
        top = self.scroll_offset.y
        shown = [i for i in range(top, min(top + self.size.height, self.row_count)) if changed(i)]
        if len(shown) > self.size.height // 2:
            self.refresh()
        else:
            for index in shown:
                self.refresh_row(index)

    def _forget_rendering(self) -> None:
        """Drop rendered cells and lines but keep the row order's caches (rows and their
        heights did not change): bumping ``_update_count`` would rebuild the 10,000-row
        offset and order lists on the next paint."""
        self._row_render_cache.clear()
        self._cell_render_cache.clear()
        self._row_renderable_cache.clear()
        self._line_cache.clear()

    # Every row is one line high: positions are row indexes, with no list of 10,000
    # offsets or rows rebuilt after each change (DataTable sums row heights).

    @property
    def _y_offsets(self) -> _UnitOffsets:  # type: ignore[override]
        return _UnitOffsets(self)

    def _get_row_region(self, row_index: int) -> Region:
        # As DataTable's, without summing the heights of the rows above (nor building
        # the 10,000-row order list that takes): every row is one line.
        if not self.is_valid_row_index(row_index):
            return Region(0, 0, 0, 0)
        width = (
            sum(column.get_render_width(self) for column in self.columns.values())
            + self._row_label_column_width
        )
        y = row_index + (self.header_height if self.show_header else 0)
        return Region(0, y, max(self.size.width, width), 1)

    def _get_cell_region(self, coordinate: Coordinate) -> Region:
        if not self.is_valid_coordinate(coordinate):
            return Region(0, 0, 0, 0)
        region = super()._get_cell_region(Coordinate(0, coordinate.column))
        return region._replace(y=region.y + coordinate.row)

    def _render_cell(  # noqa: PLR0917 (DataTable's signature)
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> list[list[Segment]]:
        """A one-line text cell as one padded segment (Rich's layout path, markup parsing
        included, cost ~1.5 ms a row; the header and anything else still take it)."""
        if row_index < 0 or column_index < 0:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        if row_key is None or column_key is None:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        cache_key = (
            row_key,
            column_key,
            base_style,
            cursor,
            hover,
            self._show_hover_cursor,
            self._update_count,
            self._pseudo_class_state,
        )
        cached = self._cell_render_cache.get(cache_key)
        if cached is not None:
            return cached
        row = self.rows.get(row_key)
        value = self._data[row_key].get(column_key) if row is not None else None
        if row is None or row.height != 1 or not isinstance(value, str):
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        component, post = self._get_styles_to_render_cell(
            False,
            False,
            row_index < self.fixed_rows or column_index < self.fixed_columns,
            hover,
            cursor,
            self.show_cursor,
            self._show_hover_cursor,
            self.cursor_foreground_priority == "css",
            self.cursor_background_priority == "css",
        )
        style = (
            base_style
            + Style.from_meta({"row": row_index, "column": column_index})
            + component
            + post
        )
        pad = " " * self.cell_padding
        inner = max(0, width - 2 * self.cell_padding)
        lines = [[Segment(pad + set_cell_size(value, inner) + pad, style)]]
        self._cell_render_cache[cache_key] = lines
        return lines

    def _get_row_style(self, row_index: int, base_style: Style) -> Style:
        style = super()._get_row_style(row_index, base_style)
        if row_index < 0 or not self.row_styles:
            return style
        key = self._row_locations.get_key(row_index)
        extra = self.row_styles.get(key.value) if key is not None and key.value else None
        return style + extra if extra is not None else style


class EventLog(Log):
    """The event log; the lines written while it is hidden wait until it is shown.

    Writing a line sets the log's ``virtual_size``, which lays the whole screen out again:
    with the workers view shown, every status update (one line a pass) re-arranged and
    repainted everything instead of the few rows that changed."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._held: list[str] = []

    def write_line(self, line: str, scroll_end: bool | None = None) -> Self:
        if not self.display:
            self._held.append(line)
            return self
        return super().write_line(line, scroll_end)

    @property
    def lines(self) -> Sequence[str]:
        """Every line written, the held ones included."""
        self.flush()
        return super().lines

    def flush(self) -> None:
        """Write the held lines (the log is being shown, or read)."""
        if self._held:
            held, self._held = self._held, []
            self.write_lines(held)

    def on_show(self) -> None:
        self.flush()


class AnsiLines(ScrollView, can_focus=True):
    """Many lines of ANSI-coloured text (a plan of 10,000 workers), converted and rendered
    only when scrolled into view: opening it costs a split, not a layout of every line."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "scroll_up", "up", show=False),
        Binding("down,j", "scroll_down", "down", show=False),
        Binding("pageup", "page_up", "page up", show=False),
        Binding("pagedown,space", "page_down", "page down", show=False),
        Binding("home,g", "scroll_home", "top", show=False),
        Binding("end,G", "scroll_end", "bottom", show=False),
    ]

    def __init__(self, text: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lines = text.splitlines()
        self._texts: dict[int, Text] = {}
        width = max((len(_ANSI.sub("", line)) for line in self.lines), default=0)
        self.virtual_size = Size(width, len(self.lines))

    # Without animation: an animated page scroll renders every intermediate position.
    def action_page_down(self) -> None:
        self.scroll_page_down(animate=False)

    def action_page_up(self) -> None:
        self.scroll_page_up(animate=False)

    def action_scroll_home(self) -> None:
        self.scroll_home(animate=False)

    def action_scroll_end(self) -> None:
        self.scroll_end(animate=False)

    def plain(self, index: int) -> str:
        """Line ``index`` without colour (tests read it)."""
        return self._text(index).plain

    def _text(self, index: int) -> Text:
        text = self._texts.get(index)
        if text is None:
            if len(self._texts) > 4096:
                self._texts.clear()
            text = self._texts[index] = Text.from_ansi(self.lines[index], end="")
        return text

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        style = self.rich_style
        width = self.size.width
        if index >= len(self.lines):
            return Strip.blank(width, style)
        segments = list(self._text(index).render(self.app.console))
        strip = Strip(segments).apply_style(style)
        return strip.crop_extend(scroll_x, scroll_x + width, style)


def _discard(cache: LRUCache[Any, Any], stale: Callable[[Any], bool]) -> None:
    """Drop the entries whose key is ``stale`` (an ``LRUCache`` is not iterable itself)."""
    for key in [k for k in cache.keys() if stale(k)]:  # noqa: SIM118
        cache.discard(key)


class _UnitOffsets:
    """``DataTable._y_offsets`` for rows of height 1: (row key, 0) for line ``y``."""

    def __init__(self, table: BulkTable) -> None:
        self._table = table

    def __len__(self) -> int:
        return len(self._table.rows)

    def __getitem__(self, y: int) -> tuple[RowKey, int]:
        key = self._table._row_locations.get_key(y) if y >= 0 else None
        if key is None:
            raise IndexError(y)
        return key, 0

    def clear(self) -> None:
        return None
