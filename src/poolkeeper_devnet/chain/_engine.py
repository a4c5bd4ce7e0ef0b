"""The chain: transaction pool, extrinsic validation, block building, finality.

Single-threaded by design: the server calls it only from its event loop, so no locks.
Validation follows a node's order (format, signature over the signed payload with the
chain's genesis/spec/tx version/era hash, nonce, fees) and reports the node's JSON-RPC
error codes; dispatch is transactional per call (failed calls leave no state behind).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import nacl.exceptions
import nacl.signing
import sr25519

from poolkeeper_devnet.chain._generic_pallets import (
    Balances,
    ParachainInfo,
    Proxy,
    System,
    Timestamp,
    normalize_account,
    proxy_allows,
    proxy_type_name,
)
from poolkeeper_devnet.chain._jsonrpc import JsonRpcError
from poolkeeper_devnet.chain._runtime import Runtime, UnknownName
from poolkeeper_devnet.chain._storage import Storage
from poolkeeper_devnet.chain.pallets.base import (
    AccountHex,
    BadOrigin,
    DispatchError,
    Pallet,
    TokenError,
)
from poolkeeper_devnet.codec import (
    Era,
    Header,
    ScaleError,
    blake2_256,
    decode_compact,
    decode_era,
    encode_bytes,
    encode_compact,
    extrinsics_root,
    storage_prefix,
    u32,
    u64,
)

log = logging.getLogger("poolkeeper_devnet.chain")

BASE_FEE = 1_000_000_000
"""Fee of every signed extrinsic, in plancks (0.001 PHA) ..."""
PER_BYTE_FEE = 10_000_000
"""... plus this much per byte of the encoded extrinsic (0.00001 PHA)."""
CALL_WEIGHT = {"ref_time": 200_000_000, "proof_size": 10_000}
"""The weight every call reports (the devnet does not meter weight)."""
MAX_BLOCK_EXTRINSICS = 4000
GRANDPA_SEED = blake2_256(b"poolkeeper-devnet-grandpa-0")
PARENT_OF_GENESIS = b"\x00" * 32
DEV_ENGINE = "dev"

# JSON-RPC error codes of a Substrate node's author API
BAD_FORMAT = 1001
INVALID_TRANSACTION = 1010
UNKNOWN_VALIDITY = 1011
TEMPORARILY_BANNED = 1012
ALREADY_IMPORTED = 1013
TOO_LOW_PRIORITY = 1014

TOO_LOW_PRIORITY_DATA = (
    "The transaction has too low priority to replace another transaction already in the pool."
)
BAD_PROOF = "Transaction has a bad signature"
STALE = "Transaction is outdated"
PAYMENT = "Inability to pay some fees (e.g. account balance too low)"
ANCIENT = "Transaction has an ancient birth block"
CALL_NOT_EXPECTED = "Transaction call is not expected"


class TransactionError(JsonRpcError):
    """An extrinsic the pool refuses, with the node's JSON-RPC code/message/data."""

    def __init__(self, code: int, message: str, data: str | None = None) -> None:
        super().__init__(code, message, data)


def invalid(data: str) -> TransactionError:
    return TransactionError(INVALID_TRANSACTION, "Invalid Transaction", data)


@dataclass
class Extrinsic:
    raw: bytes
    hash: bytes
    signer: AccountHex
    era: Era
    nonce: int
    tip: int
    call: dict[str, Any]
    fee: int


@dataclass
class Block:
    header: Header
    hash: bytes
    extrinsics: list[bytes]
    changes: dict[bytes, bytes | None]
    justification: bytes | None = None

    @property
    def number(self) -> int:
        return self.header.number


@dataclass
class _Scope:
    snapshots: dict[str, object] = field(default_factory=dict)
    events: int = 0
    messages: int = 0


class _BlockContext:
    """The BlockContext the engine hands to pallets while a block is built."""

    def __init__(self, chain: Chain, number: int, timestamp_ms: int) -> None:
        self.chain = chain
        self.number = number
        self.timestamp_ms = timestamp_ms
        self.phase = b"\x02"  # Initialization
        self.events: list[bytes] = []
        self.messages: list[bytes] = []
        self.scopes: list[_Scope] = []

    def emit(self, pallet: str, event: str, *values: Any, **attributes: Any) -> None:
        try:
            encoded = self.chain.runtime.encode_event(pallet, event, values, attributes)
        except (UnknownName, ScaleError) as exc:
            log.error("dropping event %s.%s: %s", pallet, event, exc)
            return
        self.events.append(self.phase + encoded + b"\x00")

    def pallet(self, name: str) -> Pallet:
        pallet = self.chain.pallets.get(name)
        if pallet is None:
            raise DispatchError("System", "CallFiltered")
        self.touch(name, pallet)
        return pallet

    def touch(self, name: str, pallet: Pallet) -> None:
        for scope in self.scopes:
            if name not in scope.snapshots:
                scope.snapshots[name] = pallet.snapshot()

    def push_worker_message(self, sender: bytes, topic: bytes, payload: bytes) -> None:
        mq = self.chain.pallets.get("PhalaMq")
        push = getattr(mq, "push_outbound", None)
        if mq is not None and push is not None:
            self.touch("PhalaMq", mq)
            push(sender, topic, payload)
            return
        origin = b"\x00" + encode_bytes(sender)
        self.messages.append(origin + encode_bytes(topic) + encode_bytes(payload))

    def begin(self) -> None:
        self.scopes.append(_Scope(events=len(self.events), messages=len(self.messages)))

    def commit(self) -> None:
        self.scopes.pop()

    def rollback(self) -> None:
        scope = self.scopes.pop()
        for name, snapshot in scope.snapshots.items():
            self.chain.pallets[name].restore(snapshot)
        del self.events[scope.events :]
        del self.messages[scope.messages :]


TxListener = Callable[[bytes, Any], None]


class Chain:
    """One simulated chain: state, blocks, pool. Drive it with ``submit`` and ``produce_block``."""

    def __init__(
        self,
        runtime: Runtime,
        runtime_version: Mapping[str, Any],
        genesis: Mapping[str, Any],
        *,
        pallet_classes: Iterable[type[Pallet]] = (),
        finality_lag: int = 2,
        clock: Callable[[], float] = time.time,
        genesis_storage: Mapping[bytes, bytes] | None = None,
    ) -> None:
        self.runtime = runtime
        self.runtime_version = dict(runtime_version)
        self.spec_version = int(self.runtime_version["specVersion"])
        self.tx_version = int(self.runtime_version["transactionVersion"])
        self.finality_lag = finality_lag
        self.clock = clock
        self.time_offset_ms = 0
        self.genesis_config = dict(genesis)
        self.tx_listeners: list[TxListener] = []
        self.block_listeners: list[Callable[[Block], None]] = []
        self.finality_listeners: list[Callable[[Block], None]] = []
        self._pallet_classes = list(pallet_classes)
        self.genesis_storage = dict(genesis_storage or {})
        """Raw pairs added to the genesis state (a relay chain's ``Paras.Heads``)."""
        self.block_hooks: list[Callable[[int], Mapping[bytes, bytes | None]]] = []
        """Called with each new block's number; their raw storage changes join the block's
        (a relay chain's ``Paras.Heads``, a parachain's ``ParachainSystem.ValidationData``)."""
        self.grandpa_key = nacl.signing.SigningKey(GRANDPA_SEED)
        self.grandpa_public = bytes(self.grandpa_key.verify_key)
        self._genesis_time_ms: int | None = None
        self._build_genesis()

    # ---- genesis -------------------------------------------------------------------
    def _make_pallets(self) -> dict[str, Pallet]:
        runtime = self.runtime
        ed = int(runtime.constant("Balances", "ExistentialDeposit"))
        balances = Balances(ed)
        if not runtime.has_error("Balances", "Expendability"):
            # pallet_balances before its fungible rewrite: module errors from transfers
            balances.keep_alive_error = "KeepAlive"
            balances.fungible_transfers = False
        proxy = Proxy(
            int(runtime.constant("Proxy", "ProxyDepositBase")),
            int(runtime.constant("Proxy", "ProxyDepositFactor")),
        )
        pallets: list[Pallet] = [System(), Timestamp(), balances, proxy, ParachainInfo()]
        for cls in self._pallet_classes:
            if runtime.has_pallet(cls.name):
                pallets.append(cls())
            else:
                log.warning("pallet %s is not in the served metadata: not run", cls.name)
        return {p.name: p for p in pallets}

    def _build_genesis(self) -> None:
        self.storage = Storage()
        self.pallets = self._make_pallets()
        self.pool: dict[bytes, Extrinsic] = {}
        self.recent: dict[bytes, int] = {}
        self.blocks: dict[int, Block] = {}
        self.by_hash: dict[bytes, Block] = {}
        config = self.genesis_config
        sections: dict[str, Mapping[str, Any]] = dict(config.get("pallets") or {})
        sections["Balances"] = {"balances": config.get("balances") or {}}
        sections["Proxy"] = {"proxies": config.get("proxies") or []}
        sections["ParachainInfo"] = {"parachain_id": config.get("parachain_id", 2035)}
        for name, pallet in self.pallets.items():
            pallet.genesis(sections.get(name, {}))
        timestamp = self.pallets["Timestamp"]
        assert isinstance(timestamp, Timestamp)
        if self._genesis_time_ms is None:  # a reset rebuilds the same genesis block
            self._genesis_time_ms = self.now_ms()
        timestamp.set_now(self._genesis_time_ms)
        changes = self._collect_pallet_changes()
        changes[storage_prefix("System", "BlockHash") + _b128c(u32(0))] = b"\x69" * 32
        changes[storage_prefix("System", "ParentHash")] = b"\x69" * 32
        changes[b":grandpa_authorities"] = (
            b"\x01" + encode_compact(1) + self.grandpa_public + u64(1)
        )
        changes[storage_prefix("Grandpa", "CurrentSetId")] = u64(0)
        changes.update(self.genesis_storage)
        self.storage.apply(0, changes)
        header = Header(PARENT_OF_GENESIS, 0, self.storage.root(), extrinsics_root([]))
        genesis = Block(header, header.hash(), [], changes)
        self.genesis_hash = genesis.hash
        self.genesis_pairs = dict(self.storage.data)
        self._add_block(genesis)
        self.finalized = 0
        genesis.justification = self._justify(genesis)

    def now_ms(self) -> int:
        return int(self.clock() * 1000) + self.time_offset_ms

    def reset(self) -> None:
        """Throw away every block and the pool: back to genesis (same genesis hash)."""
        self._build_genesis()

    # ---- blocks --------------------------------------------------------------------
    @property
    def head(self) -> Block:
        return self.blocks[self.storage.head]

    def _add_block(self, block: Block) -> None:
        self.blocks[block.number] = block
        self.by_hash[block.hash] = block
        old = self.blocks.pop(block.number - 4096 - 1, None) if block.number > 4097 else None
        if old is not None:
            self.by_hash.pop(old.hash, None)

    def block(self, hash_or_number: bytes | int | None) -> Block | None:
        if hash_or_number is None:
            return self.head
        if isinstance(hash_or_number, int):
            return self.blocks.get(hash_or_number)
        return self.by_hash.get(hash_or_number)

    def _justify(self, block: Block) -> bytes:
        round_number = block.number
        target = block.hash + u32(block.number)
        message = b"\x01" + target + u64(round_number) + u64(0)
        signature = self.grandpa_key.sign(message).signature
        precommit = target + signature + self.grandpa_public
        return u64(round_number) + target + encode_compact(1) + precommit + encode_compact(0)

    def finality_proof(self, number: int) -> bytes | None:
        if number > self.finalized:
            return None
        block = self.blocks.get(number)
        if block is None or block.justification is None:
            return None
        return block.hash + encode_bytes(block.justification) + encode_compact(0)

    def _collect_pallet_changes(self) -> dict[bytes, bytes | None]:
        changes: dict[bytes, bytes | None] = {}
        for name, pallet in self.pallets.items():
            for item, keys, value in pallet.take_storage_changes():
                owner, _, item_name = item.rpartition(".")
                try:
                    entry = self.runtime.storage(owner or name, item_name)
                    key = self.runtime.storage_key(entry, tuple(keys))
                    changes[key] = (
                        None if value is None else self.runtime.encode(entry.value_type, value)
                    )
                except (UnknownName, ScaleError) as exc:
                    log.error("pallet %s: cannot store %s%r: %s", name, item, keys, exc)
        return changes

    def produce_block(self) -> Block:
        parent = self.head
        number = parent.number + 1
        timestamp_ms = max(self.now_ms(), self._timestamp() + 1)
        ctx = _BlockContext(self, number, timestamp_ms)
        timestamp = self.pallets["Timestamp"]
        assert isinstance(timestamp, Timestamp)
        timestamp.set_now(timestamp_ms)
        for pallet in self.pallets.values():
            pallet.on_initialize(ctx)
        included: list[Extrinsic] = []
        progress = True
        balances = self._balances()
        while progress and len(included) < MAX_BLOCK_EXTRINSICS:
            progress = False
            for tx_hash, xt in list(self.pool.items()):
                if len(included) >= MAX_BLOCK_EXTRINSICS:
                    break
                expected = balances.nonce(xt.signer)
                if xt.nonce > expected:
                    continue
                del self.pool[tx_hash]
                if xt.nonce < expected or not self._mortal_ok(xt, number):
                    self._notify_tx(tx_hash, "invalid")
                    continue
                if balances.free(xt.signer) < xt.fee + xt.tip + balances.existential_deposit:
                    self._notify_tx(tx_hash, "invalid")
                    continue
                ctx.phase = b"\x00" + u32(len(included))
                self._apply(ctx, xt)
                included.append(xt)
                progress = True
        ctx.phase = b"\x01"  # Finalization
        for pallet in self.pallets.values():
            pallet.on_finalize(ctx)
        changes = self._collect_pallet_changes()
        events_key = storage_prefix("System", "Events")
        changes[events_key] = encode_compact(len(ctx.events)) + b"".join(ctx.events)
        changes[storage_prefix("System", "EventCount")] = u32(len(ctx.events))
        changes[storage_prefix("System", "Number")] = u32(number)
        changes[storage_prefix("System", "ParentHash")] = parent.hash
        changes[storage_prefix("System", "BlockHash") + _b128c(u32(number - 1))] = parent.hash
        mq_key = storage_prefix("PhalaMq", "OutboundMessages")
        if "PhalaMq" in self.pallets:
            pass  # the PhalaMq pallet keeps OutboundMessages itself
        elif ctx.messages:
            changes[mq_key] = encode_compact(len(ctx.messages)) + b"".join(ctx.messages)
        elif self.storage.data.get(mq_key) is not None:
            changes[mq_key] = None
        for hook in self.block_hooks:
            changes.update(hook(number))
        self.storage.apply(number, changes)
        raw = [xt.raw for xt in included]
        header = Header(parent.hash, number, self.storage.root(), extrinsics_root(raw))
        block = Block(header, header.hash(), raw, changes)
        self._add_block(block)
        for xt in included:
            self.recent[xt.hash] = number
            self._notify_tx(xt.hash, {"inBlock": "0x" + block.hash.hex()})
        for old_hash in [h for h, n in self.recent.items() if n < number - 64]:
            del self.recent[old_hash]
        for listener in self.block_listeners:
            listener(block)
        self._finalize_up_to(number - self.finality_lag)
        return block

    def finalize_up_to(self, target: int) -> None:
        """Finalize (and justify) every block up to ``target`` (a parachain follows its
        relay chain this way)."""
        self._finalize_up_to(min(target, self.head.number))

    def _finalize_up_to(self, target: int) -> None:
        while self.finalized < target:
            self.finalized += 1
            block = self.blocks[self.finalized]
            block.justification = self._justify(block)
            for raw in block.extrinsics:
                self._notify_tx(blake2_256(raw), {"finalized": "0x" + block.hash.hex()})
            for listener in self.finality_listeners:
                listener(block)

    def _timestamp(self) -> int:
        timestamp = self.pallets["Timestamp"]
        assert isinstance(timestamp, Timestamp)
        return timestamp.now_ms

    def _balances(self) -> Balances:
        balances = self.pallets["Balances"]
        assert isinstance(balances, Balances)
        return balances

    def _notify_tx(self, tx_hash: bytes, status: Any) -> None:
        for listener in self.tx_listeners:
            listener(tx_hash, status)

    # ---- extrinsics ----------------------------------------------------------------
    def fee_of(self, length: int) -> int:
        """The devnet's fee rule: BASE_FEE + PER_BYTE_FEE × encoded length (tip extra)."""
        return BASE_FEE + PER_BYTE_FEE * length

    def decode_extrinsic(self, raw: bytes, check_signature: bool = True) -> Extrinsic:
        """Parse and signature-check an extrinsic (with its length prefix); no state checks."""
        runtime = self.runtime
        try:
            length, offset = decode_compact(raw, 0)
        except ScaleError as exc:
            raise TransactionError(BAD_FORMAT, "Extrinsic has invalid format", str(exc)) from exc
        if offset + length != len(raw) or length == 0:
            raise TransactionError(
                BAD_FORMAT, "Extrinsic has invalid format", "length prefix does not match"
            )
        version = raw[offset]
        offset += 1
        if version & 0x7F != 4:
            raise TransactionError(
                BAD_FORMAT, "Extrinsic has invalid format", "unsupported extrinsic version"
            )
        if not version & 0x80:
            raise TransactionError(
                UNKNOWN_VALIDITY,
                "Unknown Transaction Validity",
                "Could not find an unsigned validator for the unsigned transaction",
            )
        try:
            address, offset = runtime.decode_prefix(runtime.address_type, raw, offset)
            sig_start = offset
            _, offset = runtime.decode_prefix(runtime.signature_type, raw, offset)
            signature = raw[sig_start:offset]
            extra_start = offset
            era, nonce, tip = Era(), 0, 0
            for ext in runtime.signed_extensions:
                if ext.identifier == "CheckMortality":
                    era, offset = decode_era(raw, offset)
                elif ext.identifier == "CheckNonce":
                    nonce, offset = decode_compact(raw, offset)
                elif ext.identifier == "ChargeTransactionPayment":
                    tip, offset = decode_compact(raw, offset)
                else:
                    _, offset = runtime.decode_prefix(ext.extra_type, raw, offset)
            extra = raw[extra_start:offset]
            call_bytes = raw[offset:]
            call = runtime.decode_call(call_bytes)
        except (ScaleError, IndexError, ValueError) as exc:
            raise TransactionError(BAD_FORMAT, "Extrinsic has invalid format", str(exc)) from exc
        try:
            signer = normalize_account(address)
        except DispatchError as exc:
            raise TransactionError(
                UNKNOWN_VALIDITY,
                "Unknown Transaction Validity",
                "Could not lookup information required to validate the transaction",
            ) from exc
        xt = Extrinsic(
            raw=raw,
            hash=blake2_256(raw),
            signer=signer,
            era=era,
            nonce=nonce,
            tip=tip,
            call=call,
            fee=self.fee_of(len(raw)),
        )
        if check_signature:
            payload = call_bytes + extra + self._additional_signed(era)
            if len(payload) > 256:
                payload = blake2_256(payload)
            if not self._verify(signature, payload, bytes.fromhex(signer[2:])):
                raise invalid(BAD_PROOF)
        return xt

    def _additional_signed(self, era: Era) -> bytes:
        parts = []
        for ext in self.runtime.signed_extensions:
            if ext.identifier == "CheckSpecVersion":
                parts.append(u32(self.spec_version))
            elif ext.identifier == "CheckTxVersion":
                parts.append(u32(self.tx_version))
            elif ext.identifier == "CheckGenesis":
                parts.append(self.genesis_hash)
            elif ext.identifier == "CheckMortality":
                parts.append(self._era_hash(era))
        return b"".join(parts)

    def _era_hash(self, era: Era) -> bytes:
        if era.immortal:
            return self.genesis_hash
        head = self.head.number
        birth = era.birth(head)
        block = self.blocks.get(birth)
        if block is None or head >= era.death(head):
            raise invalid(ANCIENT)
        return block.hash

    def _mortal_ok(self, xt: Extrinsic, number: int) -> bool:
        return xt.era.immortal or number < xt.era.death(number - 1)

    def _verify(self, signature: bytes, payload: bytes, public: bytes) -> bool:
        variant = signature[0]
        names = {v.index: v.name for v in self.runtime.variants(self.runtime.signature_type)}
        body = signature[1:]
        kind = names.get(variant)
        try:
            if kind == "Sr25519":
                return bool(sr25519.verify(body, payload, public))
            if kind == "Ed25519":
                nacl.signing.VerifyKey(public).verify(payload, body)
                return True
        except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
            return False
        return False

    def validate(self, xt: Extrinsic) -> str:
        """Pool admission against the head state: 'ready' or 'future', else TransactionError."""
        balances = self._balances()
        expected = balances.nonce(xt.signer)
        if xt.nonce < expected:
            raise invalid(STALE)
        pallet = xt.call.get("call_module")
        if pallet not in self.pallets and pallet not in ("Utility",):
            raise invalid(f"{CALL_NOT_EXPECTED}: pallet {pallet} is not simulated")
        if balances.free(xt.signer) < xt.fee + xt.tip + balances.existential_deposit:
            raise invalid(PAYMENT)
        return "ready" if xt.nonce == expected else "future"

    def submit(self, raw: bytes) -> tuple[Extrinsic, str]:
        """Admit an extrinsic to the pool; (extrinsic, 'ready' | 'future')."""
        xt = self.decode_extrinsic(raw)
        if xt.hash in self.pool:
            # a node formats the pool's boxed hash with Debug: ``Any { .. }``
            raise TransactionError(ALREADY_IMPORTED, "Transaction Already Imported", "Any { .. }")
        if xt.hash in self.recent:
            raise TransactionError(TEMPORARILY_BANNED, "Transaction is temporarily banned")
        status = self.validate(xt)
        for other in self.pool.values():
            if other.signer == xt.signer and other.nonce == xt.nonce:
                raise TransactionError(
                    TOO_LOW_PRIORITY, "Priority is too low: (0 vs 0)", TOO_LOW_PRIORITY_DATA
                )
        self.pool[xt.hash] = xt
        return xt, status

    def pool_nonce(self, account: AccountHex) -> int:
        """The next nonce counting ready transactions in the pool (system_accountNextIndex)."""
        nonce = self._balances().nonce(account)
        pending = {xt.nonce for xt in self.pool.values() if xt.signer == account}
        while nonce in pending:
            nonce += 1
        return nonce

    # ---- dispatch ------------------------------------------------------------------
    def _apply(self, ctx: _BlockContext, xt: Extrinsic) -> None:
        balances = self._balances()
        total = xt.fee + xt.tip
        balances.withdraw(xt.signer, total)
        ctx.emit("Balances", "Withdraw", who=xt.signer, amount=total)
        balances.bump_nonce(xt.signer)
        info = {"weight": CALL_WEIGHT, "class": "Normal", "pays_fee": "Yes"}
        error: DispatchError | None = None
        ctx.begin()
        try:
            self.dispatch(ctx, xt.signer, xt.call, ())
            ctx.commit()
        except DispatchError as exc:
            ctx.rollback()
            error = exc
        except Exception:
            log.exception("dispatch of %s crashed", _call_name(xt.call))
            ctx.rollback()
            error = DispatchError("System", "Other")
        ctx.emit(
            "TransactionPayment", "TransactionFeePaid", who=xt.signer, actual_fee=total, tip=xt.tip
        )
        if error is None:
            ctx.emit("System", "ExtrinsicSuccess", dispatch_info=info)
        else:
            ctx.emit(
                "System",
                "ExtrinsicFailed",
                dispatch_error=self.dispatch_error_value(error),
                dispatch_info=info,
            )

    def dispatch_error_value(self, error: DispatchError) -> Any:
        if isinstance(error, BadOrigin):
            return "BadOrigin"
        variants = {v.name: v for v in self.runtime.variants(self.runtime.dispatch_error_type)}
        if isinstance(error, TokenError):
            token = variants.get("Token")
            token_names = (
                {v.name for v in self.runtime.variants(token.fields[0][1])} if token else set()
            )
            if error.error in token_names:
                return {"Token": error.error}
            log.error("DispatchError::Token(%s) is not in the metadata", error.error)
            return "Other"
        simple = set(variants)
        if (
            error.pallet == "System"
            and error.error in simple
            and error.error != "Module"
            and not self.runtime.has_error("System", error.error)
        ):
            return error.error
        try:
            return self.runtime.module_error_value(error.pallet, error.error)
        except UnknownName:
            log.error("error %s.%s is not in the metadata", error.pallet, error.error)
            return "Other"

    def dispatch(
        self,
        ctx: _BlockContext,
        origin: AccountHex | None,
        call: Mapping[str, Any],
        filters: tuple[str, ...],
    ) -> None:
        """Run one call (transactionally) as ``origin``; raise DispatchError on failure."""
        pallet_name = str(call.get("call_module"))
        function = str(call.get("call_function"))
        raw_args = call.get("call_args") or []
        if isinstance(raw_args, Mapping):
            args: dict[str, Any] = dict(raw_args)
        else:
            args = {a["name"]: a["value"] for a in raw_args}
        if not all(proxy_allows(f, pallet_name, function) for f in filters):
            raise DispatchError("System", "CallFiltered")
        if pallet_name == "Utility":
            self._utility(ctx, origin, function, args, filters)
            return
        if pallet_name == "Proxy" and function == "proxy":
            self._proxy(ctx, origin, args, filters)
            return
        pallet = self.pallets.get(pallet_name)
        if pallet is None:
            log.error("call %s.%s: pallet %s is not simulated", pallet_name, function, pallet_name)
            raise DispatchError("System", "CallFiltered")
        ctx.begin()
        try:
            ctx.touch(pallet_name, pallet)
            pallet.dispatch(ctx, origin, function, args)
        except DispatchError:
            ctx.rollback()
            raise
        except Exception:
            ctx.rollback()
            raise
        ctx.commit()

    def _utility(
        self,
        ctx: _BlockContext,
        origin: AccountHex | None,
        function: str,
        args: Mapping[str, Any],
        filters: tuple[str, ...],
    ) -> None:
        if function not in ("batch", "batch_all", "force_batch"):
            raise DispatchError("System", "CallFiltered")
        calls = list(args.get("calls") or [])
        limit = int(self.runtime.constant("Utility", "batched_calls_limit"))
        if len(calls) > limit:
            raise DispatchError("Utility", "TooManyCalls")
        failed = False
        for index, inner in enumerate(calls):
            try:
                self.dispatch(ctx, origin, inner, filters)
            except DispatchError as exc:
                if function == "batch_all":
                    raise
                if function == "batch":
                    ctx.emit(
                        "Utility",
                        "BatchInterrupted",
                        index=index,
                        error=self.dispatch_error_value(exc),
                    )
                    return
                failed = True
                ctx.emit("Utility", "ItemFailed", error=self.dispatch_error_value(exc))
                continue
            ctx.emit("Utility", "ItemCompleted")
        ctx.emit("Utility", "BatchCompletedWithErrors" if failed else "BatchCompleted")

    def _proxy(
        self,
        ctx: _BlockContext,
        origin: AccountHex | None,
        args: Mapping[str, Any],
        filters: tuple[str, ...],
    ) -> None:
        if origin is None:
            raise BadOrigin()
        proxy = self.pallets["Proxy"]
        assert isinstance(proxy, Proxy)
        real = normalize_account(args["real"])
        forced = args.get("force_proxy_type")
        definition = proxy.find(real, origin, None if forced is None else proxy_type_name(forced))
        if definition.delay:
            raise DispatchError("Proxy", "Unannounced")
        result: Any
        try:
            self.dispatch(ctx, real, args["call"], (*filters, definition.proxy_type))
            result = {"Ok": ()}
        except DispatchError as exc:
            result = {"Err": self.dispatch_error_value(exc)}
        ctx.emit("Proxy", "ProxyExecuted", result=result)

    # ---- helpers for RPC -----------------------------------------------------------
    def account_nonce(self, account: AccountHex) -> int:
        return self._balances().nonce(account)


def _b128c(data: bytes) -> bytes:
    """Twox64Concat of an already-encoded key (System.BlockHash is Twox64Concat)."""
    from poolkeeper_devnet.codec import twox64

    return twox64(data) + data


def _call_name(call: Mapping[str, Any]) -> str:
    return f"{call.get('call_module')}.{call.get('call_function')}"
