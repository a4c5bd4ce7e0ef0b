"""The executor and its journal: turns plan actions into batched, signed extrinsics.

Every submission is journaled before it leaves, so a crash mid-apply never submits the
same extrinsic twice.
"""
