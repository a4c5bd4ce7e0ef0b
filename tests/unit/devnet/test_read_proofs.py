"""Devnet read proofs (docs/devnet-wire.md): the chain's proofs check against its roots."""

from __future__ import annotations

import pytest

from poolkeeper_devnet.chain._storage import PROOF_REST_TAG, Storage, leaf
from poolkeeper_devnet.pruntime._scale import (
    ProofError,
    enc_bytes,
    enc_option,
    read_proof_pairs,
    verify_read_proof,
)


def _proof(storage: Storage, keys: list[bytes], number: int) -> list[bytes]:
    """What ``state_getReadProof`` serves: the pairs, then the rest accumulator."""
    rest = storage.accumulator(number)
    items = []
    for key in keys:
        value = storage.get(key, number)
        items.append(enc_bytes(key) + enc_option(None if value is None else enc_bytes(value)))
        if value is not None:
            rest -= leaf(key, value)
    items.append(PROOF_REST_TAG + (rest % (1 << 256)).to_bytes(32, "little"))
    return items


@pytest.fixture
def storage() -> tuple[Storage, dict[int, bytes]]:
    store = Storage()
    roots = {}
    store.apply(0, {b"a": b"1", b"b": b"2", b"c": b"3"})
    roots[0] = store.root()
    store.apply(1, {b"a": b"10", b"d": b"4"})
    roots[1] = store.root()
    store.apply(2, {b"b": None})
    roots[2] = store.root()
    return store, roots


def test_a_proof_at_an_older_block_checks_against_that_block_root(
    storage: tuple[Storage, dict[int, bytes]],
) -> None:
    store, roots = storage
    for number in (0, 1, 2):
        proof = _proof(store, [b"a", b"b"], number)
        pairs = verify_read_proof(proof, roots[number])
        assert pairs[b"a"] == store.get(b"a", number)
    assert verify_read_proof(_proof(store, [b"a"], 0), roots[0]) == {b"a": b"1"}


def test_a_proof_fails_against_another_root_or_when_tampered(
    storage: tuple[Storage, dict[int, bytes]],
) -> None:
    store, roots = storage
    proof = _proof(store, [b"a"], 1)
    with pytest.raises(ProofError, match="state root"):
        verify_read_proof(proof, roots[0])
    tampered = [enc_bytes(b"a") + enc_option(enc_bytes(b"11")), proof[1]]
    with pytest.raises(ProofError, match="state root"):
        verify_read_proof(tampered, roots[1])
    with pytest.raises(ProofError, match="no rest item"):
        verify_read_proof(proof[:1], roots[1])
    with pytest.raises(ProofError, match="twice"):
        read_proof_pairs([proof[0], proof[0], proof[1]])
    with pytest.raises(ProofError, match="undecodable"):
        read_proof_pairs([b"\xff"])
