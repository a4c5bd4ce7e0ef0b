"""PhalaRegistry: worker registration, benchmark scores and endpoints on the devnet chain.

``register_worker_v2`` follows Khala's checks in order: attestation, ``para_id``, relay
genesis hash (only if an allowlist is configured), then upserts ``Workers``, sets
``WorkerAddedAt`` on first insert, and pushes ``Registered`` and ``BenchStart{duration}``
to the worker. A ``BenchReport`` egress message then sets ``initial_score =
iterations / duration`` (docs/devnet-wire.md).

Attestation on the devnet (SGX cannot be checked here):
- ``None`` is accepted iff ``none_attestation_enabled`` (devnet default: true), giving
  provider None and confidence level 128 as on Khala; otherwise ``NoneAttestationDisabled``.
- ``SgxIas`` / ``SgxDcap`` are accepted only as the documented devnet test report: the
  ``ra_report`` / ``quote`` must be ``b"poolkeeper-devnet-ias:" + hex(blake2_256(SCALE(
  pruntime_info)))``; it gives provider ``Ias`` / ``Dcap`` and confidence level 1. Any other
  report fails with ``InvalidIASSigningCert`` (the devnet holds no Intel certificate), a test
  report over other data with ``InvalidRuntimeInfoHash``.

``update_worker_endpoint``: sr25519 by the worker key over ``SCALE(endpoint_payload)``
(no signing-context wrapper, unlike Khala), signing time within the last 4 hours.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import sr25519

from poolkeeper_devnet.chain.pallets import _scale
from poolkeeper_devnet.chain.pallets._common import PhalaPallet
from poolkeeper_devnet.chain.pallets._values import (
    ensure_root,
    ensure_signed,
    key32,
    now_seconds,
    to_bytes,
    to_int,
    variant,
)
from poolkeeper_devnet.chain.pallets.base import AccountHex, BlockContext, DispatchError

SYSTEM_TOPIC = b"phala/system/worker"
REGISTRY_SENDER = b"phala/registry"
DEVNET_IAS_PREFIX = b"poolkeeper-devnet-ias:"
NONE_ATTESTATION_CONFIDENCE = 128
DEFAULT_PARA_ID = 2004  # Khala
DEFAULT_BENCHMARK_DURATION = 5  # blocks
ENDPOINT_SIGNATURE_VALIDITY_MS = 4 * 60 * 60 * 1000
U32_MAX = 2**32 - 1


def blake2_256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def devnet_ias_report(pruntime_info: Mapping[str, Any]) -> bytes:
    """The ``ra_report`` of the devnet's test IAS attestation for ``pruntime_info``."""
    digest = blake2_256(_scale.encode_registration_info(pruntime_info))
    return DEVNET_IAS_PREFIX + digest.hex().encode()


def worker_info_value(
    pubkey: AccountHex,
    ecdh_pubkey: AccountHex,
    *,
    operator: AccountHex | None,
    now: int,
    runtime_version: int = 0,
    provider: str | None = None,
    confidence_level: int = NONE_ATTESTATION_CONFIDENCE,
    initial_score: int | None = None,
    features: list[int] | None = None,
) -> dict[str, Any]:
    """``WorkerInfoV2`` in value shape."""
    return {
        "pubkey": pubkey,
        "ecdh_pubkey": ecdh_pubkey,
        "runtime_version": runtime_version,
        "last_updated": now,
        "operator": operator,
        "attestation_provider": provider,
        "confidence_level": confidence_level,
        "initial_score": initial_score,
        "features": list(features or []),
    }


class PhalaRegistry(PhalaPallet):
    name = "PhalaRegistry"

    def __init__(self) -> None:
        super().__init__()
        self.workers: dict[AccountHex, dict[str, Any]] = {}
        self.worker_added_at: dict[AccountHex, int] = {}
        self.endpoints: dict[AccountHex, Any] = {}
        self.benchmark_duration = DEFAULT_BENCHMARK_DURATION
        self.none_attestation_enabled = True
        self.genesis_hash_allowlist: list[AccountHex] | None = None
        self.para_id: int | None = None
        self.bench_durations: dict[AccountHex, int] = {}
        """The duration each worker was told in its last BenchStart."""

    def genesis(self, config: Mapping[str, Any]) -> None:
        """Keys: ``benchmark_duration`` (blocks), ``none_attestation_enabled``,
        ``para_id`` (default: ParachainInfo's), ``genesis_block_hash_allowlist`` (absent: no
        check), ``workers: [{pubkey, ecdh_pubkey?, operator?, initial_score?,
        confidence_level?}]`` registered at block 0."""
        self.benchmark_duration = int(config.get("benchmark_duration", self.benchmark_duration))
        self.record_change("BenchmarkDuration", (), self.benchmark_duration)
        self.none_attestation_enabled = bool(
            config.get("none_attestation_enabled", self.none_attestation_enabled)
        )
        if config.get("para_id") is not None:
            self.para_id = int(config["para_id"])
        allowlist = config.get("genesis_block_hash_allowlist")
        if allowlist is not None:
            self.genesis_hash_allowlist = [key32(h) for h in allowlist]
            self.record_change(
                "RelaychainGenesisBlockHashAllowList", (), self.genesis_hash_allowlist
            )
        for spec in config.get("workers", ()):
            pubkey = key32(spec["pubkey"])
            operator = spec.get("operator")
            score = spec.get("initial_score")
            info = worker_info_value(
                pubkey,
                key32(spec.get("ecdh_pubkey", pubkey)),
                operator=None if operator is None else key32(operator),
                now=int(spec.get("registered_at", 0)),
                confidence_level=int(spec.get("confidence_level", NONE_ATTESTATION_CONFIDENCE)),
                initial_score=None if score is None else int(score),
            )
            self.workers[pubkey] = info
            self.worker_added_at[pubkey] = 0
            self.record_change("Workers", (pubkey,), info)
            self.record_change("WorkerAddedAt", (pubkey,), 0)

    # -- queries used by other pallets ------------------------------------------------
    def worker(self, pubkey: AccountHex) -> dict[str, Any] | None:
        return self.workers.get(pubkey)

    def _para_id(self, ctx: BlockContext) -> int:
        if self.para_id is not None:
            return self.para_id
        try:
            info = ctx.pallet("ParachainInfo")
        except (LookupError, DispatchError):
            return DEFAULT_PARA_ID
        for attribute in ("para_id", "parachain_id"):
            value = getattr(info, attribute, None)
            if isinstance(value, int):
                return value
        return DEFAULT_PARA_ID

    def _push(self, ctx: BlockContext, payload: bytes) -> None:
        ctx.push_worker_message(REGISTRY_SENDER, SYSTEM_TOPIC, payload)

    def _attest(self, info: Mapping[str, Any], attestation: Any) -> tuple[str | None, int]:
        """(attestation provider, confidence level) or the registry error Khala would give."""
        if attestation is None:
            if not self.none_attestation_enabled:
                raise DispatchError(self.name, "NoneAttestationDisabled")
            return None, NONE_ATTESTATION_CONFIDENCE
        kind, report = variant(attestation)
        providers = {"SgxIas": ("Ias", "ra_report"), "SgxDcap": ("Dcap", "quote")}
        if kind not in providers:
            raise DispatchError(self.name, "UnknownQuoteBodyFormat")
        provider, field = providers[kind]
        evidence = to_bytes(report[field])
        if not evidence.startswith(DEVNET_IAS_PREFIX):
            raise DispatchError(self.name, "InvalidIASSigningCert")
        if evidence != devnet_ias_report(info):
            raise DispatchError(self.name, "InvalidRuntimeInfoHash")
        return provider, 1

    # -- calls --------------------------------------------------------------------------
    def call_register_worker_v2(
        self, ctx: BlockContext, signer: AccountHex | None, args: Mapping[str, Any]
    ) -> None:
        ensure_signed(signer)
        info = args["pruntime_info"]
        provider, confidence = self._attest(info, args.get("attestation"))
        if to_int(info["para_id"]) != self._para_id(ctx):
            raise DispatchError(self.name, "ParachainIdMismatch")
        if (
            self.genesis_hash_allowlist is not None
            and key32(info["genesis_block_hash"]) not in self.genesis_hash_allowlist
        ):
            raise DispatchError(self.name, "GenesisBlockHashRejected")
        pubkey, ecdh = key32(info["pubkey"]), key32(info["ecdh_pubkey"])
        operator = None if info.get("operator") is None else key32(info["operator"])
        features = [to_int(f) for f in info.get("features") or []]
        now = now_seconds(ctx.timestamp_ms)
        existing = self.workers.get(pubkey)
        if existing is None:
            updated = worker_info_value(
                pubkey,
                ecdh,
                operator=operator,
                now=now,
                runtime_version=to_int(info["version"]),
                provider=provider,
                confidence_level=confidence,
                features=features,
            )
            self.worker_added_at[pubkey] = ctx.number
            self.record_change("WorkerAddedAt", (pubkey,), ctx.number)
            event = "WorkerAdded"
        else:
            # Khala keeps the ECDH key, provider and initial score of a re-registered worker.
            updated = {
                **existing,
                "last_updated": now,
                "operator": operator,
                "runtime_version": to_int(info["version"]),
                "confidence_level": confidence,
                "features": features,
            }
            event = "WorkerUpdated"
        self.workers[pubkey] = updated
        self.record_change("Workers", (pubkey,), updated)
        raw_pubkey = to_bytes(pubkey)
        self._push(ctx, _scale.registered(raw_pubkey, to_bytes(updated["ecdh_pubkey"])))
        ctx.emit(
            self.name,
            event,
            pubkey=pubkey,
            attestation_provider=provider,
            confidence_level=confidence,
        )
        self.bench_durations[pubkey] = self.benchmark_duration
        self._push(ctx, _scale.bench_start(raw_pubkey, self.benchmark_duration))

    def call_force_register_worker(
        self, ctx: BlockContext, signer: AccountHex | None, args: Mapping[str, Any]
    ) -> None:
        ensure_root(signer)
        pubkey = key32(args["pubkey"])
        operator = None if args.get("operator") is None else key32(args["operator"])
        info = worker_info_value(
            pubkey,
            key32(args["ecdh_pubkey"]),
            operator=operator,
            now=now_seconds(ctx.timestamp_ms),
            initial_score=None,
        )
        if pubkey not in self.workers:
            self.worker_added_at[pubkey] = ctx.number
            self.record_change("WorkerAddedAt", (pubkey,), ctx.number)
        self.workers[pubkey] = info
        self.record_change("Workers", (pubkey,), info)

    def call_force_set_benchmark_duration(
        self, ctx: BlockContext, signer: AccountHex | None, args: Mapping[str, Any]
    ) -> None:
        ensure_root(signer)
        self.benchmark_duration = to_int(args["value"])
        self.record_change("BenchmarkDuration", (), self.benchmark_duration)

    def call_update_worker_endpoint(
        self, ctx: BlockContext, signer: AccountHex | None, args: Mapping[str, Any]
    ) -> None:
        ensure_signed(signer)
        payload = args["endpoint_payload"]
        signature = to_bytes(args["signature"])
        if len(signature) != 64:
            raise DispatchError(self.name, "InvalidSignatureLength")
        pubkey = key32(payload["pubkey"])
        data = _scale.encode_endpoint_payload(payload)
        if not sr25519.verify(signature, data, to_bytes(pubkey)):
            raise DispatchError(self.name, "InvalidSignature")
        signing_time = to_int(payload["signing_time"])
        if not signing_time < ctx.timestamp_ms <= signing_time + ENDPOINT_SIGNATURE_VALIDITY_MS:
            raise DispatchError(self.name, "InvalidEndpointSigningTime")
        if pubkey not in self.workers:
            raise DispatchError(self.name, "InvalidPubKey")
        name, endpoints = variant(payload["versioned_endpoints"])
        value = {name: [str(e) for e in endpoints]}
        self.endpoints[pubkey] = value
        self.record_change("Endpoints", (pubkey,), value)

    # -- worker messages ----------------------------------------------------------------
    def on_worker_message(
        self, ctx: BlockContext, sender_pubkey: AccountHex, topic: bytes, payload: bytes
    ) -> None:
        """``BenchReport{start_time, iterations}`` → ``initial_score = iterations / duration``."""
        _start_time, iterations = _scale.decode_bench_report(payload)
        info = self.workers.get(sender_pubkey)
        if info is None:
            raise DispatchError(self.name, "WorkerNotFound")
        duration = self.bench_durations.get(sender_pubkey, self.benchmark_duration)
        if duration <= 0:
            raise DispatchError(self.name, "InvalidBenchReport")
        score = min(iterations // duration, U32_MAX)
        updated = {**info, "initial_score": score, "last_updated": now_seconds(ctx.timestamp_ms)}
        self.workers[sender_pubkey] = updated
        self.record_change("Workers", (sender_pubkey,), updated)
        self._push(ctx, _scale.bench_score(to_bytes(sender_pubkey), score))
        ctx.emit(self.name, "InitialScoreSet", pubkey=sender_pubkey, init_score=score)
