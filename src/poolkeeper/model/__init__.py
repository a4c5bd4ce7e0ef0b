"""Pure data types shared by every layer: what is desired, what was observed, what to do.

Nothing here performs I/O; everything is immutable so a plan computed from the same
inputs is always the same plan.
"""
