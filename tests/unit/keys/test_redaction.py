"""Secrets that reach a log record or a traceback are masked."""

from __future__ import annotations

import io
import logging

import pytest
from substrateinterface import Keypair

from poolkeeper.keys import (
    MASK,
    Mnemonic,
    RedactingFilter,
    derive_key,
    install_log_redaction,
    redact,
    register_secret,
)

from .conftest import DEV_PHRASE


def _secret_forms() -> list[str]:
    seed = Keypair.create_from_mnemonic(DEV_PHRASE).seed_hex
    seed_hex = seed.hex() if isinstance(seed, bytes) else seed.removeprefix("0x")
    derived = Keypair.create_from_uri(f"{DEV_PHRASE}//poolkeeper//operator//pool-a")
    return [DEV_PHRASE, seed_hex, derived.private_key[:32].hex()]


def test_redact_masks_mnemonic_seed_and_derived_scalar() -> None:
    derive_key(Mnemonic(DEV_PHRASE), "operator//pool-a")
    for form in _secret_forms():
        text = f"before {form} after; upper {form.upper()}; 0x{form}"
        masked = redact(text)
        assert form not in masked and form.upper() not in masked
        assert masked.startswith("before " + MASK)


def test_mnemonic_with_other_whitespace_is_masked() -> None:
    Mnemonic(DEV_PHRASE)
    assert "bottom" not in redact(DEV_PHRASE.replace(" ", "\n  "))


def test_short_values_are_not_registered() -> None:
    register_secret("abc")
    assert redact("abc abc") == "abc abc"


def test_log_records_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    install_log_redaction()
    secret = Mnemonic(DEV_PHRASE)
    log = logging.getLogger("poolkeeper.test")
    with caplog.at_level(logging.INFO):
        log.info("value %s and revealed %s", secret, secret.reveal())
        log.info(f"f-string with {secret.reveal()}")
        try:
            raise ValueError(f"oops {secret.reveal()}")
        except ValueError:
            log.exception("failed")
    assert caplog.records
    assert "bottom" not in caplog.text
    assert MASK in caplog.text
    assert "ValueError: oops ***" in caplog.text


def test_filter_on_a_handler_redacts_message_and_traceback() -> None:
    Mnemonic(DEV_PHRASE)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    log = logging.getLogger("poolkeeper.test.handler")
    log.propagate = False
    log.addHandler(handler)
    try:
        try:
            raise RuntimeError(DEV_PHRASE)
        except RuntimeError:
            log.error("secret=%s", DEV_PHRASE, exc_info=True)
    finally:
        log.removeHandler(handler)
    output = stream.getvalue()
    assert "bottom" not in output
    assert "secret=***" in output and "RuntimeError: ***" in output


def test_hex_secret_inside_a_longer_hex_run_and_beside_lookalikes() -> None:
    secret = bytes(range(100, 132))
    register_secret(secret.hex())
    lookalike = secret.hex()[:40] + "00" * 12  # same first digits, different secret
    text = f"a {lookalike} b ff{secret.hex().upper()}ee c 0x{secret.hex()}"
    masked = redact(text)
    assert secret.hex() not in masked.lower()
    assert lookalike in masked
    assert masked == f"a {lookalike} b ff{MASK}ee c 0x{MASK}"
