"""YAML text to plain Python values, keeping the position of every node.

Why not ruamel's round-trip loader: on 10,000 workers it takes many seconds
(measured in docs/benchmarks.md), and even ruamel's node composer spends most of
its time building rich node objects. The loader only needs values and positions,
so it reads the parser's events (ruamel's C parser when ``ruamel.yaml.clib`` is
installed, its pure-Python parser otherwise; both emit the same events) into small
nodes of its own, resolving plain scalars with ruamel's YAML 1.2 resolver table,
then converts nodes to values. The nodes are kept so an error can be placed on the
exact key or value later. Writing the inventory back (``accounts generate``) is a
separate concern that uses ruamel's round-trip mode to keep comments.

Secrets are screened here, before any value reaches a validator that could echo it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from ruamel.yaml.resolver import Resolver

_CParser: Any = None
try:  # the C parser is several times faster; both emit the same events
    from _ruamel_yaml import CParser  # type: ignore[import-not-found]

    _CParser = CParser
except ImportError:  # pragma: no cover - depends on ruamel.yaml.clib being installed
    pass

REDACTED = "<redacted>"
SECRET_HINT = (
    "a secret must never be in the inventory (remove it; give the master secret through "
    "an environment variable, a 0600 file or the OS keyring, and treat this one as leaked "
    "if it was committed)"
)

_TAG = "tag:yaml.org,2002:"
_STR, _NULL, _BOOL, _INT, _FLOAT = (_TAG + t for t in ("str", "null", "bool", "int", "float"))
_MAP, _SEQ, _MERGE = (_TAG + t for t in ("map", "seq", "merge"))
_RESOLVED = frozenset({_NULL, _BOOL, _INT, _FLOAT, _MERGE})
"""Implicit tags the loader honours; timestamps and the rest stay text."""
_IMPLICIT: dict[str, list[tuple[str, Any]]] = {
    first: [(tag, regexp) for tag, regexp in pairs if tag in _RESOLVED]
    for first, pairs in Resolver.yaml_implicit_resolvers.items()
    if first is not None
}
_MNEMONIC_WORD = re.compile(r"[a-z]{3,8}")
_MNEMONIC_LENGTHS = frozenset({12, 15, 18, 21, 24})
_HEX_SEED = re.compile(r"(?:0x)?[0-9a-fA-F]{64}")
_SECRET_KEYS = frozenset(
    {"mnemonic", "seed", "secret", "private_key", "privkey", "password", "phrase", "suri"}
)
_HEX_ALLOWED_KEYS = frozenset({"pubkey"})
MAX_NODES_PER_FILE = 2_000_000
"""An alias bomb (``&a [*a, *a, ...]`` nested) would expand without bound; stop here."""


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the inventory, placed at ``file:line:col`` (1-based)."""

    file: str
    line: int
    col: int
    text: str

    def __str__(self) -> str:
        if self.line == 0:
            return f"{self.file}: {self.text}"
        return f"{self.file}:{self.line}:{self.col}: {self.text}"


class Node:
    """A composed YAML node: its resolved tag, its value and where it starts (0-based)."""

    __slots__ = ("col", "line", "tag", "value")

    def __init__(self, tag: str, value: Any, line: int, col: int) -> None:
        self.tag = tag
        self.value = value
        self.line = line
        self.col = col


class ScalarNode(Node):
    """``value`` is the scalar's text."""

    __slots__ = ()


class SequenceNode(Node):
    """``value`` is a list of nodes."""

    __slots__ = ()


class MappingNode(Node):
    """``value`` is a list of ``(key node, value node)`` pairs in written order."""

    __slots__ = ()


def node_problem(file: str, node: Node, text: str) -> Problem:
    return Problem(file, node.line + 1, node.col + 1, text)


@dataclass
class Document:
    """One YAML document of one file: its root node and its converted value."""

    file: str
    root: Node
    value: Any


_KEY_MERGE = object()
_KEY_BAD = object()
MAX_DEPTH = 64


class _Frame:
    """An open mapping or sequence while its events arrive."""

    __slots__ = ("key", "key_node", "merges", "node", "seen", "value", "weight")

    def __init__(self, node: Node, value: Any) -> None:
        self.node = node
        self.value = value
        self.key: Any = None
        self.key_node: Node | None = None
        self.seen: dict[str, Node] = {}
        self.merges: list[tuple[Node, Any]] = []
        self.weight = 1


class _Composer:
    """Events to nodes and values in one pass; problems are collected, not raised.

    Aliases share the anchored node and value; the ``weight`` of every container
    counts aliased nodes as often as they are used, so an alias bomb is stopped
    before a validator would expand it.
    """

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self.documents: list[Document] = []

    def run(self, next_event: Callable[[], Any]) -> None:
        stack: list[_Frame] = []
        anchors: dict[str, tuple[Node, Any, int]] = {}
        open_anchors: dict[int, str] = {}
        document: tuple[Node, Any] | None = None
        while True:
            event = next_event()
            kind = type(event)
            if kind is ScalarEvent:
                mark = event.start_mark
                tag = _scalar_tag(event)
                node: Node = ScalarNode(tag, event.value, mark.line, mark.column)
                parent = stack[-1] if stack else None
                if (
                    parent is not None
                    and parent.key_node is None
                    and isinstance(parent.node, MappingNode)
                ):
                    self._key(parent, node, tag)
                    if event.anchor is not None:
                        anchors[event.anchor] = (node, node.value, 1)
                    continue
                value = self._scalar(node, parent.key if parent is not None else None)
                if event.anchor is not None:
                    anchors[event.anchor] = (node, value, 1)
                document = self._attach(stack, node, value, 1) or document
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                mark = event.start_mark
                is_map = kind is MappingStartEvent
                tag = event.tag if event.tag not in (None, "!") else (_MAP if is_map else _SEQ)
                node = (MappingNode if is_map else SequenceNode)(
                    str(tag), [], mark.line, mark.column
                )
                if tag != (_MAP if is_map else _SEQ):
                    self._unsupported_tag(node)
                if len(stack) >= MAX_DEPTH:
                    raise _TooDeep(mark.line, mark.column)
                frame = _Frame(node, {} if is_map else [])
                parent = stack[-1] if stack else None
                if (
                    parent is not None
                    and isinstance(parent.node, MappingNode)
                    and parent.key_node is None
                ):
                    self.problems.append(
                        node_problem(self.file, node, "a key must be plain text, not a list or map")
                    )
                    parent.key_node, parent.key = node, _KEY_BAD
                    frame.key = _KEY_BAD
                if event.anchor is not None:
                    anchors.pop(event.anchor, None)
                    open_anchors[id(node)] = event.anchor
                stack.append(frame)
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                frame = stack.pop()
                if isinstance(frame.node, MappingNode):
                    self._merge(frame)
                anchor = open_anchors.pop(id(frame.node), None)
                if anchor is not None:
                    anchors[anchor] = (frame.node, frame.value, frame.weight)
                if frame.key is _KEY_BAD and stack and stack[-1].key is _KEY_BAD:
                    continue  # a complex key: its value is dropped when it arrives
                document = self._attach(stack, frame.node, frame.value, frame.weight) or document
            elif kind is AliasEvent:
                mark = event.start_mark
                found = anchors.get(event.anchor)
                if found is None:
                    if event.anchor in open_anchors.values():
                        self.problems.append(
                            Problem(
                                self.file,
                                mark.line + 1,
                                mark.column + 1,
                                "an alias refers to the node that contains it (remove the cycle)",
                            )
                        )
                        document = (
                            self._attach(
                                stack, ScalarNode(_NULL, "", mark.line, mark.column), None, 1
                            )
                            or document
                        )
                        continue
                    raise _UndefinedAlias(str(event.anchor), mark.line, mark.column)
                node, value, weight = found
                parent = stack[-1] if stack else None
                if (
                    parent is not None
                    and isinstance(parent.node, MappingNode)
                    and parent.key_node is None
                ):
                    self._key(parent, node, node.tag)
                    continue
                document = self._attach(stack, node, value, weight) or document
            elif kind is DocumentStartEvent:
                anchors.clear()
                open_anchors.clear()
                document = None
            elif kind is DocumentEndEvent:
                if document is not None:
                    self.documents.append(Document(self.file, document[0], document[1]))
                document = None
            elif kind is StreamEndEvent:
                return

    def _key(self, parent: _Frame, node: Node, tag: str) -> None:
        parent.key_node = node
        if tag == _MERGE:
            parent.key = _KEY_MERGE
        elif not isinstance(node, ScalarNode):
            self.problems.append(
                node_problem(self.file, node, "a key must be plain text, not a list or map")
            )
            parent.key = _KEY_BAD
        else:
            parent.key = self._key_text(node)

    def _attach(
        self, stack: list[_Frame], node: Node, value: Any, weight: int
    ) -> tuple[Node, Any] | None:
        if not stack:
            return node, value
        parent = stack[-1]
        parent.weight += weight
        if parent.weight > MAX_NODES_PER_FILE:
            raise _TooLarge
        if isinstance(parent.node, SequenceNode):
            parent.node.value.append(node)
            parent.value.append(value)
            return None
        key_node, key = parent.key_node, parent.key
        parent.key_node, parent.key = None, None
        assert key_node is not None
        parent.node.value.append((key_node, node))
        if key is _KEY_MERGE:
            parent.merges.append((node, value))
        elif key is _KEY_BAD:
            pass
        elif key in parent.seen:
            first = parent.seen[key]
            self.problems.append(
                node_problem(
                    self.file,
                    key_node,
                    f"key '{key}' is written twice in this mapping (first at line "
                    f"{first.line + 1}, column {first.col + 1}); keep one",
                )
            )
        else:
            parent.seen[key] = key_node
            parent.value[key] = value
        return None

    def _merge(self, frame: _Frame) -> None:
        for node, value in frame.merges:
            if isinstance(node, SequenceNode) and isinstance(value, list):
                pairs = list(zip(node.value, value, strict=True))
            else:
                pairs = [(node, value)]
            for source_node, source in pairs:
                if not isinstance(source, dict):
                    self.problems.append(
                        node_problem(
                            self.file,
                            source_node,
                            "'<<' merges only mappings (write '<<: *anchor')",
                        )
                    )
                    continue
                for key, item in source.items():
                    frame.value.setdefault(key, item)

    def _key_text(self, node: Node) -> str:
        text = str(node.value)
        if " " in text and _looks_like_mnemonic(text):
            self.problems.append(
                node_problem(self.file, node, f"this key looks like a mnemonic: {SECRET_HINT}")
            )
            return REDACTED
        return text

    def _scalar(self, node: Node, key: Any) -> Any:
        tag, text = node.tag, node.value
        if tag == _STR:
            return self._screen(node, key, text)
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return text.lower() == "true"
        if tag == _INT:
            whole = _yaml_int(text)
            return whole if whole is not None else text
        if tag == _FLOAT:
            number = _yaml_float(text)
            return number if number is not None else text
        if tag != _MERGE:
            self._unsupported_tag(node)
        return self._screen(node, key, text)

    def _screen(self, node: Node, key: Any, text: str) -> str:
        lowered = key.lower() if isinstance(key, str) else ""
        if lowered in _SECRET_KEYS and text.strip():
            self.problems.append(
                node_problem(self.file, node, f"'{key}' holds a secret: {SECRET_HINT}")
            )
            return REDACTED
        if text.count(" ") >= 11 and _looks_like_mnemonic(text):
            self.problems.append(
                node_problem(self.file, node, f"this value looks like a mnemonic: {SECRET_HINT}")
            )
            return REDACTED
        if len(text) in (64, 66) and lowered not in _HEX_ALLOWED_KEYS and _HEX_SEED.fullmatch(text):
            self.problems.append(
                node_problem(
                    self.file, node, f"this value looks like a raw 32-byte seed: {SECRET_HINT}"
                )
            )
            return REDACTED
        return text

    def _unsupported_tag(self, node: Node) -> None:
        self.problems.append(
            node_problem(
                self.file, node, f"tag '{node.tag}' is not supported here (remove the tag)"
            )
        )


class _TooLarge(Exception):
    pass


class _TooDeep(Exception):
    def __init__(self, line: int, col: int) -> None:
        self.line, self.col = line, col


class _UndefinedAlias(Exception):
    def __init__(self, anchor: str, line: int, col: int) -> None:
        self.anchor, self.line, self.col = anchor, line, col


def _looks_like_mnemonic(text: str) -> bool:
    if text.count(" ") < 11:
        return False
    words = text.split("/", 1)[0].split()
    return len(words) in _MNEMONIC_LENGTHS and all(_MNEMONIC_WORD.fullmatch(w) for w in words)


def _yaml_int(text: str) -> int | None:
    digits = text.replace("_", "")
    sign = -1 if digits.startswith("-") else 1
    digits = digits.lstrip("+-")
    try:
        for prefix, base in (("0b", 2), ("0o", 8), ("0x", 16)):
            if digits.startswith(prefix):
                return sign * int(digits[2:], base)
        return sign * int(digits, 10)
    except ValueError:
        return None


def _yaml_float(text: str) -> float | None:
    lowered = text.replace("_", "").lower()
    special = {".inf": "inf", "+.inf": "inf", "-.inf": "-inf", ".nan": "nan"}
    try:
        return float(special.get(lowered, lowered))
    except ValueError:
        return None


def _next_event(text: str) -> Callable[[], Any]:
    """A function returning the parser's next event; the last one is a StreamEndEvent."""
    if _CParser is None:
        return cast(Callable[[], Any], iter(YAML(typ="safe", pure=True).parse(text)).__next__)
    return cast(Callable[[], Any], _CParser(text).get_event)


def _scalar_tag(event: Any) -> str:
    tag = event.tag
    if tag is None and event.implicit[0]:
        text = event.value
        for resolved, regexp in _IMPLICIT.get(text[:1], ()):
            if regexp.match(text):
                return resolved
        return _STR
    if tag is None or tag == "!":
        return _STR
    return str(tag)


def _syntax_problem(file: str, text: str, error: YAMLError) -> Problem:
    """Place a parser error; never quote the offending line (it may hold a secret)."""
    if isinstance(error, MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        what = error.problem or "cannot parse"
        if error.context:
            what = f"{what} ({error.context})"
        return Problem(file, mark.line + 1, mark.column + 1, f"YAML syntax: {what}")
    position = getattr(error, "position", None)
    line, col = 1, 1
    if isinstance(position, int):
        before = text[:position]
        line = before.count("\n") + 1
        col = position - (before.rfind("\n") + 1) + 1
    reason = getattr(error, "reason", None) or "cannot parse"
    return Problem(file, line, col, f"YAML syntax: {reason}")


def read_documents(file: str, text: str) -> tuple[list[Document], list[Problem]]:
    """Compose and convert every document of one file; problems instead of exceptions."""
    composer = _Composer(file)
    try:
        composer.run(_next_event(text))
    except YAMLError as error:
        return [], [_syntax_problem(file, text, error)]
    except _UndefinedAlias as error:
        what = f"YAML: alias '*{error.anchor}' refers to no anchor '&{error.anchor}' above it"
        return [], [Problem(file, error.line + 1, error.col + 1, what)]
    except _TooDeep as error:
        what = f"YAML nesting deeper than {MAX_DEPTH} levels"
        return [], [Problem(file, error.line + 1, error.col + 1, what)]
    except _TooLarge:
        what = "file expands to too many nodes (aliases nested too deep?)"
        return [], [Problem(file, 1, 1, what)]
    except RecursionError:
        return [], [Problem(file, 1, 1, "YAML nesting is too deep to read")]
    return composer.documents, composer.problems


Loc = tuple[str | int, ...]


def locate(node: Node, loc: Loc) -> tuple[Node | None, Node, bool]:
    """Follow ``loc`` (keys and indexes) from ``node``.

    Returns ``(key node of the last step or None, deepest node reached, whether the
    whole path was found)``, so a message can point at a key, a value, or the
    mapping a missing field belongs in.
    """
    key_node: Node | None = None
    for part in loc:
        step = _child(node, part, set())
        if step is None:
            return key_node, node, False
        key_node, node = step
    return key_node, node, True


def _child(node: Node, part: str | int, seen: set[int]) -> tuple[Node | None, Node] | None:
    if id(node) in seen:
        return None
    seen.add(id(node))
    if isinstance(node, MappingNode) and isinstance(part, str):
        for key, value in node.value:
            if key.tag != _MERGE and isinstance(key, ScalarNode) and str(key.value) == part:
                return key, value
        for key, value in node.value:
            if key.tag == _MERGE:
                sources = value.value if isinstance(value, SequenceNode) else [value]
                for source in sources:
                    found = _child(source, part, seen)
                    if found is not None:
                        return found
    if isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        return None, node.value[part]
    return None
