"""The chain port (small Protocols) and its substrate-interface adapter.

Only this package speaks to a Substrate node; everything above sees plain model values.
"""
