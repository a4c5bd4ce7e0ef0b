"""Imports from other pool tools (PRB v3, PRB v2's local.db) and spreadsheets into an
inventory directory.

An operator switching tools should not retype a fleet: importers read the old tool's
records, build the same inventory a person would write, and never carry a secret over
(keys are named by where they will be read). See docs/import.md.
"""

from poolkeeper.importers._csv import PoolOwners, read_csv
from poolkeeper.importers._draft import Draft, ImportFailed, KeyNeeded, env_name, write_draft
from poolkeeper.importers._prb2 import parse_operators, read_prb2
from poolkeeper.importers._prb3 import DisabledAs, read_prb3

__all__ = [
    "DisabledAs",
    "Draft",
    "ImportFailed",
    "KeyNeeded",
    "PoolOwners",
    "env_name",
    "parse_operators",
    "read_csv",
    "read_prb2",
    "read_prb3",
    "write_draft",
]
