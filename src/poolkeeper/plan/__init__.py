"""The planner: ``plan_for(desired, observed, policy) -> Plan``, pure and deterministic.

It is the heart of poolkeeper: each pass recomputes the whole difference between the
inventory and the observed world; a worker's phase is derived, never stored. The
rules are written down in docs/planner.md.
"""

from poolkeeper.plan._planner import plan_for
from poolkeeper.plan._policy import PlanPolicy, TargetError, check_target
from poolkeeper.plan._relays import ATTESTATION_PROVIDER_BYTES, WantedRelay, wanted_relays
from poolkeeper.plan._targets import targeted_workers

__all__ = [
    "ATTESTATION_PROVIDER_BYTES",
    "PlanPolicy",
    "TargetError",
    "WantedRelay",
    "check_target",
    "plan_for",
    "targeted_workers",
    "wanted_relays",
]
