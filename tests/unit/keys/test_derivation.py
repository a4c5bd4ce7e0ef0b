"""Derivation vectors: the documented scheme gives the addresses Substrate tools give."""

from __future__ import annotations

import hashlib

import pytest
import sr25519
from substrateinterface import Keypair

from poolkeeper.errors import DerivationError
from poolkeeper.keys import (
    Mnemonic,
    derivation_junctions,
    derivation_label_problem,
    derivation_path,
    derive_address,
    derive_key,
    derive_keys,
    junction_chain_code,
)
from poolkeeper.model.ss58 import encode_address

from .conftest import DEV_PHRASE

OTHER_PHRASE = "legal winner thank year wave sausage worth useful legal winner thank yellow"

# Fixed vectors (SS58 prefix 30), computed once with a Substrate wallet library and
# re-checked live below: a change of scheme breaks these even if both sides change.
VECTORS = [
    (DEV_PHRASE, "operator//pool-a", "416HXvrpawNRE2ubWLsg1vAsMxa1FD2x155rsrpcCeysGZHa"),
    (DEV_PHRASE, "owner//7", "42d4RnfhvJWEPz8nkfbfn4HH3emogNgsYHBUqw6SxK22v6K8"),
    (DEV_PHRASE, "funding", "468j4X8kEc2FWzBGzWs9DVKy3Ea44oBP3BcdBAtgxinPVBaM"),
    (DEV_PHRASE, "relay//rack-a//0", "44xk6LisSYFM6hsuPVbraW1h1Y4ssHu2Ums6z9RyGxFKA4G7"),
    (
        DEV_PHRASE,
        "a-very-long-label-that-exceeds-thirty-two-bytes",
        "43hdA6Pz6x8f8F2F6u3h1QEv5xXdL6XEBJphCYHgpCMqCyZQ",
    ),
    (OTHER_PHRASE, "operator//pool-a", "42RhwxDMaS9KsMN7yP8m8VHXNAeQKQWp2BpugCvZX43rBsSt"),
    (OTHER_PHRASE, "relay//rack-a//0", "3zwHQixTn4AqR4gRaJi1vqSDmscQk2XUsBnSTtWjUpyRRr1b"),
]


@pytest.mark.parametrize(("phrase", "label", "address"), VECTORS)
def test_known_vectors(phrase: str, label: str, address: str) -> None:
    assert derive_address(Mnemonic(phrase), label) == address


@pytest.mark.parametrize(
    "label",
    [
        "operator//pool-a",
        "owner//7",
        "owner//18446744073709551615",
        "worker//0//1//2",
        "ünïcode//名前",
        "x" * 31,
        "x" * 32,
        "x" * 100,
        "with space//and-more",
    ],
)
def test_matches_substrate_secret_uri(dev_phrase: str, label: str) -> None:
    ours = derive_key(Mnemonic(dev_phrase), label)
    theirs = Keypair.create_from_uri(f"{dev_phrase}//poolkeeper//{label}", ss58_format=30)
    assert ours.address == theirs.ss58_address
    assert ours.public_key == theirs.public_key
    assert derivation_path(label) == f"//poolkeeper//{label}"


def test_alice_junction_matches_well_known_dev_account(dev_phrase: str) -> None:
    # //Alice on the dev phrase is the best-known Substrate account of all.
    seed = Keypair.create_from_mnemonic(dev_phrase).seed_hex
    mini = seed if isinstance(seed, bytes) else bytes.fromhex(seed.removeprefix("0x"))
    public, private = sr25519.pair_from_seed(mini)
    _, public, _ = sr25519.hard_derive_keypair((junction_chain_code("Alice"), public, private), b"")
    assert encode_address(bytes(public), 42) == "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"


def test_junction_encoding() -> None:
    assert junction_chain_code("7") == (7).to_bytes(8, "little") + bytes(24)
    assert junction_chain_code("pool") == bytes([4 << 2]) + b"pool" + bytes(27)
    long = "y" * 40
    assert (
        junction_chain_code(long)
        == hashlib.blake2b(bytes([40 << 2]) + long.encode(), digest_size=32).digest()
    )
    # 31 characters + 1 length byte fill exactly 32 bytes: padded, not hashed.
    assert junction_chain_code("z" * 31) == bytes([31 << 2]) + b"z" * 31


def test_labels_are_hard_junctions_below_poolkeeper() -> None:
    assert derivation_junctions("operator//pool-a") == ("poolkeeper", "operator", "pool-a")


@pytest.mark.parametrize(
    ("label", "fragment"),
    [
        ("", "empty"),
        ("a////b", "empty junction"),
        ("//a", "empty junction"),
        ("a/b", "single '/'"),
        (" a", "whitespace"),
        ("a//b\n", "whitespace"),
        ("x//18446744073709551616", "64 bits"),
    ],
)
def test_bad_labels_are_refused(label: str, fragment: str) -> None:
    problem = derivation_label_problem(label)
    assert problem is not None and fragment in problem
    with pytest.raises(DerivationError, match="derivation label"):
        derive_key(Mnemonic(DEV_PHRASE), label)


def test_different_labels_and_mnemonics_give_different_accounts() -> None:
    keys = derive_keys(Mnemonic(DEV_PHRASE), ["a", "b", "a//b"])
    assert len({k.address for k in keys.values()}) == 3
    assert derive_address(Mnemonic(OTHER_PHRASE), "a") != keys["a"].address


def test_signature_verifies_with_substrate_keypair(dev_phrase: str) -> None:
    key = derive_key(Mnemonic(dev_phrase), "operator//pool-a")
    reference = Keypair.create_from_uri(f"{dev_phrase}//poolkeeper//operator//pool-a", 30)
    payload = b"\x04\x00payload to sign"
    signature = key.sign(payload)
    assert len(signature) == 64
    assert reference.verify(payload, signature)
    assert key.verify(payload, reference.sign(payload))
    assert not key.verify(payload + b"!", signature)


def test_whitespace_in_the_mnemonic_does_not_change_the_account(dev_phrase: str) -> None:
    messy = "  " + dev_phrase.replace(" ", " \n\t ") + "\n"
    assert derive_address(Mnemonic(messy), "x") == derive_address(Mnemonic(dev_phrase), "x")


def test_account_keys_refuse_a_mismatching_address() -> None:
    from poolkeeper.keys import account_keys
    from poolkeeper.model.desired import AccountRole, AccountSpec

    mnemonic = Mnemonic(DEV_PHRASE)
    good = AccountSpec(name="op", role=AccountRole.OPERATOR, derivation="operator//pool-a")
    watched = AccountSpec(name="w", role=AccountRole.WATCH, address=VECTORS[1][2])
    keys = account_keys([good, watched], mnemonic)
    assert set(keys) == {"op"}
    assert keys["op"].address == VECTORS[0][2]
    wrong = AccountSpec(
        name="bad", role=AccountRole.OWNER, derivation="owner", address=VECTORS[0][2]
    )
    with pytest.raises(DerivationError, match=r"account bad: declared address .* refusing to sign"):
        account_keys([good, wrong], mnemonic)


def test_derived_key_is_a_chain_signer() -> None:
    from poolkeeper.chain.ports import Signer

    signer: Signer = derive_key(Mnemonic(DEV_PHRASE), "relay")
    assert len(signer.public_key) == 32 and signer.address.startswith("4")
    assert len(signer.sign(b"x")) == 64
