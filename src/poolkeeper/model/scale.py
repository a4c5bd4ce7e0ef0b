"""SCALE's compact integer: the product's one encoder and decoder of it.

Several layers meet parity-SCALE by hand for speed or to avoid an I/O library: the
relay's header and storage-change encodings and the storage decoders (``chain/``), the
derivation of account keys from junctions (``keys/``). They all need the compact
integer, and it lives here, in the pure bottom layer every one of them may import, so
there is one copy with one set of tests (``tests/unit/model/test_scale.py``) instead of
one per caller. Like ``ss58``, it is a pure codec: no I/O, no state.
"""

from __future__ import annotations

_MODE_ONE_BYTE = 1 << 6
_MODE_TWO_BYTES = 1 << 14
_MODE_FOUR_BYTES = 1 << 30
_MAX_BIG_BYTES = 67  # the "big integer" mode stores (length - 4) in six bits


def compact(n: int) -> bytes:
    """SCALE ``Compact<uint>`` of ``n`` (unsigned, up to 2**536 - 1)."""
    if n < 0:
        raise ValueError("compact integers are unsigned")
    if n < _MODE_ONE_BYTE:
        return bytes([n << 2])
    if n < _MODE_TWO_BYTES:
        return ((n << 2) | 1).to_bytes(2, "little")
    if n < _MODE_FOUR_BYTES:
        return ((n << 2) | 2).to_bytes(4, "little")
    raw = n.to_bytes((n.bit_length() + 7) // 8, "little")
    if len(raw) > _MAX_BIG_BYTES:
        raise ValueError(f"compact integer of {len(raw)} bytes is over SCALE's 67")
    return bytes([((len(raw) - 4) << 2) | 3]) + raw


def read_compact(data: bytes | memoryview, offset: int = 0) -> tuple[int, int]:
    """Decode a compact integer at ``offset``; return ``(value, offset after it)``.

    Raises ``IndexError`` when the integer starts or ends past the end of ``data``, as
    indexing would, so callers that read on with ``data[...]`` handle one error type.
    """
    first = data[offset]
    mode = first & 3
    if mode == 0:
        return first >> 2, offset + 1
    if mode == 1:
        end = offset + 2
        shift = 2
    elif mode == 2:
        end = offset + 4
        shift = 2
    else:
        start = offset + 1
        end = start + (first >> 2) + 4
        if end > len(data):
            raise IndexError("compact integer runs past the end of the input")
        return int.from_bytes(data[start:end], "little"), end
    if end > len(data):
        raise IndexError("compact integer runs past the end of the input")
    return int.from_bytes(data[offset:end], "little") >> shift, end
