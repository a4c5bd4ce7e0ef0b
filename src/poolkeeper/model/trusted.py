"""Model values built from trusted data at the cost of a plain object, for per-pass hot paths.

``BaseModel.model_construct`` skips validation but still walks every field of the model
(aliases, defaults) on each call: ~10 µs a ``Condition``, and a pass at 10,000 workers
builds tens of thousands of them (docs/benchmarks.md, "The loop's pass at 10,000
workers"). ``trusted`` sets the instance's state directly, as ``model_construct`` ends up
doing, from a dict that already holds every field: the caller's values must be valid and
complete (``tests/unit/model/test_trusted.py`` holds it equal to a validated value).

``SharedFieldsSet`` is the base of the frozen models: pydantic gives every instance its
own ``model_fields_set`` (a set of ~300 bytes, a third of a small model), and at 10,000
workers the loop keeps some 40,000 of them alike (docs/decisions.md, "run's memory at
10,000 workers").
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

M = TypeVar("M", bound=BaseModel)

_setattr = object.__setattr__
_SHARED_SETS: dict[frozenset[str], set[str]] = {}
"""One set per distinct fields set: as many entries as combinations of fields given."""


class SharedFieldsSet(BaseModel):
    """A frozen model whose instances share their ``model_fields_set`` with every other
    instance given the same fields. Sound for frozen models only: nothing assigns a
    field, and ``model_copy`` copies the set before adding to it."""

    model_config = ConfigDict(frozen=True)

    def model_post_init(self, context: Any, /) -> None:
        fields = self.__pydantic_fields_set__
        key = frozenset(fields)
        shared = _SHARED_SETS.get(key)
        if shared is None:
            shared = _SHARED_SETS.setdefault(key, fields)
        _setattr(self, "__pydantic_fields_set__", shared)


def trusted(cls: type[M], fields_set: set[str], values: dict[str, Any]) -> M:
    """An instance of ``cls`` holding ``values`` (every field, valid) as they are.

    ``fields_set`` becomes its ``model_fields_set`` (shared between instances: never
    mutated, the models being frozen). Only for models without private attributes,
    extra fields or a ``model_post_init`` of their own (``SharedFieldsSet``'s only does
    what ``fields_set`` does here)."""
    model = cls.__new__(cls)
    _setattr(model, "__dict__", values)
    _setattr(model, "__pydantic_fields_set__", fields_set)
    _setattr(model, "__pydantic_extra__", None)
    _setattr(model, "__pydantic_private__", None)
    return model
