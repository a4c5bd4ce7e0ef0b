"""A pRuntime simulator speaking pRuntime's HTTP API (protobuf and JSON modes)."""
