"""Front ends installed apart from the core: found by entry point, never imported by name.

The TUI (``tui`` extra: textual) and the devnet (the ``poolkeeper-devnet`` distribution:
simulators, protobuf, PyNaCl) are not needed to keep pools, so ``pip install poolkeeper``
leaves them out. Each registers a callable ``(argv) -> exit code`` in the entry-point group
``poolkeeper.frontends``; the CLI looks it up here when its command is used. A front end
that is absent, or present without its own dependencies, becomes one line saying what to
install, never a traceback.

Fallback (docs/decisions.md): for the devnet, with no entry point registered, the module
the entry point would name is imported if it is on ``sys.path``. A source tree run with
``PYTHONPATH=src`` (the functional tests, a checkout without ``pip install``) thus finds
``poolkeeper_devnet`` beside ``poolkeeper``; an installed product without the devnet does not.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

GROUP = "poolkeeper.frontends"

FrontEnd = Callable[[Sequence[str]], int]


@dataclass(frozen=True)
class FrontEndSpec:
    """A front end the CLI may hand a command to."""

    name: str  # of the entry point
    label: str  # in messages
    target: str  # "module:function", as its entry point names it
    install: str  # what to run to get it
    fallback: bool  # with no entry point, import ``target`` if it is on sys.path


# The TUI ships in the product's wheel with its entry point: only textual may be missing.
TUI = FrontEndSpec(
    "tui", "TUI", "poolkeeper_tui.app:run_tui", "pip install 'poolkeeper[tui]'", fallback=False
)
DEVNET = FrontEndSpec(
    "devnet",
    "devnet",
    "poolkeeper_devnet.command:run_devnet",
    "pip install poolkeeper-devnet (from a clone: pip install -e src)",
    fallback=True,
)


class FrontEndMissing(Exception):
    """The front end, or a package it needs, is not installed; the message says what to do."""


def load_front_end(spec: FrontEndSpec) -> FrontEnd:
    """The front end's callable, from its entry point or (none registered) its module."""
    found = importlib.metadata.entry_points(group=GROUP, name=spec.name)
    module_name, _, attribute = spec.target.partition(":")
    if not found and not spec.fallback:
        raise FrontEndMissing(f"error: the {spec.label} front end is not installed: {spec.install}")
    try:
        if found:
            return cast(FrontEnd, next(iter(found)).load())
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise FrontEndMissing(_missing(spec, error.name or "")) from None
    if not hasattr(module, attribute):
        raise FrontEndMissing(
            f"error: {module_name} has no {attribute}; reinstall the {spec.label} front end: "
            f"{spec.install}"
        )
    return cast(FrontEnd, getattr(module, attribute))


def _missing(spec: FrontEndSpec, module: str) -> str:
    package = spec.target.split(".", 1)[0]
    if not module or module.split(".", 1)[0] == package:
        return f"error: the {spec.label} front end is not installed: {spec.install}"
    return (
        f"error: the {spec.label} front end needs the Python package {module!r}, "
        f"which is not installed: {spec.install}"
    )
