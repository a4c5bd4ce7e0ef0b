"""Every error poolkeeper raises on purpose, in one tree.

Callers catch the branch they can act on; the CLI maps the tree to exit codes.
Messages never contain secrets (mnemonics, seeds): secret values are carried in
types that cannot print themselves (see ``poolkeeper.keys``).

    PoolkeeperError                 base of everything below
    ├── InventoryError              the inventory is invalid; carries every problem found
    ├── SnapshotError               an observed-state snapshot file cannot be read
    ├── SecretError                 a secret source is missing, unreadable or unsafe
    │   └── KeysUnusable            accounts that must sign have no usable key (``problems``)
    ├── DerivationError             a derivation label or a derived address is wrong
    ├── StateDirError               the state dir cannot be used (see apply.statedir)
    │   ├── StateDirBusy            another poolkeeper holds the state dir lock
    │   └── JournalDamaged          the journal is damaged, missing or of another schema
    ├── TemporaryError              worth retrying with backoff (network, RCU in progress, ...)
    │   ├── ChainUnavailable        the node cannot be reached or dropped the connection
    │   ├── ChainNodeError          the node answered a request with a JSON-RPC error
    │   └── PRuntimeUnavailable     a pRuntime cannot be reached, timed out, or answered 503
    │       └── PRuntimeBusy        "RCU in progress": the pRuntime asks to try again later
    └── PermanentError              retrying the same thing will fail the same way
        ├── ChainCallFailed         an extrinsic was rejected or dispatched with an error
        ├── ChainHistoryUnavailable the node has no state for the past blocks asked about
        ├── PRuntimeCallFailed      a pRuntime answered with an error (status + PrpcError text)
        │   ├── PRuntimeNotInitialized      "Runtime not initialized"
        │   ├── PRuntimeAlreadyInitialized  "Runtime already initialized"
        │   └── PRuntimeSyncRejected        a sync call was refused (BlockNumberMismatch, ...)
        └── StalePlan               a saved plan no longer matches inventory or chain
"""

from __future__ import annotations


class PoolkeeperError(Exception):
    """Base class of every error poolkeeper raises on purpose."""


class InventoryError(PoolkeeperError):
    """The inventory is invalid. ``problems`` lists every problem, ``file:line:col: text``."""

    def __init__(
        self, problems: list[str], located: list[tuple[str, int, int, str]] | None = None
    ) -> None:
        self.problems = list(problems)
        self.located = list(located) if located is not None else []
        """The same problems as ``(file, line, col, text)``; line 0 when there is no position."""
        count = len(self.problems)
        head = f"inventory has {count} problem{'s' if count != 1 else ''}"
        super().__init__(head + ":\n" + "\n".join(self.problems))


class SnapshotError(PoolkeeperError):
    """An observed-state snapshot could not be read or does not validate."""


class SecretError(PoolkeeperError):
    """A secret could not be obtained safely. The message names the source, never the value."""


class KeysUnusable(SecretError):
    """Accounts that must sign have no usable key. ``problems``: one line per account."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class DerivationError(PoolkeeperError):
    """A derivation label is unusable, or a declared address does not match its derivation."""


class TemporaryError(PoolkeeperError):
    """A failure that may go away by itself: retry with backoff."""


class ChainUnavailable(TemporaryError):
    """The Substrate node cannot be reached, or the connection dropped."""


class ChainNodeError(TemporaryError):
    """The node answered a request with a JSON-RPC error (busy, restarting, pruned, ...).

    Names the node and the method; ``reason`` is the node's ``code: message: data``."""

    def __init__(self, url: str, method: str, reason: str) -> None:
        self.url, self.method, self.reason = url, method, reason
        where = f"{method} on {url}" if method else url
        super().__init__(f"chain node error: {where}: {reason}")


class PRuntimeUnavailable(TemporaryError):
    """A pRuntime cannot be reached, timed out, or asked to retry later."""

    def __init__(self, url: str, method: str = "", reason: str = "") -> None:
        self.url = url
        self.method = method
        self.reason = reason or url
        super().__init__(f"pRuntime {url} {method}: {reason}" if method else url)


class PRuntimeBusy(PRuntimeUnavailable):
    """The pRuntime is applying blocks ("RCU in progress"): retry the call shortly."""


class PermanentError(PoolkeeperError):
    """A failure that will repeat if the same thing is tried again unchanged."""


class ChainCallFailed(PermanentError):
    """An extrinsic was rejected by the node or dispatched with a module error."""


class ChainHistoryUnavailable(PermanentError):
    """The node cannot answer about past blocks (it prunes their state)."""


class PRuntimeCallFailed(PermanentError):
    """A pRuntime answered with an error (HTTP 4xx/5xx, usually with a PrpcError).

    ``status`` is the HTTP status, ``message`` the decoded PrpcError text (or the raw
    body for 403/413), ``kind`` a stable name for what went wrong: ``method_not_found``
    (404), ``decode_error`` (400), ``forbidden`` (403), ``too_large`` (413),
    ``not_initialized``, ``already_initialized``, ``sync`` or ``app`` (other 500s).
    """

    kind = "app"

    def __init__(self, url: str, method: str, status: int, message: str, kind: str = "") -> None:
        self.url = url
        self.method = method
        self.status = status
        self.message = message
        if kind:
            self.kind = kind
        super().__init__(f"pRuntime {url} {method}: HTTP {status}: {message}")


class PRuntimeNotInitialized(PRuntimeCallFailed):
    """The pRuntime has not been given InitRuntime yet."""

    kind = "not_initialized"


class PRuntimeAlreadyInitialized(PRuntimeCallFailed):
    """InitRuntime was called on a pRuntime that already ran it."""

    kind = "already_initialized"


class PRuntimeSyncRejected(PRuntimeCallFailed):
    """A SyncHeader/SyncParaHeader/DispatchBlocks batch was refused.

    ``reason`` is the pRuntime's error name: BlockNumberMismatch, HeaderHashMismatch,
    MissingJustification, StateRootMismatch, RelaychainHeaderNotSynced, NoStateRoot,
    ChainModeMismatch, EmptyRequest, HeaderValidateFailed, StorageProofFailed.
    """

    kind = "sync"

    @property
    def reason(self) -> str:
        """The error name, without its details (``StateRootMismatch``, ...)."""
        name = self.message.split("(", 1)[0].split(" ", 1)[0]
        return name


class StalePlan(PermanentError):
    """A saved plan no longer applies: the inventory or the chain moved since it was made."""


class StateDirError(PoolkeeperError):
    """The state directory (journal, lock, relay logs) cannot be used as it is."""


class StateDirBusy(StateDirError):
    """Another process holds the state dir lock. ``holder`` says who (``LockHolder``)."""

    def __init__(self, state_dir: object, holder: object) -> None:
        self.state_dir = state_dir
        self.holder = holder
        describe = getattr(holder, "describe", None)
        who = describe() if callable(describe) else str(holder)
        super().__init__(f"another poolkeeper ({who}) holds {state_dir}")


class JournalDamaged(StateDirError):
    """The journal cannot be trusted: damaged, truncated, emptied, missing while the state
    dir shows earlier use, or of an unknown schema. ``path`` names the file."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(
            f"journal {path} {problem}.\n"
            "It records unsettled extrinsics, today's top-ups and created pools; poolkeeper "
            "will not write without it.\n"
            f"Either restore {path} from a backup, or run `poolkeeper journal reset` on this "
            "inventory to set it aside and start a new one (it tells what is lost)."
        )
