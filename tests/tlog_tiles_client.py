"""A C2SP tlog-tiles client written from the specs alone (c2sp.org/tlog-tiles,
tlog-checkpoint, signed-note; RFC 6962 section 2.1), to check the log as any client would.

It imports nothing of consent-ledger (not ``hashing``): paths, note signatures, the Merkle
tree hash, inclusion paths and their verification are written here again from the texts.
"""

from __future__ import annotations

import base64
import hashlib
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

Fetch = Callable[[str], bytes]
"""The bytes at ``<prefix>/<path>``; FileNotFoundError when there are none."""


def http_fetch(prefix: str) -> Fetch:
    def fetch(path: str) -> bytes:
        try:
            with urllib.request.urlopen(f"{prefix}/{path}", timeout=30) as answer:
                data: bytes = answer.read()
                return data
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise FileNotFoundError(path) from exc
            raise

    return fetch


def directory_fetch(root: Path) -> Fetch:
    return lambda path: (root / path).read_bytes()


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes


def open_checkpoint(note: str, vkey: str) -> Checkpoint:
    """signed-note: text, a blank line, "— <name> <base64(key hash || signature)>" lines;
    vkey "<name>+<hex key hash>+<base64(0x01 || Ed25519 public key)>"; key hash is
    SHA-256(name || 0x0A || 0x01 || public key)[:4]. The origin must be the key's name."""
    name, key_hash_hex, key_b64 = vkey.strip().split("+", 2)
    key = base64.b64decode(key_b64)
    assert key[0] == 1, "not an Ed25519 vkey"
    assert len(key) == 33, "not an Ed25519 vkey"
    key_hash = hashlib.sha256(name.encode() + b"\n" + key).digest()[:4]
    assert key_hash.hex() == key_hash_hex, "vkey hash does not match"
    text, _, signatures = note.partition("\n\n")
    text += "\n"
    verified = False
    for line in signatures.splitlines():
        dash, signer, signature_b64 = line.split(" ")
        assert dash == "\u2014"
        signature = base64.b64decode(signature_b64)
        if signer == name and signature[:4] == key_hash:
            Ed25519PublicKey.from_public_bytes(key[1:]).verify(signature[4:], text.encode())
            verified = True
    assert verified, "no signature by the log's key"
    origin, size, root = text.split("\n")[:3]
    assert origin == name, "checkpoint origin is not the key's name"
    return Checkpoint(origin, int(size), base64.b64decode(root))


def tile_path(level: int, index: int, width: int = 256) -> str:
    """tile/<L>/<N>[.p/<W>], N as 3-digit elements, all but the last prefixed x."""
    elements = [f"{index % 1000:03d}"]
    index //= 1000
    while index > 0:
        elements.insert(0, f"x{index % 1000:03d}")
        index //= 1000
    suffix = f".p/{width}" if width < 256 else ""
    return f"tile/{level}/{'/'.join(elements)}{suffix}"


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def mth(hashes: list[bytes]) -> bytes:
    """RFC 6962 MTH over leaf hashes: split at the largest power of two below n."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return _node(mth(hashes[:k]), mth(hashes[k:]))


def path(m: int, hashes: list[bytes]) -> list[bytes]:
    """RFC 6962 PATH(m, D[n]), leaf to root."""
    if len(hashes) == 1:
        return []
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    if m < k:
        return [*path(m, hashes[:k]), mth(hashes[k:])]
    return [*path(m - k, hashes[k:]), mth(hashes[:k])]


def root_from_inclusion(index: int, size: int, leaf_hash: bytes, proof: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.3.2, step by step."""
    assert 0 <= index < size
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        assert sn != 0, "proof too long"
        if fn & 1 or fn == sn:
            r = _node(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    assert sn == 0, "proof too short"
    return r


def _split(data: bytes, width: int, where: str) -> list[bytes]:
    assert len(data) == 32 * width, f"{where}: {len(data)} bytes, not {32 * width}"
    return [data[i : i + 32] for i in range(0, len(data), 32)]


@dataclass
class TiledLog:
    """What a client learns from the tiles of one checkpoint: every leaf hash, each upper
    tile checked against the leaves, and the root."""

    checkpoint: Checkpoint
    leaf_hashes: list[bytes]
    tiles_read: int

    def proof(self, index: int) -> list[bytes]:
        return path(index, self.leaf_hashes)


def read_log(fetch: Fetch, vkey: str, note: str | None = None) -> TiledLog:
    """Verify the checkpoint (``<prefix>/checkpoint``, or ``note``), fetch its tiles, check
    every tile hash by the spec's MTH(D[(n*256+i)*256**l : ...]) and the root."""
    checkpoint = open_checkpoint(note or fetch("checkpoint").decode(), vkey)
    size = checkpoint.size
    leaves: list[bytes] = []
    read = 0
    for n in range((size + 255) // 256):
        width = min(256, size - n * 256)
        leaves += _split(fetch(tile_path(0, n, width)), width, tile_path(0, n, width))
        read += 1
    level = 1
    while size >> (8 * level):
        hashes = size >> (8 * level)
        span = 256**level
        for n in range((hashes + 255) // 256):
            width = min(256, hashes - n * 256)
            where = tile_path(level, n, width)
            for i, got in enumerate(_split(fetch(where), width, where)):
                first = (n * 256 + i) * span
                assert got == mth(leaves[first : first + span]), f"{where}: hash {i} is wrong"
            read += 1
        level += 1
    assert mth(leaves) == checkpoint.root, "the tiles do not give the checkpoint's root"
    return TiledLog(checkpoint, leaves, read)
