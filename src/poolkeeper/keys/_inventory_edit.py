"""Write derived addresses into the inventory, changing nothing else.

``accounts generate`` fills ``address:`` in for every derived account. The operator
reviews that change in git, so the diff must show the added lines and nothing more:
no re-indentation, no lost comments, no re-quoted strings. ruamel.yaml's composer
gives exact start and end marks for every node; the new line is spliced into the
original text at those marks, so every other byte is left as it was (a re-dump,
even a round-trip one, normalises indentation and spacing).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_NULL_TAG = "tag:yaml.org,2002:null"
_FOLD_MARK = "\x07"  # ruamel's composer marks folds in folded scalars with it


@dataclass(frozen=True)
class AccountSite:
    """Where one account mapping is written, and what it says about its address."""

    file: Path
    name: str
    line: int
    """1-based line where the account mapping starts."""
    derivation: str | None
    address: str | None
    address_line: int | None
    """1-based line of the ``address`` value, when one is written."""
    _mapping: MappingNode

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


def _scalar(node: Node | None) -> str | None:
    if isinstance(node, ScalarNode) and node.tag != _NULL_TAG and _FOLD_MARK not in node.value:
        return str(node.value)
    return None


def _entries(mapping: MappingNode) -> dict[str, tuple[ScalarNode, Node]]:
    out: dict[str, tuple[ScalarNode, Node]] = {}
    for key, value in mapping.value:
        if isinstance(key, ScalarNode):
            out[str(key.value)] = (key, value)
    return out


def _account_mappings(document: Node) -> list[tuple[str | None, MappingNode]]:
    """(name given by a mapping key or None, account mapping) under a top-level ``accounts``."""
    if not isinstance(document, MappingNode):
        return []
    found: list[tuple[str | None, MappingNode]] = []
    for key, value in document.value:
        if not (isinstance(key, ScalarNode) and key.value == "accounts"):
            continue
        if isinstance(value, SequenceNode):
            found.extend((None, item) for item in value.value if isinstance(item, MappingNode))
        elif isinstance(value, MappingNode):
            found.extend(
                (str(k.value), v)
                for k, v in value.value
                if isinstance(k, ScalarNode) and isinstance(v, MappingNode)
            )
    return found


_BOM = "\ufeff"


def _read(path: Path) -> str:
    """The file's text without a leading byte-order mark (marks index into this text)."""
    return path.read_bytes().decode("utf-8").removeprefix(_BOM)


def _write_text(path: Path, text: str) -> str:
    """``text`` with the byte-order mark ``path`` started with, if any."""
    return _BOM + text if path.read_bytes().startswith(_BOM.encode()) else text


def find_account_sites(files: list[Path]) -> tuple[list[AccountSite], list[str]]:
    """Every account mapping in ``files``; problems (unreadable YAML) as ``file:line: text``."""
    sites: list[AccountSite] = []
    problems: list[str] = []
    yaml = YAML()
    for path in files:
        try:
            text = _read(path)
            documents = list(yaml.compose_all(text))
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{path}: cannot be read ({exc})")
            continue
        except YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
            problems.append(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})")
            continue
        for document in documents:
            for outer_name, mapping in _account_mappings(document):
                entries = _entries(mapping)
                name = (
                    outer_name
                    if outer_name is not None
                    else _scalar(entries.get("name", (None, None))[1])
                )
                if name is None:
                    continue
                address_entry = entries.get("address")
                derivation_entry = entries.get("derivation")
                sites.append(
                    AccountSite(
                        file=path,
                        name=name,
                        line=mapping.start_mark.line + 1,
                        derivation=_scalar(derivation_entry[1]) if derivation_entry else None,
                        address=_scalar(address_entry[1]) if address_entry else None,
                        address_line=(
                            address_entry[1].start_mark.line + 1 if address_entry else None
                        ),
                        _mapping=mapping,
                    )
                )
    return sites, problems


@dataclass(frozen=True)
class _Splice:
    offset: int
    """Character offset in the file text where ``text`` goes."""
    replace_until: int
    text: str


def _after_key_value(mapping: MappingNode) -> tuple[ScalarNode, Node] | None:
    """The entry after which the new line goes: derivation, else name, else the last scalar."""
    entries = _entries(mapping)

    def usable(entry: tuple[ScalarNode, Node]) -> bool:
        key, value = entry
        # An alias points back at a node written elsewhere: no place to write after.
        return isinstance(value, ScalarNode) and value.start_mark.index >= key.end_mark.index

    for preferred in ("derivation", "name"):
        entry = entries.get(preferred)
        if entry and usable(entry):
            return entry
    candidates = [e for e in entries.values() if usable(e)]
    if not candidates:
        return None
    return max(candidates, key=lambda e: (e[1].end_mark.line, e[1].end_mark.column))


def _newline_of(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _splice_for(site: AccountSite, text: str, address: str) -> _Splice | str:
    """The edit writing ``address`` into ``site``, or why it cannot be made."""
    value_text = f"'{address}'" if address.isdigit() else address
    mapping = site._mapping
    entries = _entries(mapping)
    if "address" in entries:
        key, value = entries["address"]
        colon = text.find(":", key.end_mark.index)
        if colon < 0:
            return f"{site}: cannot find the ':' after address"
        until = colon + 1
        if (
            isinstance(value, ScalarNode)
            and value.value != ""
            and value.start_mark.line == key.end_mark.line
        ):
            until = value.end_mark.index
        return _Splice(colon + 1, until, " " + value_text)
    anchor = _after_key_value(mapping)
    if anchor is None:
        return f"{site}: cannot find where to write the address of {site.name}; add it by hand"
    key, value = anchor
    if mapping.flow_style:
        at = value.end_mark.index
        return _Splice(at, at, f", address: {value_text}")
    newline = _newline_of(text)
    line_end = text.find("\n", value.end_mark.index)
    prefix = ""
    if value.end_mark.column == 0 and value.end_mark.index > value.start_mark.index:
        at = value.end_mark.index  # a block scalar ends at the start of the next line
    elif line_end < 0:
        at = len(text)
        prefix = newline
    else:
        at = line_end + 1
    return _Splice(at, at, f"{prefix}{' ' * key.start_mark.column}address: {value_text}{newline}")


def plan_address_edits(
    edits: list[tuple[AccountSite, str]],
) -> tuple[dict[Path, str], list[str]]:
    """New text of every file touched by ``edits`` (site, address), or the problems found."""
    by_file: dict[Path, list[tuple[AccountSite, str]]] = {}
    for site, address in edits:
        by_file.setdefault(site.file, []).append((site, address))
    new_texts: dict[Path, str] = {}
    problems: list[str] = []
    for path, items in by_file.items():
        text = _read(path)
        splices: list[_Splice] = []
        for site, address in items:
            splice = _splice_for(site, text, address)
            if isinstance(splice, str):
                problems.append(splice)
            else:
                splices.append(splice)
        for splice in sorted(splices, key=lambda s: s.offset, reverse=True):
            text = text[: splice.offset] + splice.text + text[splice.replace_until :]
        new_texts[path] = _write_text(path, text)
    return new_texts, problems


def write_files_atomically(new_texts: dict[Path, str]) -> None:
    """Replace each file by its new text (same mode; a crash leaves the old or the new file)."""
    for path, text in new_texts.items():
        mode = path.stat().st_mode & 0o7777
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
