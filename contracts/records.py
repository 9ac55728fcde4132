"""Value types that leave the contracts package: anchor records and prepared transactions.

Bytes inside; ``to_dict``/``to_json`` and ``from_dict``/``from_json`` are the only places
hex appears. Constructors validate shapes, so a record read back from JSON is as well
formed as one built from a receipt. Reading accepts exactly what writing produces: the same
keys, ``0x`` and lower-case hex of the exact length (no spaces, which ``bytes.fromhex``
would skip), checksum addresses, and integers that are JSON integers rather than strings.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, fields
from typing import Any

from eth_utils.address import is_checksum_address

UINT64_MAX = 2**64 - 1
_HASH_FIELDS = ("log_id", "root_hash", "tx_hash", "block_hash")
_LOWER_HEX = re.compile(r"0x(?:[0-9a-f]{2})+")


@dataclass(frozen=True)
class AnchorRecord:
    """Where and how one checkpoint (``log_id``, ``tree_size``, ``root_hash``) was anchored.

    ``chain_id`` and ``contract`` are part of the record so that an anchor on one chain (or
    one registry) cannot be passed off as an anchor on another; ``anchorer`` is the account
    that sent the anchor (the ``Anchored`` event's), which the registry had bound to
    ``log_id`` at the time.
    """

    chain_id: int
    contract: str
    log_id: bytes
    tree_size: int
    root_hash: bytes
    anchorer: str
    tx_hash: bytes
    block_number: int
    block_hash: bytes
    timestamp: int
    gas_used: int

    def __post_init__(self) -> None:
        for name in ("contract", "anchorer"):
            value = getattr(self, name)
            if not isinstance(value, str) or not is_checksum_address(value):
                raise ValueError(f"{name} {value!r} is not a checksum address")
        for name in _HASH_FIELDS:
            _require_bytes32(name, getattr(self, name))
        for name in ("chain_id", "tree_size", "block_number", "timestamp", "gas_used"):
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise ValueError(f"{name} must be a non-negative int, got {value!r}")
        if not 1 <= self.tree_size <= UINT64_MAX:
            raise ValueError(f"tree_size {self.tree_size} is outside 1..2**64-1")

    def to_dict(self) -> dict[str, int | str]:
        return {k: "0x" + v.hex() if isinstance(v, bytes) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnchorRecord:
        expected = {f.name for f in fields(cls)}
        if set(data) != expected:
            raise ValueError(f"anchor record keys {sorted(data)} != {sorted(expected)}")
        values: dict[str, Any] = {
            name: _from_hex(name, data[name], 32) if name in _HASH_FIELDS else data[name]
            for name in expected
        }
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> AnchorRecord:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("an anchor record must be a JSON object")
        return cls.from_dict(data)


@dataclass(frozen=True)
class PreparedTx:
    """A signed, not yet sent transaction: record ``tx_hash`` durably, then send ``raw``."""

    tx_hash: bytes
    raw: bytes
    nonce: int

    def __post_init__(self) -> None:
        _require_bytes32("tx_hash", self.tx_hash)
        if not isinstance(self.raw, bytes) or not self.raw:
            raise ValueError("raw transaction must be non-empty bytes")
        if type(self.nonce) is not int or self.nonce < 0:
            raise ValueError(f"nonce must be a non-negative int, got {self.nonce!r}")

    def to_dict(self) -> dict[str, int | str]:
        return {
            "tx_hash": "0x" + self.tx_hash.hex(),
            "raw": "0x" + self.raw.hex(),
            "nonce": self.nonce,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreparedTx:
        expected = {f.name for f in fields(cls)}
        if set(data) != expected:
            raise ValueError(f"prepared transaction keys {sorted(data)} != {sorted(expected)}")
        return cls(
            tx_hash=_from_hex("tx_hash", data["tx_hash"], 32),
            raw=_from_hex("raw", data["raw"]),
            nonce=data["nonce"],
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> PreparedTx:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("a prepared transaction must be a JSON object")
        return cls.from_dict(data)


def _require_bytes32(name: str, value: object) -> None:
    if not isinstance(value, bytes) or len(value) != 32:
        raise ValueError(f"{name} must be 32 bytes, got {value!r}")


def _from_hex(name: str, value: object, length: int | None = None) -> bytes:
    """Bytes from ``0x`` + lower-case hex (what ``to_dict`` writes), ``length`` bytes if given."""
    if not isinstance(value, str) or _LOWER_HEX.fullmatch(value) is None:
        raise ValueError(f"{name} must be 0x followed by lower-case hex, got {value!r}")
    data = bytes.fromhex(value[2:])
    if length is not None and len(data) != length:
        raise ValueError(f"{name} must be {length} bytes, got {len(data)}")
    return data
