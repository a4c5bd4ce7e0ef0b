"""The inventory loader: YAML files in a directory become one validated ``Desired``.

Errors name ``file:line:col`` and are reported all at once; an invalid inventory
produces no ``Desired`` at all, so nothing downstream can act on half of it.
"""

from poolkeeper.inventory._loader import load_inventory

__all__ = ["load_inventory"]
