"""An inventory entry remembers the YAML node it came from, so any stage can place a problem."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from poolkeeper.inventory._messages import loc_text
from poolkeeper.inventory._yaml import Loc, Node, Problem, locate, node_problem
from poolkeeper.model.desired import AccountSpec, PoolSpec, Settings, WorkerSpec

SpecT = TypeVar("SpecT", bound=BaseModel)


@dataclass
class Entry(Generic[SpecT]):
    """One settings block or one list item, where it was written, and its validated form."""

    section: str
    file: str
    index: int | None
    node: Node
    data: Any
    spec: SpecT | None = None

    @property
    def prefix(self) -> str:
        return self.section if self.index is None else f"{self.section}[{self.index}]"

    @property
    def source(self) -> dict[str, Any]:
        """Where the entry starts, as the fields of a ``SourceRef`` (validated with the spec)."""
        return {"file": self.file, "line": self.node.line + 1, "col": self.node.col + 1}

    def problem(self, loc: Loc, text: str, where: str = "value") -> Problem:
        """A problem about the field at ``loc``, placed on its key, value or parent."""
        if where == "parent":
            _, node, _ = locate(self.node, loc[:-1])
            return node_problem(self.file, node, text)
        key_node, node, found = locate(self.node, loc)
        if where == "key" and found and key_node is not None:
            node = key_node
        return node_problem(self.file, node, text)

    def field(self, loc: Loc, text: str) -> Problem:
        """A problem about the field at ``loc``, its path prefixed to ``text``."""
        return self.problem(loc, f"{loc_text(self.prefix, loc)}: {text}")


@dataclass
class Inventory:
    """Every entry found, by section, before and after validation."""

    settings: Entry[Settings] | None
    pools: list[Entry[PoolSpec]]
    workers: list[Entry[WorkerSpec]]
    accounts: list[Entry[AccountSpec]]
