"""Renderers of plans and observations: human text (symbols, colour on a TTY) and JSON.

Pure: they turn model values into strings; the CLI decides where the strings go.
"""

from poolkeeper.render._json import (
    FORMAT_VERSION,
    PlanDocumentError,
    plan_document,
    plan_from_document,
    render_json,
)
from poolkeeper.render._text import NO_CHANGES, render_text, summary_line

__all__ = [
    "FORMAT_VERSION",
    "NO_CHANGES",
    "PlanDocumentError",
    "plan_document",
    "plan_from_document",
    "render_json",
    "render_text",
    "summary_line",
]
