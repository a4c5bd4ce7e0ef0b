"""Secret types never show their value: repr, str, format, pickle, copy, JSON."""

from __future__ import annotations

import copy
import json
import pickle
import traceback

import pytest
from pydantic import BaseModel, ConfigDict

from poolkeeper.errors import SecretError
from poolkeeper.keys import DerivedKey, Mnemonic, Secret, derive_key

from .conftest import DEV_PHRASE


def test_every_textual_form_is_masked() -> None:
    secret = Mnemonic(DEV_PHRASE)
    forms = [
        repr(secret),
        str(secret),
        f"{secret}",
        f"{secret!r}",
        f"{secret:>80}",
        "%s" % (secret,),  # noqa: UP031
        "{}".format(secret),  # noqa: UP032
    ]
    forms.append(repr([secret, {"k": secret}]))
    for form in forms:
        assert "bottom" not in form
        assert "Mnemonic(***)" in form


def test_reveal_returns_the_normalised_value() -> None:
    assert Mnemonic("  " + DEV_PHRASE + "\n").reveal() == DEV_PHRASE
    assert Secret("plain value").reveal() == "plain value"


@pytest.mark.parametrize(
    "leak",
    [
        pickle.dumps,
        copy.copy,
        copy.deepcopy,
        json.dumps,
    ],
)
def test_cannot_be_pickled_copied_or_json_dumped(leak: object) -> None:
    secret = Mnemonic(DEV_PHRASE)
    with pytest.raises(TypeError) as info:
        leak(secret)  # type: ignore[operator]
    assert "bottom" not in str(info.value)


def test_no_instance_dict_and_immutable() -> None:
    secret = Secret("some secret value")
    assert not hasattr(secret, "__dict__")
    with pytest.raises(AttributeError):
        secret._value = "other"  # type: ignore[misc]


def test_pydantic_refuses_to_serialise_to_json() -> None:
    class Holder(BaseModel):
        model_config = ConfigDict(arbitrary_types_allowed=True)
        secret: Mnemonic

    holder = Holder(secret=Mnemonic(DEV_PHRASE))
    assert "bottom" not in repr(holder)
    with pytest.raises(Exception) as info:
        holder.model_dump_json()
    assert "bottom" not in str(info.value)
    assert "refusing to serialise" in str(info.value)


def test_equality_is_by_value_and_unhashable() -> None:
    assert Mnemonic(DEV_PHRASE) == Mnemonic(DEV_PHRASE + " ")
    assert Secret("abcdefgh1") != Secret("abcdefgh2")
    assert Secret("abcdefgh1") != "abcdefgh1"
    with pytest.raises(TypeError):
        hash(Secret("abcdefgh1"))


def test_invalid_mnemonic_error_does_not_echo_the_words() -> None:
    wrong = DEV_PHRASE.replace("walk", "zebra")
    with pytest.raises(SecretError) as info:
        Mnemonic(wrong)
    text = "".join(traceback.format_exception(info.value))
    assert "zebra" not in text and "bottom" not in text
    assert "12 words" in text


def test_generated_mnemonics_are_24_valid_words_and_differ() -> None:
    first, second = Mnemonic.generate(), Mnemonic.generate()
    assert first.word_count == 24
    assert first != second


def test_derived_key_shows_only_public_parts() -> None:
    key = derive_key(Mnemonic(DEV_PHRASE), "operator//pool-a")
    assert isinstance(key, DerivedKey)
    text = repr(key) + str(key) + f"{key}"
    assert key.address in text
    assert not hasattr(key, "__dict__")
    with pytest.raises(TypeError):
        pickle.dumps(key)
    with pytest.raises(TypeError):
        copy.deepcopy(key)
    public_attributes = [a for a in dir(key) if not a.startswith("_")]
    assert set(public_attributes) == {
        "address",
        "label",
        "public_key",
        "sign",
        "ss58_prefix",
        "verify",
    }
