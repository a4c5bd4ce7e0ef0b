"""What the worker table shows, in which order: rows, field filters and sorting, without Textual.

The table widget only ever receives the result (ordered keys and cell values), so a
filter keystroke or a sort over 10,000 workers costs one pass over plain tuples here and
one bulk rebuild there, never thousands of single-row removals. Kept free of Textual so
the filter language and the sort order can be tested and benchmarked on their own.

Filter language (tokens separated by spaces, all must hold):

- ``pool:NAME``, ``phase:NAME``: the field equals NAME (case-insensitive; ``*``/``?`` glob);
- ``label:KEY=VALUE`` (``label:KEY`` has the label at all);
- ``drift``: something is planned, awaited or drifting (glyph other than ``=``);
- ``alert``: the worker has an alert (glyph ``!``); ``problem``: warn or worse;
- ``behind>10`` (also ``stake``, ``score``; operators ``< <= = >= >``);
- anything else: a substring of any cell.
"""

from __future__ import annotations

import fnmatch
import functools
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

SEVERITY_OK = 0
SEVERITY_PENDING = 1
SEVERITY_WARN = 2
SEVERITY_CRITICAL = 3


@dataclass(slots=True)
class WorkerRow:
    """One worker's cells plus the typed values filters and sorting need."""

    values: tuple[str, ...]
    pool: str = "-"
    phase: str = "-"
    labels: tuple[tuple[str, str], ...] = ()
    alert: bool = False
    drift: bool = False
    behind: int | None = None
    stake: int | None = None
    score: int | None = None
    severity: int = SEVERITY_OK
    stale: bool = False
    haystack: str = ""
    """Lower-case cells joined by tabs: what free text searches (made on first search)."""

    @property
    def numbers(self) -> dict[str, int | None]:
        return {"behind": self.behind, "stake": self.stake, "score": self.score}


_OPS: dict[str, Callable[[int, int], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
    "=": operator.eq,
}
_COMPARE = re.compile(r"^(behind|stake|score)(<=|>=|<|>|=)(-?\d*)$")
_PHA = 10**12

Predicate = Callable[[WorkerRow], bool]


def _text_match(wanted: str) -> Callable[[str], bool]:
    wanted = wanted.lower()
    if any(c in wanted for c in "*?["):
        return lambda value: fnmatch.fnmatchcase(value.lower(), wanted)
    return lambda value: value.lower() == wanted


def parse_filter(text: str) -> list[Predicate]:
    """The predicates of a filter line; an unfinished token (``pool:``, ``behind>``) is none."""
    predicates: list[Predicate] = []
    for token in text.split():
        low = token.lower()
        if low in ("drift", "alert", "problem"):
            predicates.append(
                {
                    "drift": lambda r: r.drift,
                    "alert": lambda r: r.alert,
                    "problem": lambda r: r.severity >= SEVERITY_WARN,
                }[low]
            )
            continue
        compare = _COMPARE.match(low)
        if compare:
            name, op, number = compare.groups()
            if not number or number == "-":
                continue
            limit = int(number) * (_PHA if name == "stake" else 1)

            predicates.append(_compare(name, _OPS[op], limit))
            continue
        name, colon, wanted = low.partition(":")
        if colon and name in ("pool", "phase", "label"):
            if wanted:
                predicates.append(_field(name, wanted))
            continue
        predicates.append(_contains(low))
    return predicates


def _compare(name: str, test: Callable[[int, int], bool], limit: int) -> Predicate:
    def check(row: WorkerRow) -> bool:
        value: int | None = getattr(row, name)
        return value is not None and test(value, limit)

    return check


def _contains(needle: str) -> Predicate:
    def check(row: WorkerRow) -> bool:
        haystack = row.haystack
        if not haystack:
            haystack = row.haystack = "\t".join(row.values).lower()
        return needle in haystack

    return check


def _field(name: str, wanted: str) -> Predicate:
    if name == "label":
        key, eq, value = wanted.partition("=")
        if not eq:
            return lambda row: any(k.lower() == key for k, _ in row.labels)
        match = _text_match(value)
        return lambda row: any(k.lower() == key and match(v) for k, v in row.labels)
    match = _text_match(wanted)
    if name == "pool":
        return lambda row: match(row.pool)
    return lambda row: match(row.phase)


def matching(rows: Iterable[tuple[str, WorkerRow]], text: str) -> list[str]:
    """Keys of the rows the filter keeps, in the order given."""
    predicates = parse_filter(text)
    if not predicates:
        return [key for key, _ in rows]
    if len(predicates) == 1:
        only = predicates[0]
        return [key for key, row in rows if only(row)]
    return [key for key, row in rows if all(p(row) for p in predicates)]


NUMERIC_COLUMNS = {"behind", "stake", "score"}
_DIGITS = re.compile(r"(\d+)")


@functools.lru_cache(maxsize=1 << 16)
def natural_key(text: str) -> tuple[object, ...]:
    """``w-2`` before ``w-10``: digit runs compare as numbers."""
    parts = _DIGITS.split(text.lower())
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts))


def sorted_keys(rows: dict[str, WorkerRow], column: str, index: int, *, reverse: bool) -> list[str]:
    """All keys ordered by ``column`` (numbers as numbers); rows without a value go last
    whichever the direction; ties keep inventory order."""
    missing: list[str] = []
    keyed: list[tuple[object, str]] = []
    if column in NUMERIC_COLUMNS:
        for key, row in rows.items():
            value = row.numbers[column]
            if value is None:
                missing.append(key)
            else:
                keyed.append((value, key))
    else:
        for key, row in rows.items():
            cell = row.values[index]
            if cell in ("-", ""):
                missing.append(key)
            else:
                keyed.append((natural_key(cell), key))
    keyed.sort(key=lambda pair: pair[0], reverse=reverse)  # type: ignore[arg-type, return-value]
    return [key for _, key in keyed] + missing


POOL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("pool", "pool"),
    ("workers", "workers"),
    ("computing", "computing"),
    ("critical", "critical"),
    ("warn", "warn"),
    ("pending", "pending"),
    ("stale", "stale"),
    ("behind", "max behind"),
    ("stake", "stake (PHA)"),
)


def pool_rows(rows: dict[str, WorkerRow]) -> dict[str, tuple[str, ...]]:
    """One row per pool (``-``: workers in none): how many workers, computing, in
    trouble, waiting for something, stale; the worst lag and the stake on chain."""
    tally: dict[str, list[int]] = {}
    for row in rows.values():
        t = tally.setdefault(row.pool, [0, 0, 0, 0, 0, 0, -1, 0])
        t[0] += 1
        t[1] += row.phase == "Computing"
        t[2] += row.severity == SEVERITY_CRITICAL
        t[3] += row.severity == SEVERITY_WARN
        t[4] += row.severity == SEVERITY_PENDING
        t[5] += row.stale
        if row.behind is not None:
            t[6] = max(t[6], row.behind)
        t[7] += row.stake or 0
    return {
        pool: (
            pool,
            str(t[0]),
            str(t[1]),
            str(t[2]),
            str(t[3]),
            str(t[4]),
            str(t[5]),
            "-" if t[6] < 0 else str(t[6]),
            f"{t[7] / _PHA:,.2f}",
        )
        for pool, t in sorted(tally.items(), key=lambda kv: natural_key(kv[0]))
    }
