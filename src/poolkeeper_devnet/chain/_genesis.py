"""Genesis files (YAML or JSON) and the built-in presets.

Accounts may be written as ``//Alice``-style dev URIs, SS58 addresses or 0x hex;
amounts as plancks (int) or ``"<number> PHA"``. Everything is resolved to hex account
ids and integer plancks before the engine sees it; strings starting with ``//`` inside
pallet sections are resolved too.
"""

from __future__ import annotations

import functools
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import bip39
import sr25519
from ruamel.yaml import YAML
from scalecodec.utils.ss58 import ss58_decode

from poolkeeper_devnet.chain.pallets.phala import PALLETS, merge_phala_genesis
from poolkeeper_devnet.codec import blake2_256, encode_bytes

PHA = 10**12
PHALA_SECTIONS = tuple(cls.name for cls in PALLETS)
"""Top-level genesis keys passed as-is to the Phala pallet of that name."""
DEV_ACCOUNTS = ("Alice", "Bob", "Charlie", "Dave", "Eve", "Ferdie")

PRESETS: dict[str, dict[str, Any]] = {
    "dev": {
        "chain_name": "Khala Devnet",
        "parachain_id": 2035,
        "block_time": "1s",
        "finality_lag": 2,
        "cool_down_period": 604800,
        "balances": {f"//{name}": "1000000 PHA" for name in DEV_ACCOUNTS},
    },
    "demo": {
        "chain_name": "Khala Devnet",
        "parachain_id": 2035,
        "block_time": "1s",
        "finality_lag": 2,
        "cool_down_period": 60,
        "balances": {
            **{f"//{name}": "1000000 PHA" for name in DEV_ACCOUNTS},
            "//Operator": "10000000 PHA",
            "//Manager": "1000 PHA",
            "//Relayer": "1000 PHA",
        },
        "proxies": [
            {"real": "//Operator", "delegate": "//Manager", "proxy_type": "StakePoolManager"}
        ],
        "phala": {
            "benchmark_duration": 5,
            "pools": [
                {"owner": "//Operator", "free_stake": 100000 * PHA, "worker_count": 4},
            ],
        },
    },
}


class GenesisError(ValueError):
    """The genesis file is invalid; the message says where."""


def resolve_account(text: Any) -> str:
    """A hex AccountId32 from a dev URI, an SS58 address or hex."""
    if not isinstance(text, str):
        raise GenesisError(f"account must be a string, got {text!r}")
    if text.startswith("//"):
        return "0x" + dev_public_key(text).hex()
    if text.startswith("0x"):
        if len(text) != 66:
            raise GenesisError(f"hex account must be 32 bytes: {text}")
        return str(text.lower())
    try:
        return "0x" + str(ss58_decode(text))
    except ValueError as exc:
        raise GenesisError(f"not an account: {text}") from exc


DEV_PHRASE = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"
"""Substrate's well-known development mnemonic, the root of ``//Alice`` and friends."""


@functools.cache
def dev_public_key(uri: str) -> bytes:
    """The sr25519 public key of a dev URI made of hard junctions (``//Alice//stash``).

    Same derivation as Substrate's: the dev phrase's mini secret, then one hard
    derivation per junction with the junction's SCALE encoding as chain code.
    """
    junctions = uri.split("//")[1:]
    if uri[:2] != "//" or not all(junctions) or any("/" in j for j in junctions):
        raise GenesisError(f"only hard-junction dev URIs like //Alice are supported: {uri}")
    public, secret = sr25519.pair_from_seed(bytes(bip39.bip39_to_mini_secret(DEV_PHRASE, "")))
    for junction in junctions:
        if junction.isdigit():
            number = int(junction)
            code = number.to_bytes((number.bit_length() + 7) // 8, "little")
        else:
            code = encode_bytes(junction.encode())
            if len(code) > 32:
                code = blake2_256(code)
        _, public, secret = sr25519.hard_derive_keypair(
            (code.ljust(32, b"\0"), public, secret), b""
        )
    return bytes(public)


def resolve_amount(value: Any) -> int:
    if isinstance(value, bool):
        raise GenesisError(f"not an amount: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip().replace("_", "")
        if text.upper().endswith("PHA"):
            return int(Decimal(text[:-3].strip()) * PHA)
        if text.isdigit():
            return int(text)
    raise GenesisError(f"not an amount: {value!r}")


def _resolve_uris(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("//"):
        return resolve_account(value)
    if isinstance(value, dict):
        return {_resolve_uris(k): _resolve_uris(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_uris(v) for v in value]
    return value


def normalize(config: dict[str, Any]) -> dict[str, Any]:
    """Resolve accounts and amounts of a parsed genesis (starting from its ``preset``)."""
    if "preset" in config:
        preset = config["preset"]
        if preset not in PRESETS:
            raise GenesisError(f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
        config = {**PRESETS[preset], **{k: v for k, v in config.items() if k != "preset"}}
    result = dict(config)
    result["balances"] = {
        resolve_account(who): resolve_amount(amount)
        for who, amount in (config.get("balances") or {}).items()
    }
    proxies = []
    for entry in config.get("proxies") or []:
        proxies.append(
            {
                "real": resolve_account(entry["real"]),
                "delegate": resolve_account(entry["delegate"]),
                "proxy_type": entry.get("proxy_type", "Any"),
                "delay": int(entry.get("delay", 0)),
            }
        )
    result["proxies"] = proxies
    pallets = _resolve_uris(dict(config.get("pallets") or {}))
    for name in PHALA_SECTIONS:
        if name in config:
            pallets[name] = _resolve_uris(config[name])
    if config.get("phala"):
        pallets = merge_phala_genesis({**pallets, "phala": _resolve_uris(config["phala"])})
    computation = dict(pallets.get("PhalaComputation") or {})
    if "cool_down_period" in config:
        computation.setdefault("cool_down_period", int(config["cool_down_period"]))
    if computation:
        pallets["PhalaComputation"] = computation
    result["pallets"] = pallets
    return result


def load(source: str | Path | None) -> dict[str, Any]:
    """A preset name (``dev``, ``demo``), a YAML/JSON file, or None (= ``dev``)."""
    if source is None:
        return normalize(PRESETS["dev"])
    if isinstance(source, str) and source in PRESETS:
        return normalize(PRESETS[source])
    path = Path(source)
    try:
        text = path.read_text()
    except OSError as exc:
        raise GenesisError(f"cannot read genesis {path}: {exc.strerror}") from exc
    data: Any = json.loads(text) if path.suffix == ".json" else YAML(typ="safe").load(text)
    if not isinstance(data, dict):
        raise GenesisError(f"{path}: genesis must be a mapping")
    return normalize(data)
