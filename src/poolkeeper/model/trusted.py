"""Model values built from trusted data at the cost of a plain object, for per-pass hot paths.

``BaseModel.model_construct`` skips validation but still walks every field of the model
(aliases, defaults) on each call: ~10 µs a ``Condition``, and a pass at 10,000 workers
builds tens of thousands of them (docs/benchmarks.md, "The loop's pass at 10,000
workers"). ``trusted`` sets the instance's state directly, as ``model_construct`` ends up
doing, from a dict that already holds every field: the caller's values must be valid and
complete (``tests/unit/model/test_trusted.py`` holds it equal to a validated value).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

_setattr = object.__setattr__


def trusted(cls: type[M], fields_set: set[str], values: dict[str, Any]) -> M:
    """An instance of ``cls`` holding ``values`` (every field, valid) as they are.

    ``fields_set`` becomes its ``model_fields_set`` (shared between instances: never
    mutated, the models being frozen). Only for models without private attributes,
    extra fields or ``model_post_init``."""
    model = cls.__new__(cls)
    _setattr(model, "__dict__", values)
    _setattr(model, "__pydantic_fields_set__", fields_set)
    _setattr(model, "__pydantic_extra__", None)
    _setattr(model, "__pydantic_private__", None)
    return model
