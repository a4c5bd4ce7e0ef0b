"""Extrinsics: calls encoded from the served metadata, signed without the secret leaving
its ``Signer``, submitted over the node connection.

Why a module of its own: building what is signed is metadata work (call indices, the
batch and proxy wrappers, the runtime's argument types, the mortal era), done by
substrate-interface as an offline codec; its few requests (nonce, genesis and era block
hashes, runtime version) travel over the adapter's one socket (``_connection``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scalecodec.base import ScaleBytes
from scalecodec.types import GenericCall, GenericExtrinsic
from substrateinterface import Keypair, KeypairType, SubstrateInterface

from poolkeeper.chain._connection import NodeConnection
from poolkeeper.chain._scale import compact
from poolkeeper.chain.ports import CallSpec, SignedExtrinsic, Signer
from poolkeeper.errors import ChainNodeError

ERA_PERIOD = 64
"""Blocks an extrinsic stays valid for (mortal era). 64 blocks are 12.8 minutes on
Khala's 12 s blocks: a lost extrinsic is proven dropped, and its actions planned again,
at most that long (less the finality lag) after it was signed (docs/decisions.md)."""


class _SignerKeypair(Keypair):  # type: ignore[misc]
    """Presents a ``Signer`` to substrate-interface as a Keypair without its secret."""

    def __init__(self, signer: Signer, ss58_format: int) -> None:
        super().__init__(
            public_key=signer.public_key, ss58_format=ss58_format, crypto_type=KeypairType.SR25519
        )
        self._signer = signer

    def sign(self, data: bytes | ScaleBytes | str) -> bytes:
        if isinstance(data, ScaleBytes):
            payload = bytes(data.data)
        elif isinstance(data, str):
            payload = bytes.fromhex(data[2:]) if data.startswith("0x") else data.encode()
        else:
            payload = data
        return self._signer.sign(payload)


class ExtrinsicBuilder:
    """Encodes, signs, estimates and submits extrinsics on one ``NodeConnection``."""

    def __init__(self, conn: NodeConnection) -> None:
        self._conn = conn

    def _call_bytes(self, s: SubstrateInterface, spec: CallSpec) -> bytes:
        """SCALE bytes of one call; raw-argument calls are never re-encoded."""
        if spec.raw_args is not None:
            return _call_head(s, spec.pallet, spec.function) + spec.raw_args
        # Not ``compose_call``: it re-checks the runtime first (three requests per call,
        # 300 for a batch of 100); the metadata loaded with the connection is the one used.
        call = s.runtime_config.create_scale_object(type_string="Call", metadata=s.metadata)
        call.encode(
            {
                "call_module": spec.pallet,
                "call_function": spec.function,
                "call_args": dict(spec.args),
            }
        )
        return bytes(call.data.data)

    def _outer_call(
        self, s: SubstrateInterface, calls: Sequence[CallSpec], proxy_for: str | None
    ) -> GenericCall:
        """The call to sign, assembled as bytes (so raw registration payloads, which the
        2023 Khala metadata cannot re-encode, pass through untouched) and decoded once."""
        inner = [self._call_bytes(s, c) for c in calls]
        if len(inner) == 1:
            data = inner[0]
        else:
            utility = s.metadata.get_metadata_pallet("Utility")
            names = {c.name for c in utility.calls or []}
            # force_batch runs every item; runtimes without it (older ones) get `batch`,
            # which stops at the first failure (later items are reported as not executed).
            batch = "force_batch" if "force_batch" in names else "batch"
            data = _call_head(s, "Utility", batch) + compact(len(inner)) + b"".join(inner)
        if proxy_for is not None:
            # Proxy.proxy(real, force_proxy_type: None, call); `real` is a MultiAddress on
            # Khala but a plain AccountId on other runtimes (Asset Hub): encode it as the
            # runtime's metadata says.
            real = _encode_arg(s, "Proxy", "proxy", "real", proxy_for)
            data = _call_head(s, "Proxy", "proxy") + real + b"\x00" + data
        call = s.runtime_config.create_scale_object(
            "Call", data=ScaleBytes(data), metadata=s.metadata
        )
        call.decode()
        _strip_call_ids(call.value)
        return call

    async def sign(
        self,
        signer: Signer,
        calls: Sequence[CallSpec],
        *,
        proxy_for: str | None = None,
        nonce: int | None = None,
    ) -> SignedExtrinsic:
        def build(s: SubstrateInterface) -> SignedExtrinsic:
            call = self._outer_call(s, calls, proxy_for)
            keypair = _SignerKeypair(signer, int(s.ss58_format))
            fin_hash = s.rpc_request("chain_getFinalizedHead", [])["result"]
            era_start = int(s.rpc_request("chain_getHeader", [fin_hash])["result"]["number"], 16)
            use_nonce = nonce if nonce is not None else s.get_account_nonce(keypair.ss58_address)
            extrinsic: GenericExtrinsic = s.create_signed_extrinsic(
                call=call,
                keypair=keypair,
                era={"period": ERA_PERIOD, "current": era_start},
                nonce=use_nonce,
            )
            return SignedExtrinsic(
                extrinsic_hash="0x" + extrinsic.extrinsic_hash.hex(),
                data=bytes(extrinsic.data.data),
                signer=keypair.ss58_address,
                nonce=int(use_nonce),
                call_count=len(calls),
                era_start=era_start,
                era_period=ERA_PERIOD,
            )

        return await self._conn.run(build)

    async def estimate_fee(
        self, signer: Signer, calls: Sequence[CallSpec], *, proxy_for: str | None = None
    ) -> int:
        def fee(s: SubstrateInterface) -> int:
            call = self._outer_call(s, calls, proxy_for)
            info = s.get_payment_info(call, _SignerKeypair(signer, int(s.ss58_format)))
            return int(info["partialFee"]) if info else 0

        return await self._conn.run(fee)

    async def resubmit(self, signed: SignedExtrinsic) -> str | None:
        """Submit ``signed`` (again); the node's rejection text, or None when accepted."""
        try:
            await self._conn.call("author_submitExtrinsic", ["0x" + signed.data.hex()])
        except ChainNodeError as exc:
            return exc.reason
        return None


def _encode_arg(s: SubstrateInterface, pallet: str, function: str, arg: str, value: Any) -> bytes:
    """One argument of a runtime call, encoded with the type the metadata gives it."""
    calls = s.metadata.get_metadata_pallet(pallet).calls or []
    [call] = [c for c in calls if c.name == function]
    [param] = [a for a in call.args if a.name == arg]
    encoded = s.runtime_config.create_scale_object(param.type).encode(value)
    return bytes(encoded.data)


def _strip_call_ids(value: Any) -> None:
    """Drop ``call_index``/``call_hash`` from decoded (nested) calls in place.

    substrate-interface re-encodes the call from its value when it signs, and scalecodec
    refuses call values that carry ``call_index``; module and function names suffice."""
    if isinstance(value, dict):
        if "call_module" in value:
            value.pop("call_index", None)
            value.pop("call_hash", None)
        for item in value.values():
            _strip_call_ids(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _strip_call_ids(item)


def _call_head(s: SubstrateInterface, pallet_name: str, function: str) -> bytes:
    pallet = s.metadata.get_metadata_pallet(pallet_name)
    if pallet is None:
        raise KeyError(f"pallet {pallet_name} is not in the served metadata")
    return bytes([pallet.value["index"], _call_index(pallet, function)])


def _call_index(pallet: Any, function: str) -> int:
    for index, call in enumerate(pallet.calls or []):
        if call.name == function:
            return int(call.value.get("index", index))
    raise KeyError(f"{pallet.name}.{function} is not in the served metadata")
