"""Hand-written SCALE decoders for the storage values observe reads, checked against metadata.

scalecodec builds a tree of Python objects for every value it decodes (about 0.2 ms per
worker value); observing 10,000 workers decodes some 60,000 values. The few value types
observe reads (registry, computation and pool records, balances) are decoded here
directly, into exactly what scalecodec's ``.value`` would give (the chain adapter reads
both the same way).

A decoder is only used for a storage item whose type in the loaded metadata has exactly
the shape it reads: field names and order, primitive types, variant names and indices.
``StorageShapes.check`` compares them when the metadata is loaded; an item that differs
(after a runtime upgrade, say) is left to scalecodec, so a changed layout is never
misdecoded. A value a decoder cannot read to its last byte is also left to scalecodec.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from poolkeeper.model.scale import read_compact as _compact
from poolkeeper.model.ss58 import encode_address

# -- shapes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prim:
    """A primitive: ``u8``, ``u32``, ``u64``, ``u128`` or ``bool``."""

    name: str


@dataclass(frozen=True)
class Account:
    """``sp_core::crypto::AccountId32`` (decoded to SS58)."""


@dataclass(frozen=True)
class Bytes32:
    """A composite around ``[u8; 32]`` such as ``sr25519::Public`` (decoded to 0x hex)."""


@dataclass(frozen=True)
class Opt:
    inner: Shape


@dataclass(frozen=True)
class Vec:
    inner: Shape


@dataclass(frozen=True)
class Newtype:
    """A composite with one unnamed field (``Permill``, ``ExtraFlags``, ``BoundedVec``)."""

    inner: Shape


@dataclass(frozen=True)
class Struct:
    fields: tuple[tuple[str, Shape], ...]


@dataclass(frozen=True)
class Enum:
    """Variants as ``(index, name, shape of its one unnamed field or None)``.

    ``open``: the metadata may have more variants; the decoder gives those to scalecodec."""

    variants: tuple[tuple[int, str, Shape | None], ...]
    open: bool = False


@dataclass(frozen=True)
class Fieldless:
    """A variant type whose variants carry no fields; their names come from the metadata
    (``AttestationProvider`` gained ``Dcap`` after Khala's metadata was taken)."""


@dataclass(frozen=True)
class Unit:
    """The empty tuple ``()``."""


Shape = Prim | Account | Bytes32 | Opt | Vec | Newtype | Struct | Enum | Fieldless | Unit

U8, U32, U64, U128, BOOL = Prim("u8"), Prim("u32"), Prim("u64"), Prim("u128"), Prim("bool")
ACCOUNT, BYTES32 = Account(), Bytes32()

WORKER_INFO_V2 = Struct(
    (
        ("pubkey", BYTES32),
        ("ecdh_pubkey", BYTES32),
        ("runtime_version", U32),
        ("last_updated", U64),
        ("operator", Opt(ACCOUNT)),
        ("attestation_provider", Opt(Fieldless())),
        ("confidence_level", U8),
        ("initial_score", Opt(U32)),
        ("features", Vec(U32)),
    )
)
WORKER_STATES = ("Ready", "WorkerIdle", "_Unused", "WorkerUnresponsive", "WorkerCoolingDown")
SESSION_INFO = Struct(
    (
        ("state", Enum(tuple((i, name, None) for i, name in enumerate(WORKER_STATES)))),
        ("ve", U128),
        ("v", U128),
        ("v_updated_at", U64),
        (
            "benchmark",
            Struct(
                (
                    ("p_init", U32),
                    ("p_instant", U32),
                    ("iterations", U64),
                    ("working_start_time", U64),
                    ("challenge_time_last", U64),
                )
            ),
        ),
        ("cool_down_start", U64),
        ("stats", Struct((("total_reward", U128),))),
    )
)
BASE_POOL = Struct(
    (
        ("pid", U64),
        ("owner", ACCOUNT),
        ("total_shares", U128),
        ("total_value", U128),
        (
            "withdraw_queue",
            Vec(Struct((("user", ACCOUNT), ("start_time", U64), ("nft_id", U32)))),
        ),
        ("value_subscribers", Vec(U64)),
        ("cid", U32),
        ("pool_account_id", ACCOUNT),
    )
)
STAKE_POOL = Struct(
    (
        ("basepool", BASE_POOL),
        ("payout_commission", Opt(Newtype(U32))),
        ("cap", Opt(U128)),
        ("workers", Vec(BYTES32)),
        ("cd_workers", Vec(BYTES32)),
        ("lock_account", ACCOUNT),
        ("owner_reward_account", ACCOUNT),
    )
)
POOL_PROXY = Enum(((0, "StakePool", STAKE_POOL),), open=True)
ACCOUNT_INFO = Struct(
    (
        ("nonce", U32),
        ("consumers", U32),
        ("providers", U32),
        ("sufficients", U32),
        (
            "data",
            Struct(
                (
                    ("free", U128),
                    ("reserved", U128),
                    ("frozen", U128),
                    ("flags", Newtype(U128)),
                )
            ),
        ),
    )
)
ASSET_ACCOUNT = Struct(
    (
        ("balance", U128),
        ("is_frozen", BOOL),
        (
            "reason",
            Enum(
                (
                    (0, "Consumer", None),
                    (1, "Sufficient", None),
                    (2, "DepositHeld", U128),
                    (3, "DepositRefunded", None),
                )
            ),
        ),
        ("extra", Unit()),
    )
)

_ACCOUNT_PATH = ["sp_core", "crypto", "AccountId32"]


def type_matches(types: Mapping[int, Mapping[str, Any]], type_id: int, shape: Shape) -> bool:
    """Whether the portable-registry type ``type_id`` has exactly ``shape``.

    ``types`` maps ids to the registry's ``type`` records (``path``, ``def``)."""
    record = types.get(type_id)
    if record is None:
        return False
    definition: Mapping[str, Any] = record["def"]
    kind, body = next(iter(definition.items()))
    path = list(record.get("path") or [])
    match shape:
        case Prim(name):
            return kind == "primitive" and body == name
        case Account():
            return path == _ACCOUNT_PATH and _wraps_32_bytes(types, kind, body)
        case Bytes32():
            return path != _ACCOUNT_PATH and _wraps_32_bytes(types, kind, body)
        case Unit():
            return kind == "tuple" and list(body) == []
        case Vec(inner):
            return kind == "sequence" and type_matches(types, body["type"], inner)
        case Newtype(inner):
            fields = body["fields"] if kind == "composite" else None
            return (
                fields is not None
                and len(fields) == 1
                and fields[0].get("name") is None
                and type_matches(types, fields[0]["type"], inner)
            )
        case Struct(expected):
            if kind != "composite" or len(body["fields"]) != len(expected):
                return False
            return all(
                field.get("name") == name and type_matches(types, field["type"], inner)
                for field, (name, inner) in zip(body["fields"], expected, strict=True)
            )
        case Opt(inner):
            return path == ["Option"] and _variants_match(
                types, kind, body, ((0, "None", None), (1, "Some", inner)), open_=False
            )
        case Enum(variants, open_):
            return _variants_match(types, kind, body, variants, open_=open_)
        case Fieldless():
            return kind == "variant" and all(not v.get("fields") for v in body["variants"])


def fieldless_names(
    types: Mapping[int, Mapping[str, Any]], type_id: int, path: tuple[str, ...]
) -> dict[int, str]:
    """``{index: name}`` of the fieldless variant type reached from ``type_id`` by
    ``path``: field names, or ``"Some"`` to step into an ``Option``."""
    for step in path:
        body = types[type_id]["def"]
        if step == "Some":
            [some] = [v for v in body["variant"]["variants"] if v["name"] == "Some"]
            type_id = some["fields"][0]["type"]
        else:
            [field] = [f for f in body["composite"]["fields"] if f.get("name") == step]
            type_id = field["type"]
    return {v["index"]: v["name"] for v in types[type_id]["def"]["variant"]["variants"]}


def _wraps_32_bytes(types: Mapping[int, Mapping[str, Any]], kind: str, body: Any) -> bool:
    if kind != "composite" or len(body["fields"]) != 1 or body["fields"][0].get("name"):
        return False
    inner = types.get(body["fields"][0]["type"])
    if inner is None:
        return False
    inner_kind, array = next(iter(inner["def"].items()))
    return inner_kind == "array" and array["len"] == 32 and type_matches(types, array["type"], U8)


def _variants_match(
    types: Mapping[int, Mapping[str, Any]],
    kind: str,
    body: Any,
    expected: tuple[tuple[int, str, Shape | None], ...],
    *,
    open_: bool,
) -> bool:
    if kind != "variant":
        return False
    by_index = {v["index"]: v for v in body["variants"]}
    if not open_ and len(by_index) != len(expected):
        return False
    for index, name, inner in expected:
        variant = by_index.get(index)
        if variant is None or variant["name"] != name:
            return False
        fields = variant.get("fields") or []
        if inner is None:
            if fields:
                return False
        elif not (
            len(fields) == 1
            and fields[0].get("name") is None
            and type_matches(types, fields[0]["type"], inner)
        ):
            return False
    return True


# -- decoders ----------------------------------------------------------------------------


class Undecodable(ValueError):
    """The bytes do not fit the decoder (or name a variant it leaves to scalecodec)."""


DECODE_ERRORS = (ValueError, IndexError, struct.error)
"""What a decoder raises on bytes it cannot read; the caller then asks scalecodec."""


_ACCOUNT_CACHE = 65536
_SESSION = struct.Struct("<B QQ QQ Q IIQQQ Q QQ")
_ACCOUNT_INFO = struct.Struct("<IIII QQ QQ QQ QQ")
_WORKER_HEAD = struct.Struct("<32s32sIQ")


def _u128(data: bytes, pos: int) -> int:
    if pos + 16 > len(data):
        raise Undecodable("value ends inside a u128")
    return int.from_bytes(data[pos : pos + 16], "little")


def _end(data: bytes, pos: int) -> None:
    if pos != len(data):
        raise Undecodable(f"{len(data) - pos} bytes left over")


class Decoders:
    """Decoders of one metadata's value types, producing scalecodec's ``.value`` shapes."""

    def __init__(
        self, ss58_format: int | None, attestation_providers: Mapping[int, str] | None = None
    ) -> None:
        self._ss58_format = ss58_format
        self._providers = dict(attestation_providers or {0: "Root", 1: "Ias"})
        self.account = functools.lru_cache(maxsize=_ACCOUNT_CACHE)(self._account)
        self.raw_accounts: dict[str, bytes] = {}
        """``{address: account id}`` of the addresses decoded lately (to key them again
        without decoding SS58)."""

    def _account(self, raw: bytes) -> str:
        if self._ss58_format is None:
            return "0x" + raw.hex()
        address = encode_address(raw, self._ss58_format)
        if len(self.raw_accounts) >= _ACCOUNT_CACHE:
            self.raw_accounts.clear()
        self.raw_accounts[address] = raw
        return address

    def _option_account(self, data: bytes, pos: int) -> tuple[str | None, int]:
        flag = data[pos]
        if flag == 0:
            return None, pos + 1
        if flag != 1 or pos + 33 > len(data):
            raise Undecodable("bad Option<AccountId32>")
        return self.account(data[pos + 1 : pos + 33]), pos + 33

    def _bytes32(self, data: bytes, pos: int) -> str:
        if pos + 32 > len(data):
            raise Undecodable("value ends inside 32 bytes")
        return "0x" + data[pos : pos + 32].hex()

    def u32(self, data: bytes) -> int:
        if len(data) != 4:
            raise Undecodable("u32 is 4 bytes")
        return int.from_bytes(data, "little")

    def u64(self, data: bytes) -> int:
        if len(data) != 8:
            raise Undecodable("u64 is 8 bytes")
        return int.from_bytes(data, "little")

    def u128(self, data: bytes) -> int:
        if len(data) != 16:
            raise Undecodable("u128 is 16 bytes")
        return int.from_bytes(data, "little")

    def account_id(self, data: bytes) -> str:
        if len(data) != 32:
            raise Undecodable("AccountId32 is 32 bytes")
        return self.account(data)

    def public(self, data: bytes) -> str:
        if len(data) != 32:
            raise Undecodable("a public key is 32 bytes")
        return "0x" + data.hex()

    def worker_info(self, data: bytes) -> dict[str, Any]:
        pubkey, ecdh, runtime_version, last_updated = _WORKER_HEAD.unpack_from(data, 0)
        operator, pos = self._option_account(data, 76)
        flag = data[pos]
        if flag == 0:
            provider, pos = None, pos + 1
        elif flag == 1 and data[pos + 1] in self._providers:
            provider, pos = self._providers[data[pos + 1]], pos + 2
        else:
            raise Undecodable("bad attestation_provider")
        confidence_level = data[pos]
        flag = data[pos + 1]
        if flag == 0:
            initial_score, pos = None, pos + 2
        elif flag == 1:
            initial_score = int.from_bytes(data[pos + 2 : pos + 6], "little")
            pos += 6
        else:
            raise Undecodable("bad initial_score")
        count, pos = _compact(data, pos)
        end = pos + 4 * count
        if end > len(data):
            raise Undecodable("features run past the value")
        features = list(struct.unpack_from(f"<{count}I", data, pos))
        _end(data, end)
        return {
            "pubkey": "0x" + pubkey.hex(),
            "ecdh_pubkey": "0x" + ecdh.hex(),
            "runtime_version": runtime_version,
            "last_updated": last_updated,
            "operator": operator,
            "attestation_provider": provider,
            "confidence_level": confidence_level,
            "initial_score": initial_score,
            "features": features,
        }

    def session_info(self, data: bytes) -> dict[str, Any]:
        if len(data) != _SESSION.size:
            raise Undecodable(f"SessionInfo is {_SESSION.size} bytes")
        (
            state,
            ve_lo,
            ve_hi,
            v_lo,
            v_hi,
            v_updated_at,
            p_init,
            p_instant,
            iterations,
            working_start_time,
            challenge_time_last,
            cool_down_start,
            reward_lo,
            reward_hi,
        ) = _SESSION.unpack(data)
        if state >= len(WORKER_STATES):
            raise Undecodable("unknown WorkerState")
        return {
            "state": WORKER_STATES[state],
            "ve": ve_lo | (ve_hi << 64),
            "v": v_lo | (v_hi << 64),
            "v_updated_at": v_updated_at,
            "benchmark": {
                "p_init": p_init,
                "p_instant": p_instant,
                "iterations": iterations,
                "working_start_time": working_start_time,
                "challenge_time_last": challenge_time_last,
            },
            "cool_down_start": cool_down_start,
            "stats": {"total_reward": reward_lo | (reward_hi << 64)},
        }

    def pool_proxy(self, data: bytes) -> dict[str, Any]:
        if not data or data[0] != 0:
            raise Undecodable("not a StakePool (other variants go to scalecodec)")
        pool, pos = self._stake_pool(data, 1)
        _end(data, pos)
        return {"StakePool": pool}

    def _stake_pool(self, data: bytes, pos: int) -> tuple[dict[str, Any], int]:
        (pid,) = struct.unpack_from("<Q", data, pos)
        owner = self.account(data[pos + 8 : pos + 40])
        total_shares = _u128(data, pos + 40)
        total_value = _u128(data, pos + 56)
        count, pos = _compact(data, pos + 72)
        queue = []
        for _ in range(count):
            user = self.account(data[pos : pos + 32])
            start_time, nft_id = struct.unpack_from("<QI", data, pos + 32)
            queue.append({"user": user, "start_time": start_time, "nft_id": nft_id})
            pos += 44
        count, pos = _compact(data, pos)
        subscribers = list(struct.unpack_from(f"<{count}Q", data, pos))
        pos += 8 * count
        (cid,) = struct.unpack_from("<I", data, pos)
        pool_account = self.account(data[pos + 4 : pos + 36])
        pos += 36
        if len(data) < pos:
            raise Undecodable("BasePool runs past the value")
        flag = data[pos]
        if flag == 0:
            commission, pos = None, pos + 1
        elif flag == 1:
            (commission,) = struct.unpack_from("<I", data, pos + 1)
            pos += 5
        else:
            raise Undecodable("bad payout_commission")
        flag = data[pos]
        if flag == 0:
            cap, pos = None, pos + 1
        elif flag == 1:
            cap, pos = _u128(data, pos + 1), pos + 17
        else:
            raise Undecodable("bad cap")
        workers, pos = self._keys(data, pos)
        cd_workers, pos = self._keys(data, pos)
        if pos + 64 > len(data):
            raise Undecodable("StakePool runs past the value")
        lock_account = self.account(data[pos : pos + 32])
        owner_reward_account = self.account(data[pos + 32 : pos + 64])
        base = {
            "pid": pid,
            "owner": owner,
            "total_shares": total_shares,
            "total_value": total_value,
            "withdraw_queue": queue,
            "value_subscribers": subscribers,
            "cid": cid,
            "pool_account_id": pool_account,
        }
        pool = {
            "basepool": base,
            "payout_commission": commission,
            "cap": cap,
            "workers": workers,
            "cd_workers": cd_workers,
            "lock_account": lock_account,
            "owner_reward_account": owner_reward_account,
        }
        return pool, pos + 64

    def _keys(self, data: bytes, pos: int) -> tuple[list[str], int]:
        count, pos = _compact(data, pos)
        end = pos + 32 * count
        if end > len(data):
            raise Undecodable("a key list runs past the value")
        return ["0x" + data[p : p + 32].hex() for p in range(pos, end, 32)], end

    def account_info(self, data: bytes) -> dict[str, Any]:
        if len(data) != _ACCOUNT_INFO.size:
            raise Undecodable(f"AccountInfo is {_ACCOUNT_INFO.size} bytes")
        nonce, consumers, providers, sufficients, *halves = _ACCOUNT_INFO.unpack(data)
        free, reserved, frozen, flags = (halves[i] | (halves[i + 1] << 64) for i in range(0, 8, 2))
        return {
            "nonce": nonce,
            "consumers": consumers,
            "providers": providers,
            "sufficients": sufficients,
            "data": {"free": free, "reserved": reserved, "frozen": frozen, "flags": flags},
        }

    def asset_account(self, data: bytes) -> dict[str, Any]:
        if len(data) < 18 or data[16] > 1:
            raise Undecodable("bad AssetAccount head")
        reason_index = data[17]
        reason: Any
        if reason_index == 2:
            reason, end = {"DepositHeld": _u128(data, 18)}, 34
        elif reason_index < 4:
            reason, end = ("Consumer", "Sufficient", "", "DepositRefunded")[reason_index], 18
        else:
            raise Undecodable("unknown ExistenceReason")
        _end(data, end)
        return {
            "balance": _u128(data, 0),
            "is_frozen": bool(data[16]),
            "reason": reason,
            "extra": (),
        }


ValueDecoder = Callable[[Decoders, bytes], Any]

ITEMS: dict[tuple[str, str], tuple[Shape, ValueDecoder]] = {
    ("PhalaRegistry", "Workers"): (WORKER_INFO_V2, Decoders.worker_info),
    ("PhalaRegistry", "WorkerAddedAt"): (U32, Decoders.u32),
    ("PhalaComputation", "WorkerBindings"): (ACCOUNT, Decoders.account_id),
    ("PhalaComputation", "SessionBindings"): (BYTES32, Decoders.public),
    ("PhalaComputation", "Sessions"): (SESSION_INFO, Decoders.session_info),
    ("PhalaComputation", "Stakes"): (U128, Decoders.u128),
    ("PhalaStakePoolv2", "WorkerAssignments"): (U64, Decoders.u64),
    ("PhalaBasePool", "Pools"): (POOL_PROXY, Decoders.pool_proxy),
    ("System", "Account"): (ACCOUNT_INFO, Decoders.account_info),
    ("Assets", "Account"): (ASSET_ACCOUNT, Decoders.asset_account),
}
"""The storage items with a hand-written decoder: the value shape it reads, and it."""

KEY_SHAPES: dict[Shape, ValueDecoder] = {
    ACCOUNT: Decoders.account_id,
    BYTES32: Decoders.public,
    U64: Decoders.u64,
    U32: Decoders.u32,
}
"""Map key types whose hashed-key suffix (``Twox64Concat``/``Blake2_128Concat``) is
decoded here when listing a map."""


def fast_items(
    types: Mapping[int, Mapping[str, Any]], value_type_ids: Mapping[tuple[str, str], int]
) -> dict[tuple[str, str], ValueDecoder]:
    """The items of ``ITEMS`` whose value type in this metadata has the decoder's shape."""
    return {
        item: decoder
        for item, (shape, decoder) in ITEMS.items()
        if item in value_type_ids and type_matches(types, value_type_ids[item], shape)
    }
