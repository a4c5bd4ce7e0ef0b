"""One simulated pRuntime: the state machine behind the HTTP API.

It does what a pool manager can observe of a real pRuntime (PROTOCOL.md §1,
docs/devnet-wire.md): InitRuntime with genesis checks, the "next" counters, SyncHeader
with parent linkage and GRANDPA justification checks, DispatchBlocks that must reproduce
each synced header's state root, worker events read from ``PhalaMq.OutboundMessages`` in
the dispatched changes, and signed egress messages (BenchReport, HeartbeatV2). Sync
semantics follow phactory's ``storage_sync.rs``: in solo mode the counters start at
``headernum = blocknum = 1`` (header 0 is the genesis given to InitRuntime), headers
below ``headernum`` are dropped from a batch, blocks below ``blocknum`` are ignored.

Parachain mode (``is_parachain``): the genesis header is a relay-chain header, headers
given to SyncHeader are relay headers, and parachain headers arrive through
SyncParaHeader / SyncCombinedHeaders with a read proof of ``Paras.Heads(para_id)``
checked against the last synced relay header's state root; parachain header 0 validates
the genesis state; blocks are parachain blocks, dispatched up to ``para_headernum − 1``.
Counters after init: ``headernum = genesis + 1``, ``para_headernum = 0``, ``blocknum = 1``.

Handlers take and return google.protobuf messages (see ``_proto``); they raise
``AppError`` (HTTP 500 with its text) or ``ScaleError`` (HTTP 400 ``DecodeError``).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import nacl.exceptions
import nacl.signing
import sr25519
import xxhash

from poolkeeper_devnet.pruntime import _proto
from poolkeeper_devnet.pruntime._scale import (
    Header,
    ProofError,
    Reader,
    ScaleError,
    blake2_256,
    compact,
    decode_all,
    enc_bytes,
    enc_option,
    enc_str,
    enc_vec,
    read_header,
    read_proof_pairs,
    storage_prefix,
    twox64,
    u32,
    u64,
    verify_read_proof,
)
from poolkeeper_devnet.pruntime._shared_state import EMPTY, StateVersion, base_version

VERSION = "2.2.0-devnet"
WORKER_TOPIC = b"phala/system/worker"
BENCH_TOPIC = b"phala/registry/event"
HEARTBEAT_TOPIC = b"phala/mining/report"
RCU_TEXT = "RCU in progress, please try the request again later"
OUTBOUND_KEY = storage_prefix("PhalaMq", "OutboundMessages")
INGRESS_PREFIX = storage_prefix("PhalaMq", "OffchainIngress")
TIMESTAMP_KEY = storage_prefix("Timestamp", "Now")
PARA_ID_KEY = storage_prefix("ParachainInfo", "ParachainId")
GRANDPA_AUTHORITIES_KEY = b":grandpa_authorities"
GRANDPA_SET_ID_KEY = storage_prefix("Grandpa", "CurrentSetId")
MAX_CONSENSUS_VERSION = 1

# google.protobuf classes built at run time: their fields are invisible to mypy.
Message = Any


class AppError(Exception):
    """A handler error: HTTP 500 with ``str(self)`` as the PrpcError message."""


@dataclass(frozen=True)
class Identity:
    """A worker's sr25519 identity and ECDH keys, derived from a 32-byte seed."""

    seed: bytes = field(repr=False)
    public: bytes
    secret: bytes = field(repr=False)
    ecdh_public: bytes

    @classmethod
    def from_seed(cls, seed: bytes) -> Identity:
        public, secret = sr25519.pair_from_seed(seed)
        ecdh_public, _ = sr25519.pair_from_seed(blake2_256(b"ecdh" + seed))
        return cls(seed, bytes(public), bytes(secret), bytes(ecdh_public))

    def sign(self, message: bytes) -> bytes:
        return bytes(sr25519.sign((self.public, self.secret), message))


def worker_origin(pubkey: bytes) -> bytes:
    """SCALE ``MessageOrigin::Worker(pubkey)``."""
    return b"\x02" + pubkey


@dataclass
class _Authorities:
    weights: dict[bytes, int]
    set_id: int


_VERIFIED_JUSTIFICATIONS: dict[tuple[object, ...], None] = {}
_VERIFIED_JUSTIFICATIONS_KEPT = 256


@dataclass
class _Egress:
    sequence: int
    encoded: bytes


class SimulatedPRuntime:
    """The state of one simulated pRuntime; ``reset`` is a restart (all state lost)."""

    def __init__(self, index: int, seed: bytes, score: int) -> None:
        self.index = index
        self.default_seed = seed
        self.score = score
        self.stalled = False
        self.reset()

    def reset(self) -> None:
        """Forget everything, as a restarted pRuntime without a checkpoint does."""
        self.initialized = False
        self.identity: Identity | None = None
        self.dev_mode = False
        self.genesis_hash = b""
        self.genesis_number = 0
        self.operator: bytes | None = None
        self.para_id = 0
        self.authorities = _Authorities({}, 0)
        self.headernum = 0
        self.blocknum = 0
        self.last_header_hash: bytes | None = None
        self.is_parachain = False
        self.para_headernum = 0
        self.para_last_hash: bytes | None = None
        self.relay_state_root = b""
        self.genesis_state_root = b""
        self.first_block = 1
        self.state_roots: dict[int, bytes] = {}
        self.version: StateVersion = EMPTY
        # phactory's ``init`` at process start: true unless a gatekeeper master key is
        # sealed (never, here); the first header sync clears it.
        self.can_load_chain_state = True
        self.registered = False
        self.bench_start: tuple[int, int, int] | None = None  # (end block, duration, start s)
        self.computing = False
        self.unresponsive = False
        self.egress: list[_Egress] = []
        self.next_sequence = 0
        self.current_block_time = 0
        self.endpoint: tuple[bytes, bytes] | None = None

    # --- info ------------------------------------------------------------------------

    def get_info(self) -> Message:
        info = _proto.new(
            "PhactoryInfo",
            initialized=self.initialized,
            registered=self.registered,
            headernum=self.headernum,
            para_headernum=self.para_headernum,
            blocknum=self.blocknum,
            state_root=self.version.root.hex() if self.initialized else "",
            dev_mode=self.dev_mode,
            pending_messages=len(self.egress),
            score=self.score,
            version=VERSION,
            git_revision="0000000000000000000000000000000000000000",
            can_load_chain_state=self.can_load_chain_state,
            current_block_time=self.current_block_time,
            max_supported_pink_runtime_version="1.2",
            supported_attestation_methods=["none"],
            query_timeout=60,
        )
        info.gatekeeper.role = 0
        info.memory_usage.rust_used = 16 << 20
        info.memory_usage.rust_peak_used = 32 << 20
        info.memory_usage.total_peak_used = 64 << 20
        info.memory_usage.free = 1 << 30
        if self.initialized and self.identity is not None:
            info.genesis_block_hash = self.genesis_hash.hex()
            info.public_key = self.identity.public.hex()
            info.ecdh_public_key = self.identity.ecdh_public.hex()
            info.system.registered = self.registered
            info.system.public_key = self.identity.public.hex()
            info.system.ecdh_public_key = self.identity.ecdh_public.hex()
            info.system.gatekeeper.role = 0
            info.system.max_supported_consensus_version = MAX_CONSENSUS_VERSION
            info.system.genesis_block = self.genesis_number
        return info

    # --- init --------------------------------------------------------------------------

    def init_runtime(self, request: Message) -> Message:
        if self.initialized:
            raise AppError("Runtime already initialized")
        genesis_header, authorities, set_id, proof = decode_all(
            request.encoded_genesis_info, _read_genesis_info
        )
        version = base_version(request.encoded_genesis_state, _decode_state_pairs)
        operator = (
            decode_all(request.encoded_operator, lambda r: r.take(32))
            if request.HasField("encoded_operator")
            else None
        )
        provider = _attestation_provider(request)
        if provider is not None:
            raise AppError(
                f"attestation provider {provider} is not available on the devnet (use None)"
            )
        if request.HasField("debug_set_key") and len(request.debug_set_key) != 32:
            raise AppError("debug_set_key must be a 32-byte seed")
        actual_root = version.root
        if request.is_parachain:
            # The genesis header is a relay header: the GRANDPA keys are proven against its
            # root; the parachain genesis state is checked against parachain header 0 later.
            _check_relay_genesis_proof(proof, genesis_header, authorities, set_id)
        else:
            if actual_root != genesis_header.state_root:
                raise AppError(
                    f"StateRootMismatch block={genesis_header.number} "
                    f"expected=0x{genesis_header.state_root.hex()} actual=0x{actual_root.hex()}"
                )
            _check_genesis_proof(proof, version, authorities, set_id, genesis_header)

        seed = request.debug_set_key if request.HasField("debug_set_key") else self.default_seed
        self.identity = Identity.from_seed(seed)
        self.dev_mode = True
        self.genesis_hash = genesis_header.hash
        self.genesis_number = genesis_header.number
        self.operator = operator
        self.para_id = int.from_bytes((version.get(PARA_ID_KEY) or b"\0\0\0\0")[:4], "little")
        self.authorities = _Authorities(dict(authorities), set_id)
        self.version = version
        self.is_parachain = bool(request.is_parachain)
        self.genesis_state_root = actual_root
        self.relay_state_root = genesis_header.state_root
        self.headernum = genesis_header.number + 1
        self.para_headernum = 0
        self.blocknum = 1 if self.is_parachain else genesis_header.number + 1
        self.first_block = self.blocknum
        self.last_header_hash = genesis_header.hash
        self.para_last_hash = None
        self.current_block_time = _timestamp(version)
        self.can_load_chain_state = True
        self.initialized = True
        return self._runtime_info(with_attestation=False)

    def get_runtime_info(self, request: Message) -> Message:
        self._require_init()
        if request.HasField("encoded_operator"):
            self.operator = decode_all(request.encoded_operator, lambda r: r.take(32))
        # Attestation only once the genesis state has been validated by a dispatched block.
        return self._runtime_info(with_attestation=self.blocknum > self.first_block)

    def _runtime_info(self, *, with_attestation: bool) -> Message:
        assert self.identity is not None
        response = _proto.new(
            "InitRuntimeResponse",
            encoded_runtime_info=self.registration_info(),
            encoded_genesis_block_hash=self.genesis_hash,
            encoded_public_key=self.identity.public,
            encoded_ecdh_public_key=self.identity.ecdh_public,
        )
        if with_attestation:
            response.attestation.version = 1
            response.attestation.provider = "null"
            response.attestation.encoded_report = b"\x00"
            response.attestation.timestamp = int(time.time())
        return response

    def registration_info(self) -> bytes:
        """SCALE ``WorkerRegistrationInfoV2``."""
        assert self.identity is not None
        machine_id = blake2_256(b"machine" + self.identity.public)[:16]
        return (
            u32(2)
            + enc_bytes(machine_id)
            + self.identity.public
            + self.identity.ecdh_public
            + self.genesis_hash
            + enc_vec([u32(1), u32(1)])
            + enc_option(self.operator)
            + u32(self.para_id)
            + u32(MAX_CONSENSUS_VERSION)
        )

    def load_chain_state(self, request: Message) -> Message:
        self._require_init()
        if not self.can_load_chain_state:
            raise AppError("Can not load chain state after syncing has started")
        self.version = base_version(request.encoded_state, _decode_state_pairs)
        self.headernum = request.block_number + 1
        self.blocknum = request.block_number + 1
        self.last_header_hash = None  # the next batch's parent cannot be checked
        self.state_roots.clear()
        self.can_load_chain_state = False
        self.current_block_time = _timestamp(self.version)
        return _proto.new("Empty")

    # --- sync ---------------------------------------------------------------------------

    def sync_header(self, request: Message) -> Message:
        self._require_init()
        headers = decode_all(request.encoded_headers, _read_headers_to_sync)
        if self.stalled:
            return _proto.new("SyncedTo", synced_to=self.headernum - 1)
        return _proto.new("SyncedTo", synced_to=self._sync_headers(headers))

    def sync_para_header(self, request: Message) -> Message:
        self._require_init()
        headers = decode_all(request.encoded_headers, lambda r: r.vec(read_header))
        if not self.is_parachain:
            raise AppError("ChainModeMismatch")
        proof = [bytes(item) for item in request.proof]
        return _proto.new("SyncedTo", synced_to=self._sync_para_headers(headers, proof))

    def sync_combined_headers(self, request: Message) -> Message:
        self._require_init()
        headers = decode_all(request.encoded_relaychain_headers, _read_headers_to_sync)
        para_headers: list[Header] = []
        if request.encoded_parachain_headers:
            para_headers = decode_all(
                request.encoded_parachain_headers, lambda r: r.vec(read_header)
            )
        # Relay part first; a failing parachain part leaves the relay part synced.
        synced = self.headernum - 1 if self.stalled else self._sync_headers(headers)
        if para_headers and not self.is_parachain:
            raise AppError("ChainModeMismatch")
        para_synced = self.para_headernum - 1
        if self.is_parachain:
            proof = [bytes(item) for item in request.proof]
            para_synced = self._sync_para_headers(para_headers, proof)
        return _proto.new(
            "HeadersSyncedTo",
            relaychain_synced_to=synced,
            parachain_synced_to=max(para_synced, 0),
        )

    def _sync_para_headers(self, headers: list[Header], proof: list[bytes]) -> int:
        headers = [h for h in headers if h.number >= self.para_headernum]
        if self.stalled or not headers:
            return self.para_headernum - 1
        if headers[0].number != self.para_headernum:
            raise AppError("BlockNumberMismatch")
        try:
            proved = verify_read_proof(proof, self.relay_state_root)
        except ProofError as exc:
            raise AppError(f"StorageProofFailed({exc})") from exc
        head = proved.get(paras_heads_key(self.para_id))
        if head is None:
            raise AppError("StorageProofFailed(no Paras.Heads value for this parachain)")
        try:
            proven = decode_all(head, lambda r: read_header(Reader(r.bytes_())))
        except ScaleError as exc:
            raise AppError(f"StorageProofFailed(undecodable parachain head: {exc})") from exc
        previous = self.para_last_hash
        for header in headers:
            if previous is not None and header.parent_hash != previous:
                raise AppError("HeaderHashMismatch")
            previous = header.hash
        if headers[-1].hash != proven.hash:
            raise AppError("HeaderHashMismatch")
        if headers[0].number == 0 and headers[0].state_root != self.genesis_state_root:
            raise AppError(
                f"StateRootMismatch block=0 expected=0x{headers[0].state_root.hex()} "
                f"actual=0x{self.genesis_state_root.hex()}"
            )
        for header in headers:
            if header.number > 0:
                self.state_roots[header.number] = header.state_root
        self.para_headernum = headers[-1].number + 1
        self.para_last_hash = headers[-1].hash
        return headers[-1].number

    def _sync_headers(self, batch: list[tuple[Header, bytes | None]]) -> int:
        batch = [item for item in batch if item[0].number >= self.headernum]
        if not batch:
            return self.headernum - 1
        if batch[0][0].number != self.headernum:
            raise AppError("BlockNumberMismatch")
        last, justification = batch[-1]
        if justification is None:
            raise AppError("MissingJustification")
        previous = self.last_header_hash
        for header, _ in batch:
            if previous is not None and header.parent_hash != previous:
                raise AppError("HeaderHashMismatch")
            previous = header.hash
        self._verify_justification(last, justification)
        if self.is_parachain:
            self.relay_state_root = last.state_root
        else:
            for header, _ in batch:
                self.state_roots[header.number] = header.state_root
        self.headernum = last.number + 1
        self.last_header_hash = last.hash
        self.can_load_chain_state = False
        return last.number

    def _verify_justification(self, target: Header, justification: bytes) -> None:
        # Thousands of simulated pRuntimes verify the same justification of each block;
        # a verified one is remembered (keyed by everything the check depends on).
        key = (
            justification,
            target.hash,
            target.number,
            self.authorities.set_id,
            tuple(sorted(self.authorities.weights.items())),
        )
        if key in _VERIFIED_JUSTIFICATIONS:
            return
        self._check_justification(target, justification)
        _VERIFIED_JUSTIFICATIONS[key] = None
        if len(_VERIFIED_JUSTIFICATIONS) > _VERIFIED_JUSTIFICATIONS_KEPT:
            del _VERIFIED_JUSTIFICATIONS[next(iter(_VERIFIED_JUSTIFICATIONS))]

    def _check_justification(self, target: Header, justification: bytes) -> None:
        try:
            round_, target_hash, target_number, precommits = decode_all(
                justification, _read_justification
            )
        except ScaleError as exc:
            raise AppError(f"HeaderValidateFailed(invalid justification: {exc})") from exc
        if target_hash != target.hash or target_number != target.number:
            raise AppError("HeaderValidateFailed(justification targets another block)")
        voters: set[bytes] = set()
        for vote_hash, vote_number, signature, authority in precommits:
            if authority not in self.authorities.weights:
                raise AppError("HeaderValidateFailed(precommit from a non-authority)")
            message = (
                b"\x01" + vote_hash + u32(vote_number) + u64(round_) + u64(self.authorities.set_id)
            )
            try:
                nacl.signing.VerifyKey(authority).verify(message, signature)
            except nacl.exceptions.BadSignatureError as exc:
                raise AppError("HeaderValidateFailed(bad precommit signature)") from exc
            if vote_hash == target.hash:
                voters.add(authority)
        total = sum(self.authorities.weights.values())
        weight = sum(self.authorities.weights[v] for v in voters)
        if total == 0 or weight < total - (total - 1) // 3:
            raise AppError("HeaderValidateFailed(not enough precommit weight)")

    def dispatch_blocks(self, request: Message) -> Message:
        self._require_init()
        blocks = _parsed_blocks(request.encoded_blocks)
        if self.stalled:
            return _proto.new("SyncedTo", synced_to=self.blocknum - 1)
        for number, raw_changes in blocks:
            if number < self.blocknum:
                continue
            if number != self.blocknum:
                raise AppError("BlockNumberMismatch")
            expected = self.state_roots.get(number)
            if expected is None:
                raise AppError("NoStateRoot")
            after = self.version.after(raw_changes, _decode_changes)
            if after.root != expected:
                raise AppError(
                    f"StateRootMismatch block={number} "
                    f"expected=0x{expected.hex()} actual=0x{after.root.hex()}"
                )
            self.version = after
            del self.state_roots[number]
            self.blocknum = number + 1
            self.current_block_time = _timestamp(after)
            self._on_block(number, _block_messages(after))
        return _proto.new("SyncedTo", synced_to=self.blocknum - 1)

    # --- chain messages ---------------------------------------------------------------

    def _on_block(self, number: int, block: _BlockMessages) -> None:
        assert self.identity is not None
        me = self.identity.public
        accepted = block.accepted.get(worker_origin(me))
        if accepted is not None:
            self._chain_accepted(accepted)
        mine = block.by_worker.get(me, [])
        if mine and block.challenges:
            mine = sorted(mine + block.challenges)
        for _, payload in mine or block.challenges:
            self._on_system_event(number, payload)
        if self.bench_start is not None and number >= self.bench_start[0]:
            _, duration, start_time = self.bench_start
            self.bench_start = None
            self._send(BENCH_TOPIC, b"\x00" + u64(start_time) + u64(self.score * duration))

    def _on_system_event(self, number: int, payload: bytes) -> None:
        assert self.identity is not None
        reader = Reader(payload)
        try:
            kind = reader.u8()
            if kind == 1:  # HeartbeatChallenge{seed, online_target}
                seed = reader.take(32)
                target = int.from_bytes(reader.take(32), "little")
                mine = int.from_bytes(blake2_256(self.identity.public + seed), "little")
                if self.computing and mine <= target:
                    self._heartbeat(number)
                return
            if kind != 0 or reader.take(32) != self.identity.public:
                return
            event = reader.u8()
        except ScaleError:
            return
        if event == 0:
            self.registered = True
        elif event == 1:
            duration = reader.u32()
            self.bench_start = (number + duration, duration, self.current_block_time // 1000)
        elif event == 3:
            self.computing = True
            self.unresponsive = False
        elif event == 4:
            self.computing = False
        elif event == 5:
            self.unresponsive = True
        elif event == 6:
            self.unresponsive = False

    def _heartbeat(self, number: int) -> None:
        now = self.current_block_time
        iterations = self.score * now // 6000
        self._send(HEARTBEAT_TOPIC, b"\x01" + u32(number) + u64(now) + u64(iterations))

    def _send(self, topic: bytes, payload: bytes) -> None:
        assert self.identity is not None
        message = worker_origin(self.identity.public) + enc_bytes(topic) + enc_bytes(payload)
        sequence = self.next_sequence
        self.next_sequence += 1
        signature = self.identity.sign(message + u64(sequence))
        self.egress.append(_Egress(sequence, message + u64(sequence) + enc_bytes(signature)))

    def _chain_accepted(self, next_on_chain: int) -> None:
        # Messages the chain already took are dropped; a restarted worker with the same
        # key learns the chain's sequence here and continues from it.
        self.egress = [m for m in self.egress if m.sequence >= next_on_chain]
        self.next_sequence = max(self.next_sequence, next_on_chain)

    def get_egress_messages(self) -> Message:
        self._require_init()
        assert self.identity is not None
        if not self.egress:
            encoded = compact(0)
        else:
            encoded = enc_vec(
                [worker_origin(self.identity.public) + enc_vec([m.encoded for m in self.egress])]
            )
        return _proto.new("GetEgressMessagesResponse", encoded_messages=encoded)

    # --- endpoints ---------------------------------------------------------------------

    def get_endpoint_info(self) -> Message:
        self._require_init()
        response = _proto.new("GetEndpointResponse")
        if self.endpoint is not None:
            response.encoded_endpoint_payload, response.signature = self.endpoint
        return response

    def sign_endpoint_info(self, request: Message) -> Message:
        self._require_init()
        assert self.identity is not None
        endpoints = decode_all(request.encoded_endpoints, lambda r: r.vec(Reader.string))
        payload = (
            self.identity.public
            + b"\x00"  # VersionedWorkerEndpoints::V1
            + enc_vec([enc_str(e) for e in endpoints])
            + u64(int(time.time() * 1000))
        )
        self.endpoint = (payload, self.identity.sign(payload))
        return self.get_endpoint_info()

    # --- faults ------------------------------------------------------------------------

    def force_wrong_genesis(self) -> None:
        """Become initialized against a chain that is not the devnet's."""
        self.reset()
        self.identity = Identity.from_seed(self.default_seed)
        self.initialized = True
        self.dev_mode = True
        self.genesis_hash = blake2_256(b"poolkeeper-devnet-wrong-genesis")
        self.last_header_hash = self.genesis_hash
        self.headernum = 1
        self.blocknum = 1

    def _require_init(self) -> None:
        if not self.initialized:
            raise AppError("Runtime not initialized")


# --- SCALE readers of the request payloads --------------------------------------------


def _read_genesis_info(
    r: Reader,
) -> tuple[Header, list[tuple[bytes, int]], int, list[bytes]]:
    header = read_header(r)
    authorities = r.vec(lambda x: (x.take(32), x.u64()))
    set_id = r.u64()
    proof = r.vec(Reader.bytes_)
    return header, authorities, set_id, proof


def _read_state_pairs(r: Reader) -> list[tuple[bytes, bytes]]:
    return r.vec(lambda x: (x.bytes_(), x.bytes_()))


def _decode_state_pairs(raw: bytes) -> list[tuple[bytes, bytes]]:
    return decode_all(raw, _read_state_pairs)


def _read_headers_to_sync(r: Reader) -> list[tuple[Header, bytes | None]]:
    return r.vec(lambda x: (read_header(x), x.option(Reader.bytes_)))


def _read_justification(
    r: Reader,
) -> tuple[int, bytes, int, list[tuple[bytes, int, bytes, bytes]]]:
    round_ = r.u64()
    target_hash = r.take(32)
    target_number = r.u32()
    precommits = r.vec(lambda x: (x.take(32), x.u32(), x.take(64), x.take(32)))
    r.vec(read_header)  # votes_ancestries
    return round_, target_hash, target_number, precommits


def _read_changes(r: Reader) -> list[tuple[bytes, bytes | None]]:
    return r.vec(lambda x: (x.bytes_(), x.option(Reader.bytes_)))


def _decode_changes(raw: bytes) -> list[tuple[bytes, bytes | None]]:
    return decode_all(raw, _read_changes)


def _skip_bytes(r: Reader) -> None:
    length = r.compact()
    end = r.pos + length
    if end > len(r.data):
        raise ScaleError(f"unexpected end of input at {r.pos} (wanted {length} bytes)")
    r.pos = end


def _skip_changes(r: Reader) -> None:
    for _ in range(r.compact()):
        _skip_bytes(r)
        tag = r.u8()
        if tag == 1:
            _skip_bytes(r)
        elif tag != 0:
            raise ScaleError(f"invalid Option tag {tag}")


def _read_blocks(r: Reader) -> list[tuple[int, bytes]]:
    """Each block's number and its main storage changes still encoded: decoding them is
    done once per block and storage version (``StateVersion.after``), not once per worker."""

    def block(x: Reader) -> tuple[int, bytes]:
        header = read_header(x)
        start = x.pos
        _skip_changes(x)
        main = bytes(x.data[start : x.pos])
        x.vec(lambda y: (y.bytes_(), _read_changes(y)))  # child storage: unused on the devnet
        return header.number, main

    return r.vec(block)


_PARSED_BLOCKS: dict[bytes, list[tuple[int, bytes]]] = {}
_PARSED_BLOCKS_KEPT = 8


def _parsed_blocks(encoded: bytes) -> list[tuple[int, bytes]]:
    """``_read_blocks`` of a request body, remembered for the last few bodies: relays send
    thousands of pRuntimes the same bytes, block by block or 64 blocks at a time."""
    digest = xxhash.xxh3_128_digest(encoded) + len(encoded).to_bytes(8, "little")
    blocks = _PARSED_BLOCKS.get(digest)
    if blocks is None:
        blocks = decode_all(encoded, _read_blocks)
        _PARSED_BLOCKS[digest] = blocks
        if len(_PARSED_BLOCKS) > _PARSED_BLOCKS_KEPT:
            del _PARSED_BLOCKS[next(iter(_PARSED_BLOCKS))]
    return blocks


@dataclass(frozen=True, slots=True)
class _BlockMessages:
    """What a block's changes say to workers, read once per storage version."""

    accepted: dict[bytes, int]  # worker origin -> the chain's next ingress sequence
    # Pallet messages on the worker topic as (position in the block, payload): heartbeat
    # challenges concern every worker, worker events only the worker they name. Indexing
    # them once per block keeps a block of 10,000 registrations from being read by each of
    # 10,000 workers.
    challenges: list[tuple[int, bytes]]
    by_worker: dict[bytes, list[tuple[int, bytes]]]


_BLOCK_MESSAGES: weakref.WeakKeyDictionary[StateVersion, _BlockMessages] = (
    weakref.WeakKeyDictionary()
)


def _block_messages(version: StateVersion) -> _BlockMessages:
    block = _BLOCK_MESSAGES.get(version)
    if block is None:
        accepted: dict[bytes, int] = {}
        skip = len(INGRESS_PREFIX) + 8  # Twox64Concat: the origin follows its hash
        for key, value in version.changes:
            if key.startswith(INGRESS_PREFIX) and value is not None:
                origin = key[skip:]
                accepted[origin] = max(accepted.get(origin, 0), int.from_bytes(value[:8], "little"))
        challenges: list[tuple[int, bytes]] = []
        by_worker: dict[bytes, list[tuple[int, bytes]]] = {}
        outbound = dict(version.changes).get(OUTBOUND_KEY)
        if outbound:
            try:
                messages = decode_all(outbound, lambda r: r.vec(_read_message))
            except ScaleError:
                messages = []
            for position, (sender, topic, payload) in enumerate(messages):
                if topic != WORKER_TOPIC or sender[:1] != b"\x00" or not payload:
                    continue
                if payload[0] == 1:  # HeartbeatChallenge
                    challenges.append((position, payload))
                elif payload[0] == 0 and len(payload) >= 33:  # WorkerEvent{pubkey, ..}
                    by_worker.setdefault(payload[1:33], []).append((position, payload))
        block = _BlockMessages(accepted, challenges, by_worker)
        _BLOCK_MESSAGES[version] = block
    return block


def _read_origin(r: Reader) -> bytes:
    start = r.pos
    tag = r.u8()
    if tag in (0, 4):
        r.bytes_()
    elif tag in (1, 2, 3, 6):
        r.take(32)
    elif tag != 5:
        raise ScaleError(f"unknown MessageOrigin variant {tag}")
    return bytes(r.data[start : r.pos])


def _read_message(r: Reader) -> tuple[bytes, bytes, bytes]:
    return _read_origin(r), r.bytes_(), r.bytes_()


def _attestation_provider(request: Message) -> int | None:
    """The requested provider: the field holds SCALE ``Option<AttestationProvider>``
    (a bare ``AttestationProvider`` byte is accepted too)."""
    if not request.HasField("attestation_provider"):
        return None
    raw = bytes(request.attestation_provider)
    if raw in (b"", b"\x00"):
        return None
    if len(raw) == 2 and raw[0] == 1:
        return raw[1]
    if len(raw) == 1:
        return raw[0]
    raise ScaleError("invalid AttestationProvider")


def paras_heads_key(para_id: int) -> bytes:
    """``Paras.Heads(para_id)`` on the relay chain (Twox64Concat u32)."""
    encoded = u32(para_id)
    return storage_prefix("Paras", "Heads") + twox64(encoded) + encoded


def _check_relay_genesis_proof(
    proof: list[bytes], header: Header, authorities: list[tuple[bytes, int]], set_id: int
) -> None:
    try:
        proved = verify_read_proof(proof, header.state_root)
    except ProofError as exc:
        raise AppError(f"StorageProofFailed({exc})") from exc
    _check_authorities(proved, authorities, set_id)


def _check_authorities(
    state: Mapping[bytes, bytes | None] | StateVersion,
    authorities: list[tuple[bytes, int]],
    set_id: int,
) -> None:
    stored = state.get(GRANDPA_AUTHORITIES_KEY)
    if stored is not None:
        expected = decode_all(stored, lambda r: (r.u8(), r.vec(lambda x: (x.take(32), x.u64()))))
        if expected[1] != authorities:
            raise AppError("StorageProofFailed(authority set differs from the proven one)")
    stored_id = state.get(GRANDPA_SET_ID_KEY)
    if stored_id is not None and int.from_bytes(stored_id[:8], "little") != set_id:
        raise AppError("StorageProofFailed(authority set id differs from the proven one)")


def _check_genesis_proof(
    proof: list[bytes],
    state: StateVersion,
    authorities: list[tuple[bytes, int]],
    set_id: int,
    header: Header,
) -> None:
    # Solo mode: the proved pairs must be the genesis state's, and with a rest item the
    # proof must also lead to the genesis header's root.
    try:
        pairs, rest = read_proof_pairs(proof)
        if rest is not None:
            verify_read_proof(proof, header.state_root)
    except ProofError as exc:
        raise AppError(f"StorageProofFailed({exc})") from exc
    for key, value in pairs.items():
        if state.get(key) != value:
            raise AppError(f"StorageProofFailed(value of 0x{key.hex()} differs from genesis)")
    _check_authorities(state, authorities, set_id)


def _timestamp(state: StateVersion) -> int:
    raw = state.get(TIMESTAMP_KEY)
    return int.from_bytes(raw[:8], "little") if raw else 0
