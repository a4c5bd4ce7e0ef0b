"""YAML text to plain Python values, keeping the position of every node.

Why not ruamel's round-trip loader: on 10,000 workers it takes seconds (measured in
docs/benchmarks.md). The loader only needs values and positions, so it composes the
node graph (ruamel's C composer when ``ruamel.yaml.clib`` is installed, its pure-Python
composer otherwise; both give identical nodes with marks) and converts nodes itself.
The node graph is kept so an error can be placed on the exact key or value later.
Writing the inventory back (``accounts generate``) is a separate concern that uses
ruamel's round-trip mode to keep comments.

Secrets are screened here, before any value reaches a validator that could echo it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_CLoader: Any = None
try:  # the C composer is ten times faster; both build the same nodes
    from ruamel.yaml.cyaml import CSafeLoader

    _CLoader = CSafeLoader
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
_TIMESTAMP, _MAP, _SEQ, _MERGE = (_TAG + t for t in ("timestamp", "map", "seq", "merge"))
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


def node_problem(file: str, node: Node, text: str) -> Problem:
    mark = node.start_mark
    return Problem(file, mark.line + 1, mark.column + 1, text)


@dataclass
class Document:
    """One YAML document of one file: its root node and its converted value."""

    file: str
    root: Node
    value: Any


@dataclass
class _Converter:
    file: str
    problems: list[Problem] = field(default_factory=list)
    budget: int = MAX_NODES_PER_FILE
    _active: set[int] = field(default_factory=set)

    def convert(self, node: Node, key: str | None) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise _TooLarge
        if isinstance(node, ScalarNode):
            return self._scalar(node, key)
        ident = id(node)
        if ident in self._active:
            self.problems.append(
                node_problem(self.file, node, "an alias refers to itself (remove the cycle)")
            )
            return None
        self._active.add(ident)
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node)
            if isinstance(node, SequenceNode):
                if node.tag != _SEQ:
                    self._unsupported_tag(node)
                return [self.convert(item, None) for item in node.value]
        finally:
            self._active.discard(ident)
        return None  # pragma: no cover - the composer makes only these three kinds

    def _mapping(self, node: MappingNode) -> dict[str, Any]:
        if node.tag != _MAP:
            self._unsupported_tag(node)
        out: dict[str, Any] = {}
        seen: dict[str, Node] = {}
        merged: list[dict[str, Any]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merged.extend(self._merge_sources(value_node))
                continue
            if not isinstance(key_node, ScalarNode):
                self.problems.append(
                    node_problem(self.file, key_node, "a key must be plain text, not a list or map")
                )
                continue
            key = self._key_text(key_node)
            if key in seen:
                first = seen[key].start_mark
                self.problems.append(
                    node_problem(
                        self.file,
                        key_node,
                        f"key '{key}' is written twice in this mapping (first at line "
                        f"{first.line + 1}, column {first.column + 1}); keep one",
                    )
                )
                continue
            seen[key] = key_node
            out[key] = self.convert(value_node, key)
        for source in merged:
            for key, value in source.items():
                out.setdefault(key, value)
        return out

    def _merge_sources(self, node: Node) -> Iterator[dict[str, Any]]:
        sources = node.value if isinstance(node, SequenceNode) else [node]
        for source in sources:
            value = self.convert(source, None)
            if isinstance(value, dict):
                yield value
            else:
                self.problems.append(
                    node_problem(
                        self.file, source, "'<<' merges only mappings (write '<<: *anchor')"
                    )
                )

    def _key_text(self, node: ScalarNode) -> str:
        text = str(node.value)
        if _looks_like_mnemonic(text):
            self.problems.append(
                node_problem(self.file, node, f"this key looks like a mnemonic: {SECRET_HINT}")
            )
            return REDACTED
        return text

    def _scalar(self, node: ScalarNode, key: str | None) -> Any:
        tag, text = node.tag, node.value
        if tag in (_STR, _TIMESTAMP):
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
        self._unsupported_tag(node)
        return self._screen(node, key, text)

    def _screen(self, node: ScalarNode, key: str | None, text: str) -> str:
        lowered = key.lower() if key is not None else ""
        if lowered in _SECRET_KEYS and text.strip():
            self.problems.append(
                node_problem(self.file, node, f"'{key}' holds a secret: {SECRET_HINT}")
            )
            return REDACTED
        if _looks_like_mnemonic(text):
            self.problems.append(
                node_problem(self.file, node, f"this value looks like a mnemonic: {SECRET_HINT}")
            )
            return REDACTED
        if lowered not in _HEX_ALLOWED_KEYS and _HEX_SEED.fullmatch(text):
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


def _compose(text: str) -> list[Node]:
    if _CLoader is not None:
        loader = _CLoader(text)
        nodes: list[Node] = []
        while loader.check_node():
            nodes.append(loader.get_node())
        return nodes
    return list(YAML(typ="safe", pure=True).compose_all(text))


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
    try:
        roots = _compose(text)
    except YAMLError as error:
        return [], [_syntax_problem(file, text, error)]
    except RecursionError:
        return [], [Problem(file, 1, 1, "YAML nesting is too deep to read")]
    converter = _Converter(file)
    documents: list[Document] = []
    try:
        for root in roots:
            documents.append(Document(file, root, converter.convert(root, None)))
    except _TooLarge:
        return [], [
            Problem(file, 1, 1, "file expands to too many nodes (aliases nested too deep?)")
        ]
    except RecursionError:
        return [], [Problem(file, 1, 1, "YAML nesting is too deep to read")]
    return documents, converter.problems


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
