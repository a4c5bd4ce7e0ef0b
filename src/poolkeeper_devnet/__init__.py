"""The devnet: simulators of a Phala chain and of pRuntimes, for trying poolkeeper locally.

It is a peer of the product, not part of it: the product reaches it only over the
network (websocket JSON-RPC, HTTP), exactly as it reaches a real node and a real pRuntime,
and it imports nothing from the product.
"""
