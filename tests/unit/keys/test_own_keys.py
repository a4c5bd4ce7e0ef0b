"""Accounts that sign with their own key (``key: {env|file}``): Substrate secret URI forms,
the 0600 rule of key files, the address check, and no key text in any error."""

from __future__ import annotations

from pathlib import Path

import pytest
import sr25519

from poolkeeper.errors import SecretError
from poolkeeper.keys import Secret, key_from_secret, own_keys
from poolkeeper.model.desired import AccountRole, AccountSpec, Desired, KeySource
from poolkeeper.model.ss58 import encode_address

from .conftest import DEV_PHRASE

ALICE = "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"
ALICE_STASH = "be5ddb1579b72e84524fc29e78609e3caf42e85aa118ebfe0b0ad404b5bdd25f"
DEV_ROOT = "46ebddef8cd9bb167dc30878d7113b7e168e6f0646beffd77d69d39bad76b47a"
ALICE_SEED = "0xe5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a"


def _public(text: str) -> str:
    return key_from_secret(Secret(text), origin="test", label="t", ss58_prefix=30).public_key.hex()


@pytest.mark.parametrize(
    ("suri", "public"),
    [
        ("//Alice", ALICE),
        ("//Alice//stash", ALICE_STASH),
        (f"{DEV_PHRASE}//Alice", ALICE),
        (f"  {DEV_PHRASE}  ", DEV_ROOT),
        (DEV_PHRASE, DEV_ROOT),
        (ALICE_SEED, ALICE),
    ],
)
def test_secret_uri_forms_give_substrates_accounts(suri: str, public: str) -> None:
    assert _public(suri) == public


def test_a_soft_junction_differs_from_a_hard_one() -> None:
    assert _public("//Alice/x") not in (_public("//Alice//x"), ALICE)


def test_a_password_changes_the_account() -> None:
    assert _public(f"{DEV_PHRASE}///pw") != DEV_ROOT


def test_prb_secret_key_form_128_hex_with_or_without_0x() -> None:
    _, _, private = sr25519.hard_derive_keypair(
        (b"\x14Alice".ljust(32, b"\0"), *sr25519.pair_from_seed(bytes.fromhex(DEV_ROOT_SEED))),
        b"",
    )
    expanded = bytes(sr25519.convert_secret_key_to_ed25519(bytes(private))).hex()
    assert _public(expanded) == ALICE
    assert _public("0x" + expanded) == ALICE


DEV_ROOT_SEED = "fac7959dbfe72f052e5a0c3c8d6530f202b02fd8f9f5ca3580ec8deb7797479e"


@pytest.mark.parametrize(
    "bad",
    [
        "zebra quartz violin hollow copper lantern maple orchid velvet harbor nickel prism",
        "0x1234",
        "0x" + "z" * 64,
        ALICE_SEED + "///pw",
    ],
)
def test_unusable_secrets_are_refused_without_showing_them(bad: str) -> None:
    with pytest.raises(SecretError) as caught:
        key_from_secret(Secret(bad), origin="environment variable K", label="t", ss58_prefix=30)
    text = str(caught.value)
    assert text.startswith("environment variable K: ")
    for part in bad.split():
        if len(part) > 4:
            assert part not in text


def _desired(address: str | None, key: KeySource) -> Desired:
    account = AccountSpec(name="op", role=AccountRole.OPERATOR, address=address, key=key)
    return Desired(accounts=(account,))


def _alice() -> str:
    return encode_address(bytes.fromhex(ALICE), 30)


def test_env_key_loads_and_matches_its_address() -> None:
    own = own_keys(_desired(_alice(), KeySource(env="K")), environ={"K": "//Alice"})
    assert own.problems == {}
    assert own.keys["op"].address == _alice()
    assert own.keys["op"].verify(b"x", own.keys["op"].sign(b"x"))


def test_key_of_another_address_is_refused() -> None:
    other = encode_address(bytes.fromhex(ALICE_STASH), 30)
    own = own_keys(_desired(other, KeySource(env="K")), environ={"K": "//Alice"})
    assert own.keys == {}
    assert "not of the declared address" in own.problems["op"]
    assert "Alice" not in own.problems["op"]


def test_missing_env_is_a_problem_naming_the_variable() -> None:
    own = own_keys(_desired(_alice(), KeySource(env="PRB_KEY")), environ={})
    assert own.problems["op"] == (
        "account 'op': environment variable PRB_KEY holds no key "
        "(it should hold the account's SURI or seed)"
    )


def test_key_file_must_be_0600_and_relative_paths_follow_the_inventory(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    path = tmp_path / "keys" / "op"
    path.write_text(ALICE_SEED + "\n")
    path.chmod(0o644)
    desired = _desired(_alice(), KeySource(file="keys/op"))
    own = own_keys(desired, base_dir=tmp_path, environ={})
    assert "mode 0644" in own.problems["op"] and "chmod 600" in own.problems["op"]
    assert ALICE_SEED[2:10] not in own.problems["op"]
    path.chmod(0o600)
    own = own_keys(desired, base_dir=tmp_path, environ={})
    assert own.problems == {} and own.keys["op"].address == _alice()
