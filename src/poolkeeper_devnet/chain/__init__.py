"""A Phala chain simulator speaking Substrate JSON-RPC with SCALE-encoded data."""
