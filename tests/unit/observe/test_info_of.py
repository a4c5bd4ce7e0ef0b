"""The observer builds each ``GetInfo`` answer's model value without validating it again
(10,000 a pass): the value must equal the validated one, field for field."""

from __future__ import annotations

from poolkeeper.model.observed import PRuntimeInfo
from poolkeeper.observe.pruntime_info import info_of
from poolkeeper.pruntime import PhactoryInfo
from poolkeeper.pruntime.messages import SystemInfo


def test_the_model_of_a_decoded_answer_equals_the_validated_one() -> None:
    decoded = PhactoryInfo(
        initialized=True,
        registered=True,
        genesis_block_hash="aa" * 32,
        public_key="bb" * 32,
        ecdh_public_key="cc" * 32,
        headernum=11,
        para_headernum=12,
        blocknum=13,
        pending_messages=2,
        score=99,
        version="1.2.3",
        git_revision="f" * 40,
        dev_mode=True,
        system=SystemInfo(genesis_block=7),
    )
    built = info_of(decoded)
    validated = PRuntimeInfo(
        initialized=True,
        registered=True,
        headernum=11,
        para_headernum=12,
        blocknum=13,
        public_key="bb" * 32,
        ecdh_public_key="cc" * 32,
        genesis_block_hash="aa" * 32,
        score=99,
        version="1.2.3",
        git_revision="f" * 40,
        dev_mode=True,
        pending_messages=2,
        genesis_block=7,
    )
    assert built == validated
    assert built.model_dump_json() == validated.model_dump_json()
    assert built.model_fields_set == validated.model_fields_set
    uninitialized = info_of(PhactoryInfo())
    assert uninitialized == PRuntimeInfo(initialized=False, version="", git_revision="")
    assert uninitialized.genesis_block is None and uninitialized.public_key is None
