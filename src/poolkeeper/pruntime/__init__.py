"""The pRuntime port and its httpx adapter speaking pRuntime's protobuf HTTP API.

Only this package knows pRuntime's wire format.
"""
