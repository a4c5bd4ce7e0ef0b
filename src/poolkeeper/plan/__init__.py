"""The planner: ``plan_for(desired, observed, policy) -> Plan``, pure and deterministic.

It is the heart of poolkeeper: each pass recomputes the whole difference between the
inventory and the observed world; a worker's phase is derived, never stored.
"""
