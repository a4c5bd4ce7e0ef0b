"""The argv template of an external relay (e.g. an official ``pherry``) and its placeholders.

The inventory names the command once (``settings.relay.external_command``) or per worker;
each argument may hold ``{placeholder}`` fields that poolkeeper fills in per worker. The
loader checks templates with ``template_problem`` so a typo is reported at its
``file:line:col``; the supervisor expands them with ``expand``. No placeholder ever
expands to a secret: the fee-paying key reaches the process only through the file named
by ``{key_file}`` or the ``POOLKEEPER_RELAY_SURI`` environment variable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

PLACEHOLDERS: dict[str, str] = {
    "endpoint": "the worker's pRuntime URL",
    "chain": "the node websocket URL (settings.chain.endpoints[0])",
    "relaychain": "the relay chain's websocket URL (settings.chain.relaychain_endpoints[0]; "
    "the node URL on a solo chain)",
    "operator": "SS58 address of the worker's pool owner",
    "worker": "the worker's name",
    "attestation_provider": "none, ias or dcap (settings.relay.attestation_provider)",
    "sync_blocks": "blocks per DispatchBlocks (settings.relay.sync_blocks)",
    "key_file": "path of a 0600 file holding the fee-paying signer's SURI",
    "work_dir": "a directory of the worker's own under the state dir",
}
"""Placeholder name → what it expands to."""

KEY_ENV = "POOLKEEPER_RELAY_SURI"
"""Environment variable holding the fee-paying signer's SURI in the relay's environment."""

_FIELD = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_SECRET_FLAGS = frozenset({"-m", "--mnemonic", "--inject-key", "--suri", "--seed"})


def placeholders_in(argument: str) -> list[str]:
    """The placeholder names used by one argument (``{{``/``}}`` are literal braces)."""
    return [m.group(1) for m in _FIELD.finditer(argument) if m.group(1) is not None]


def template_problem(argument: str) -> str | None:
    """Why one template argument is unusable, or ``None``."""
    for match in _FIELD.finditer(argument):
        text = match.group(0)
        if text in ("{{", "}}"):
            continue
        name = match.group(1)
        if name is None:
            return f"unbalanced {text!r} (write {text * 2!r} for a literal brace)"
        if name not in PLACEHOLDERS:
            known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            return f"unknown placeholder {{{name}}} (known: {known})"
    return None


def secret_literal_problem(template: tuple[str, ...], index: int) -> str | None:
    """Whether argument ``index`` is a key written in clear after a key flag (``-m X``,
    ``--mnemonic=X``). Never quotes the value. Well-known dev keys (``//Alice``) and
    values taken from the environment (``$VAR``) or a placeholder are fine."""
    argument = template[index]
    flag, equals, inline = argument.partition("=")
    if equals and flag in _SECRET_FLAGS:
        value = inline
    elif index > 0 and template[index - 1] in _SECRET_FLAGS:
        value = argument
    else:
        return None
    if not value or placeholders_in(value) or value.startswith(("$", "//")):
        return None
    return (
        "a key must not be written on the command line; hand it over through {key_file} "
        f"or the {KEY_ENV} environment variable (settings.relay.external_key)"
    )


def expand(template: tuple[str, ...], values: Mapping[str, str]) -> tuple[str, ...]:
    """Fill every placeholder; ``KeyError`` names one that has no value here."""

    def fill(match: re.Match[str]) -> str:
        text = match.group(0)
        if text in ("{{", "}}"):
            return text[0]
        name = match.group(1)
        if name is None:
            raise ValueError(f"unbalanced {text!r}")
        return values[name]

    return tuple(_FIELD.sub(fill, argument) for argument in template)
