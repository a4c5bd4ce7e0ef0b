"""Active/standby ownership of shards through a coordination engine (etcd): one writer
per signer and one relay per pRuntime even when several ``poolkeeper run`` processes
watch the same pools. See docs/ha.md."""
