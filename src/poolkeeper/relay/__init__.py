"""Relays: feed each pRuntime the chain's headers and blocks, from one shared fetch.

A block is fetched from the node once and fanned out to every pRuntime that needs it,
so the node's load does not grow with the number of workers.
"""
