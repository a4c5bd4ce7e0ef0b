"""A small builder of scale-info portable type registries from Rust-like type declarations.

The devnet's metadata must describe its types exactly as a real runtime does (same paths,
field names and variant indices as Khala) so that substrate-interface and the product decode
the devnet as they decode Khala. Writing that registry as nested dicts of numeric ids would be
unreadable, so the types are declared as short Rust-like strings (see `_types.py`) and this
module parses them, numbers them and encodes the registry and constant values in SCALE.

Declaration language:
- a type expression: `u32`, `Vec<u8>`, `[u8; 32]`, `(u64, Public)`, `()`, `Compact<u128>`,
  `Option<T>`, `Result<T, E>`, `BoundedVec<T>`, or a declared name with arguments
  `AccountInfo<u32, AccountData<u128>>`;
- a composite body: `"a: u32, b: Vec<u8>"` (named fields), `"u32"` / `"[u8; 32]"` (unnamed), `""`;
- a variant body: `"A, B(u32), C{x: u8}, D=6(Vec<u8>)"` (the index defaults to the position).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from poolkeeper_devnet.codec import encode_compact as compact

PRIMITIVES = (
    "bool",
    "char",
    "str",
    "u8",
    "u16",
    "u32",
    "u64",
    "u128",
    "u256",
    "i8",
    "i16",
    "i32",
    "i64",
    "i128",
    "i256",
)
_INT_BYTES = {"u8": 1, "u16": 2, "u32": 4, "u64": 8, "u128": 16, "u256": 32}
_SINT_BYTES = {"i8": 1, "i16": 2, "i32": 4, "i64": 8, "i128": 16, "i256": 32}


# ---------------------------------------------------------------------------- SCALE primitives


def text(s: str) -> bytes:
    raw = s.encode()
    return compact(len(raw)) + raw


def seq(items: Iterable[bytes]) -> bytes:
    parts = list(items)
    return compact(len(parts)) + b"".join(parts)


def option(value: bytes | None) -> bytes:
    return b"\x00" if value is None else b"\x01" + value


# ---------------------------------------------------------------------------- parsing

_TOKEN = re.compile(r"\s*(?:([A-Za-z_][\w.]*(?:::[A-Za-z_][\w.]*)*)|(\d+)|(.))")


def _tokens(source: str) -> list[str]:
    out: list[str] = []
    pos = 0
    source = source.strip()
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if m is None:  # pragma: no cover - the pattern matches any character
            raise ValueError(f"cannot tokenize {source!r}")
        out.append(m.group(0).strip())
        pos = m.end()
    return [t for t in out if t]


@dataclass(frozen=True)
class Expr:
    """A parsed type expression: `head` is a name, "tuple", "array" or "()"."""

    head: str
    args: tuple[Expr, ...] = ()
    length: int = 0

    def __str__(self) -> str:
        if self.head == "tuple":
            return "(" + ", ".join(map(str, self.args)) + ")"
        if self.head == "array":
            return f"[{self.args[0]}; {self.length}]"
        if self.args:
            return f"{self.head}<{', '.join(map(str, self.args))}>"
        return self.head


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.toks = _tokens(source)
        self.i = 0

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise ValueError(f"expected {expected or 'more'} in {self.source!r} at {tok!r}")
        self.i += 1
        return tok

    def done(self) -> None:
        if self.peek() is not None:
            raise ValueError(f"unexpected {self.peek()!r} in {self.source!r}")

    def expr(self) -> Expr:
        tok = self.take()
        if tok == "(":
            items: list[Expr] = []
            while self.peek() != ")":
                items.append(self.expr())
                if self.peek() == ",":
                    self.take(",")
            self.take(")")
            return Expr("tuple", tuple(items))
        if tok == "[":
            inner = self.expr()
            self.take(";")
            length = int(self.take())
            self.take("]")
            return Expr("array", (inner,), length)
        args: list[Expr] = []
        if self.peek() == "<":
            self.take("<")
            while True:
                args.append(self.expr())
                if self.peek() == ",":
                    self.take(",")
                    continue
                self.take(">")
                break
        return Expr(tok, tuple(args))

    def fields(self, closer: str | None) -> list[tuple[str | None, Expr]]:
        """`a: T, b: U` or `T, U` up to `closer` (or the end)."""
        out: list[tuple[str | None, Expr]] = []
        while self.peek() not in (closer, None):
            name: str | None = None
            if self.i + 1 < len(self.toks) and self.toks[self.i + 1] == ":":
                name = self.take()
                self.take(":")
            out.append((name, self.expr()))
            if self.peek() == ",":
                self.take(",")
        if closer is not None:
            self.take(closer)
        return out


def parse_expr(source: str) -> Expr:
    p = _Parser(source)
    e = p.expr()
    p.done()
    return e


def parse_fields(source: str) -> list[tuple[str | None, Expr]]:
    p = _Parser(source)
    out = p.fields(None)
    p.done()
    return out


@dataclass(frozen=True)
class VariantDecl:
    name: str
    index: int
    fields: tuple[tuple[str | None, Expr], ...]
    docs: tuple[str, ...] = ()


def parse_variants(source: str) -> list[VariantDecl]:
    p = _Parser(source)
    out: list[VariantDecl] = []
    position = 0
    while p.peek() is not None:
        name = p.take()
        index = position
        if p.peek() == "=":
            p.take("=")
            index = int(p.take())
        fields: list[tuple[str | None, Expr]] = []
        if p.peek() == "(":
            p.take("(")
            fields = p.fields(")")
        elif p.peek() == "{":
            p.take("{")
            fields = p.fields("}")
        out.append(VariantDecl(name, index, tuple(fields)))
        position = index + 1
        if p.peek() == ",":
            p.take(",")
    return out


# ---------------------------------------------------------------------------- declarations


@dataclass(frozen=True)
class Decl:
    """A named (pathed) type: a composite or a variant, possibly generic over `params`."""

    path: tuple[str, ...]
    params: tuple[str, ...]
    kind: str  # "composite" | "variant"
    fields: tuple[tuple[str | None, Expr], ...] = ()
    variants: tuple[VariantDecl, ...] = ()
    docs: tuple[str, ...] = ()


def _split_head(head: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    e = parse_expr(head)
    return tuple(e.head.split("::")), tuple(a.head for a in e.args)


def struct(head: str, body: str = "", docs: Sequence[str] = ()) -> Decl:
    """`struct("frame_system::AccountInfo<Index>", "nonce: Index, ...")`."""
    path, params = _split_head(head)
    return Decl(path, params, "composite", fields=tuple(parse_fields(body)), docs=tuple(docs))


def enum(head: str, body: str, docs: Sequence[str] = ()) -> Decl:
    """`enum("frame_system::Phase", "ApplyExtrinsic(u32), Finalization, Initialization")`."""
    path, params = _split_head(head)
    return Decl(path, params, "variant", variants=tuple(parse_variants(body)), docs=tuple(docs))


def enum_of(head: str, variants: Sequence[VariantDecl], docs: Sequence[str] = ()) -> Decl:
    path, params = _split_head(head)
    return Decl(path, params, "variant", variants=tuple(variants), docs=tuple(docs))


# ---------------------------------------------------------------------------- the registry


ResolvedField = tuple[str | None, int, str | None]  # (name, type id, type name)
ResolvedVariant = tuple[
    str, int, tuple[ResolvedField, ...], tuple[str, ...]
]  # name index fields docs


@dataclass
class Node:
    """One entry of the portable registry, with ids already resolved."""

    path: tuple[str, ...] = ()
    params: tuple[tuple[str, int | None], ...] = ()
    kind: str = ""  # composite variant sequence array tuple primitive compact
    fields: tuple[ResolvedField, ...] = ()
    variants: tuple[ResolvedVariant, ...] = ()
    inner: int = 0  # sequence / array / compact element
    length: int = 0
    items: tuple[int, ...] = ()
    primitive: str = ""
    docs: tuple[str, ...] = ()


# Generic types every runtime gets from scale-info itself, by the name used in expressions.
_BUILTIN_GENERICS: dict[str, Decl] = {
    "Option": enum("Option<T>", "None, Some(T)"),
    "Result": enum("Result<T, E>", "Ok(T), Err(E)"),
    "BoundedVec": struct("bounded_collections::bounded_vec::BoundedVec<T, S>", "Vec<T>"),
    "WeakBoundedVec": struct(
        "bounded_collections::weak_bounded_vec::WeakBoundedVec<T, S>", "Vec<T>"
    ),
    "Cow": struct("Cow<T>", "T"),
}


@dataclass
class Registry:
    """Assigns ids to type expressions in first-use order; `nodes[i]` is type `i`."""

    decls: Mapping[str, Decl]
    nodes: list[Node] = field(default_factory=list)
    _ids: dict[str, int] = field(default_factory=dict)

    def id_of(self, source: str | Expr, env: Mapping[str, int | None] | None = None) -> int:
        expr = parse_expr(source) if isinstance(source, str) else source
        return self._resolve(expr, env or {})

    def _key(self, expr: Expr, env: Mapping[str, int | None]) -> str:
        if expr.head in env and not expr.args:
            return f"#{env[expr.head]}"
        if expr.head == "tuple":
            return "(" + ",".join(self._key(a, env) for a in expr.args) + ")"
        if expr.head == "array":
            return f"[{self._key(expr.args[0], env)};{expr.length}]"
        if expr.args:
            return f"{expr.head}<" + ",".join(self._key(a, env) for a in expr.args) + ">"
        return expr.head

    def _reserve(self, key: str) -> tuple[int, bool]:
        if key in self._ids:
            return self._ids[key], False
        self._ids[key] = len(self.nodes)
        self.nodes.append(Node())
        return self._ids[key], True

    def _resolve(self, expr: Expr, env: Mapping[str, int | None]) -> int:
        if expr.head in env and not expr.args:
            bound = env[expr.head]
            if bound is None:
                raise ValueError(f"phantom parameter {expr.head} used as a type")
            return bound
        key = self._key(expr, env)
        tid, fresh = self._reserve(key)
        if not fresh:
            return tid
        node = self._build(expr, env)
        self.nodes[tid] = node
        return tid

    def _build(self, expr: Expr, env: Mapping[str, int | None]) -> Node:
        head, args = expr.head, expr.args
        if head == "tuple":
            return Node(kind="tuple", items=tuple(self._resolve(a, env) for a in args))
        if head == "array":
            return Node(kind="array", inner=self._resolve(args[0], env), length=expr.length)
        if head in PRIMITIVES and not args:
            return Node(kind="primitive", primitive=head)
        if head == "Vec":
            return Node(kind="sequence", inner=self._resolve(args[0], env))
        if head == "Compact":
            return Node(kind="compact", inner=self._resolve(args[0], env))
        decl = self.decls.get(head) or _BUILTIN_GENERICS.get(head)
        if decl is None:
            raise KeyError(f"unknown type {head!r}")
        if len(args) > len(decl.params):
            raise ValueError(f"{head} takes {len(decl.params)} parameters, got {expr}")
        bound: dict[str, int | None] = {}
        for i, pname in enumerate(decl.params):
            bound[pname] = self._resolve(args[i], env) if i < len(args) else None
        params = tuple(bound.items())
        if decl.kind == "composite":
            return Node(
                path=decl.path,
                params=params,
                kind="composite",
                fields=self._fields(decl.fields, bound),
                docs=decl.docs,
            )
        return Node(
            path=decl.path,
            params=params,
            kind="variant",
            variants=tuple(
                (v.name, v.index, self._fields(v.fields, bound), v.docs) for v in decl.variants
            ),
            docs=decl.docs,
        )

    def _fields(
        self, fields: Iterable[tuple[str | None, Expr]], env: Mapping[str, int | None]
    ) -> tuple[ResolvedField, ...]:
        return tuple((name, self._resolve(e, env), str(e)) for name, e in fields)

    # ------------------------------------------------------------------ SCALE of the registry

    def encode(self) -> bytes:
        return seq(_encode_node(i, n) for i, n in enumerate(self.nodes))

    # ------------------------------------------------------------------ SCALE of values

    def encode_value(self, tid: int, value: Any) -> bytes:
        """Encode `value` (scalecodec value shape) as type `tid`."""
        return _VALUE_ENCODERS[self.nodes[tid].kind](self, self.nodes[tid], value)

    def default_value(self, tid: int) -> Any:
        """What `Default::default()` gives for type `tid`: zeros, empties, the first variant."""
        n = self.nodes[tid]
        if n.kind == "primitive":
            return {"bool": False, "str": "", "char": "\0"}.get(n.primitive, 0)
        if n.kind == "compact":
            return 0
        if n.kind == "sequence":
            return []
        if n.kind == "array":
            return [self.default_value(n.inner)] * n.length
        if n.kind == "tuple":
            return [self.default_value(i) for i in n.items]
        if n.kind == "composite":
            if len(n.fields) == 1 and n.fields[0][0] is None:
                return self.default_value(n.fields[0][1])
            return {name: self.default_value(t) for name, t, _ in n.fields}
        if n.path == ("Option",):
            return None
        name, _index, fields, _docs = n.variants[0]
        if not fields:
            return name
        return {name: self.default_value(fields[0][1])}


_ValueEncoder = Callable[["Registry", Node, Any], bytes]


def _encode_fields(fields: tuple[ResolvedField, ...]) -> bytes:
    return seq(
        option(text(name) if name is not None else None)
        + compact(t)
        + option(text(type_name) if type_name is not None else None)
        + seq([])
        for name, t, type_name in fields
    )


_DEF_INDEX = {
    "composite": 0,
    "variant": 1,
    "sequence": 2,
    "array": 3,
    "tuple": 4,
    "primitive": 5,
    "compact": 6,
}


def _encode_node(tid: int, n: Node) -> bytes:
    head = (
        compact(tid)
        + seq(text(p) for p in n.path)
        + seq(text(name) + option(compact(t) if t is not None else None) for name, t in n.params)
    )
    body = bytes([_DEF_INDEX[n.kind]])
    if n.kind == "composite":
        body += _encode_fields(n.fields)
    elif n.kind == "variant":
        body += seq(
            text(name) + _encode_fields(fields) + bytes([index]) + seq(text(d) for d in docs)
            for name, index, fields, docs in n.variants
        )
    elif n.kind in ("sequence", "compact"):
        body += compact(n.inner)
    elif n.kind == "array":
        body += n.length.to_bytes(4, "little") + compact(n.inner)
    elif n.kind == "tuple":
        body += seq(compact(i) for i in n.items)
    else:
        body += bytes([PRIMITIVES.index(n.primitive)])
    return head + body + seq(text(d) for d in n.docs)


def _bytes_of(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str) and value.startswith("0x"):
        return bytes.fromhex(value[2:])
    if isinstance(value, str):
        return value.encode()
    return bytes(value)


def _is_u8(reg: Registry, tid: int) -> bool:
    n = reg.nodes[tid]
    return n.kind == "primitive" and n.primitive == "u8"


def _enc_primitive(reg: Registry, n: Node, value: Any) -> bytes:
    p = n.primitive
    if p == "bool":
        return b"\x01" if value else b"\x00"
    if p == "str":
        return text(str(value))
    if p in _INT_BYTES:
        return int(value).to_bytes(_INT_BYTES[p], "little")
    if p in _SINT_BYTES:
        return int(value).to_bytes(_SINT_BYTES[p], "little", signed=True)
    raise ValueError(f"cannot encode primitive {p}")


def _enc_compact(reg: Registry, n: Node, value: Any) -> bytes:
    return compact(int(value))


def _enc_sequence(reg: Registry, n: Node, value: Any) -> bytes:
    if _is_u8(reg, n.inner):
        raw = _bytes_of(value)
        return compact(len(raw)) + raw
    return seq(reg.encode_value(n.inner, v) for v in value)


def _enc_array(reg: Registry, n: Node, value: Any) -> bytes:
    if _is_u8(reg, n.inner):
        raw = _bytes_of(value)
        if len(raw) != n.length:
            raise ValueError(f"expected {n.length} bytes, got {len(raw)}")
        return raw
    return b"".join(reg.encode_value(n.inner, v) for v in value)


def _enc_tuple(reg: Registry, n: Node, value: Any) -> bytes:
    if not n.items:
        return b""
    return b"".join(reg.encode_value(t, v) for t, v in zip(n.items, value, strict=True))


def _enc_composite(reg: Registry, n: Node, value: Any) -> bytes:
    if len(n.fields) == 1 and n.fields[0][0] is None:
        return reg.encode_value(n.fields[0][1], value)
    if all(name is None for name, _, _ in n.fields):
        return b"".join(
            reg.encode_value(t, v) for (_, t, _), v in zip(n.fields, value, strict=True)
        )
    return b"".join(reg.encode_value(t, value[name]) for name, t, _ in n.fields)


def _enc_variant(reg: Registry, n: Node, value: Any) -> bytes:
    if n.path == ("Option",):  # scalecodec shape: None or the inner value
        some = n.variants[1][2][0][1]
        return b"\x00" if value is None else b"\x01" + reg.encode_value(some, value)
    inner: Any = None
    if isinstance(value, str):
        name = value
    else:
        ((name, inner),) = value.items()
    for vname, index, fields, _docs in n.variants:
        if vname != name:
            continue
        out = bytes([index])
        if len(fields) == 1 and fields[0][0] is None:
            return out + reg.encode_value(fields[0][1], inner)
        if fields and fields[0][0] is None:
            return out + b"".join(
                reg.encode_value(t, v) for (_, t, _), v in zip(fields, inner, strict=True)
            )
        return out + b"".join(reg.encode_value(t, inner[fname]) for fname, t, _ in fields)
    raise ValueError(f"no variant {name!r}")


_VALUE_ENCODERS: dict[str, _ValueEncoder] = {
    "primitive": _enc_primitive,
    "compact": _enc_compact,
    "sequence": _enc_sequence,
    "array": _enc_array,
    "tuple": _enc_tuple,
    "composite": _enc_composite,
    "variant": _enc_variant,
}
