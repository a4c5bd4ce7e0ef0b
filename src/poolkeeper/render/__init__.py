"""Renderers of plans and observations: human text (symbols, colour on a TTY) and JSON.

Pure: they turn model values into strings; the CLI decides where the strings go.
"""
