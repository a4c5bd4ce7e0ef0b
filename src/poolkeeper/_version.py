"""The single place the package version is written down (pyproject reads it too)."""

__version__ = "0.1.0"
