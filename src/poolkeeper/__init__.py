"""poolkeeper keeps Phala Network mining pools in the state their operators declare.

The operator edits an inventory of YAML files kept in git; poolkeeper observes the
chain and every worker's pRuntime, computes the difference with a pure planner and
closes it. The public surface is re-exported here; modules whose names start with an
underscore are private.
"""

from poolkeeper._version import __version__

__all__ = ["__version__"]
