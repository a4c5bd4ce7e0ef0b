"""``trusted`` builds the same model values as validation does, so the conditions built
on the hot path compare, dump and copy like validated ones."""

from __future__ import annotations

from datetime import UTC, datetime

from poolkeeper.model.conditions import Condition, ConditionStatus, Reason, WorkerMemory
from poolkeeper.model.observed import SessionState
from poolkeeper.model.trusted import trusted

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_trusted_condition_equals_the_validated_one_and_behaves_like_it() -> None:
    values = {
        "type": "Synced",
        "status": ConditionStatus.TRUE,
        "reason": Reason.OK,
        "message": "at block 7",
        "last_transition": T0,
        "severity": None,
    }
    fields = set(values)
    built = trusted(Condition, fields, dict(values))
    validated = Condition.model_validate(values)
    assert built == validated
    assert built.model_dump() == validated.model_dump()
    assert built.model_dump_json() == validated.model_dump_json()
    assert built.model_fields_set == validated.model_fields_set
    copied = built.model_copy(update={"message": "at block 8"})
    assert copied.message == "at block 8" and built.message == "at block 7"
    assert fields == set(values), "the shared fields set is not mutated by a copy"
    assert repr(built) == repr(validated)


def test_a_trusted_worker_memory_equals_the_validated_one() -> None:
    values = {
        "blocknum": 5,
        "blocknum_since": T0,
        "session_state": SessionState.WORKER_IDLE,
        "unresponsive_at": (T0,),
        "unreachable_since": None,
    }
    built = trusted(WorkerMemory, set(values), dict(values))
    assert built == WorkerMemory.model_validate(values)
    assert built.model_dump() == WorkerMemory.model_validate(values).model_dump()


def test_frozen_models_share_one_fields_set_per_combination_of_fields() -> None:
    from poolkeeper.model.observed import PRuntimeInfo

    first = PRuntimeInfo.model_validate({"initialized": True, "blocknum": 5})
    second = PRuntimeInfo(initialized=False, blocknum=9)
    other = PRuntimeInfo(initialized=True)
    assert first.model_fields_set is second.model_fields_set
    assert first.model_fields_set == {"initialized", "blocknum"}
    assert other.model_fields_set == {"initialized"}
    copied = first.model_copy(update={"headernum": 3})
    assert copied.model_fields_set == {"initialized", "blocknum", "headernum"}
    assert first.model_fields_set == {"initialized", "blocknum"}  # the shared set untouched
    assert first.model_dump(exclude_unset=True) == {"initialized": True, "blocknum": 5}
