"""Pydantic's validation errors rephrased for an operator editing YAML.

Pydantic says "Input should be 'computing', 'idle', ..."; an operator needs to read
what is wrong with *their* line and what would be right, in the inventory's words
(field names as written in YAML, amounts in PHA, lists of valid values).
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from poolkeeper.inventory._yaml import Loc

_QUOTED = re.compile(r"'([^']*)'")


def loc_text(prefix: str, loc: Loc) -> str:
    """``("chain", "endpoints", 0)`` under ``settings`` -> ``settings.chain.endpoints[0]``."""
    out = prefix
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def describe(value: Any) -> str:
    """A short, safe rendering of a YAML value for a message."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return repr(shown)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def suggest(word: str, choices: typing.Iterable[str]) -> str | None:
    """The closest valid word to a misspelt one, if any is close enough."""
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def field_names(model: type[BaseModel]) -> list[str]:
    """Field names as the inventory writes them (aliases), without internal ones."""
    names = []
    for name, info in model.model_fields.items():
        if name == "source":
            continue
        names.append(info.alias or name)
    return names


def model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``loc`` below ``model``."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            current = _element_type(current)
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        info = _field_by_yaml_name(current, part)
        if info is None:
            return None
        current = _unwrap(info)
    current = _unwrap_optional(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _field_by_yaml_name(model: type[BaseModel], name: str) -> Any:
    for field_name, info in model.model_fields.items():
        if (info.alias or field_name) == name:
            return info
    return None


def _unwrap(info: Any) -> Any:
    return _unwrap_optional(info.annotation)


def _unwrap_optional(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _unwrap_optional(args[0])
    if origin is typing.Annotated:
        return _unwrap_optional(typing.get_args(annotation)[0])
    return annotation


def _element_type(annotation: Any) -> Any:
    annotation = _unwrap_optional(annotation)
    args = typing.get_args(annotation)
    if not args:
        return None
    return _unwrap_optional(args[-1] if typing.get_origin(annotation) is dict else args[0])


def phrase(error: ErrorDetails, model: type[BaseModel], prefix: str) -> tuple[Loc, str, str]:
    """Turn one pydantic error into ``(loc, where to point, text)``.

    ``where`` is ``"key"`` (an unknown field), ``"parent"`` (a missing field: point at
    the mapping it belongs in) or ``"value"``.
    """
    loc: Loc = tuple(p for p in error["loc"] if isinstance(p, (str, int)))
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    here = loc_text(prefix, loc)
    if kind == "extra_forbidden":
        parent = loc_text(prefix, loc[:-1])
        owner = model_at(model, loc[:-1])
        valid = field_names(owner) if owner else []
        name = str(loc[-1]) if loc else "?"
        close = suggest(name, valid)
        hint = f"did you mean '{close}'?" if close else "valid fields: " + ", ".join(valid)
        return loc, "key", f"{parent}: unknown field '{name}' ({hint})"
    if kind == "missing":
        parent = loc_text(prefix, loc[:-1])
        return loc, "parent", f"{parent}: missing required field '{loc[-1]}'"
    if kind == "value_error":
        text = str(ctx.get("error") or error["msg"]).removeprefix("Value error, ")
        return loc, "value", f"{here}: {text}"
    if kind in ("enum", "literal_error"):
        choices = ", ".join(_QUOTED.findall(str(ctx.get("expected", ""))))
        return loc, "value", f"{here}: {describe(value)} is not one of {choices}"
    what = _EXPECTED.get(kind)
    if what is not None:
        hint = ""
        if kind == "string_type" and isinstance(value, (int, float, bool)):
            hint = " (put it in quotes to make it text)"
        return loc, "value", f"{here}: expected {what}, got {describe(value)}{hint}"
    if kind in _BOUNDS:
        bound = next(iter(ctx.values()), "?")
        return loc, "value", f"{here}: must be {_BOUNDS[kind]} {bound}, got {describe(value)}"
    return loc, "value", f"{here}: {error['msg'].lower()} (got {describe(value)})"


_EXPECTED = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "model_type": "a mapping of fields",
    "model_attributes_type": "a mapping of fields",
    "dict_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
    "string_too_short": "non-empty text",
}
_BOUNDS = {
    "greater_than": ">",
    "greater_than_equal": "≥",
    "less_than": "<",
    "less_than_equal": "≤",
}
