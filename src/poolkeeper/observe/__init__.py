"""The observer: builds an ``Observed`` snapshot from the chain and pRuntime ports.

Failures of one worker are recorded as observations (an unreachable pRuntime is data),
never as a crash of the whole pass.
"""
