"""A pRuntime simulator speaking pRuntime's HTTP API (protobuf and JSON modes).

``PRuntimeSimulator`` serves N simulated pRuntimes (one port each and/or one shared port
with ``/w/<i>`` prefixes); ``SimulatorThread`` runs one in-process for tests;
``python -m poolkeeper_devnet.pruntime`` runs one as a process. ``minichain`` builds a
small valid chain (headers, justifications, storage changes) without the chain simulator.
"""

from poolkeeper_devnet.pruntime.server import PRuntimeSimulator, SimulatorThread, worker_seed

__all__ = ["PRuntimeSimulator", "SimulatorThread", "worker_seed"]
