"""The C2SP tlog-checkpoint note text: origin, tree size, base64 root hash, extension lines.

Only the text format lives here; signing and opening the signed note around
it is ``hashing.note``.
"""

import base64
import re
from dataclasses import dataclass

from hashing.errors import NoteContentError, NoteFormatError
from hashing.rfc6962 import HASH_SIZE

# Checkpoint consumers (Go's strconv.ParseUint among them) read the size as a uint64.
MAX_TREE_SIZE = 2**64 - 1

# ASCII digits, no sign, no leading zero unless the size is 0 itself.
_CANONICAL_SIZE = re.compile(r"0|[1-9][0-9]*")
_CONTROL = re.compile(r"[\x00-\x1f]")


def encode_base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def decode_base64_strict(text: str) -> bytes:
    """Decode standard padded base64 and accept only its canonical form.

    Lenient decoders ignore the unused low bits of the last character, so
    several texts decode to the same bytes; requiring the canonical one means
    no character of a signed note can change without the note being rejected.
    Raises ValueError.
    """
    raw = base64.b64decode(text, validate=True)
    if encode_base64(raw) != text:
        raise ValueError("non-canonical base64")
    return raw


def _check_line(what: str, line: str) -> None:
    if not line:
        raise NoteContentError(f"{what} is empty")
    if _CONTROL.search(line):
        raise NoteContentError(f"{what} {line!r} contains a newline or control character")
    try:
        line.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise NoteContentError(f"{what} {line!r} is not valid Unicode") from exc


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: ``tree_size`` leaves with ``root_hash``, issued by ``origin``."""

    origin: str
    tree_size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line("origin", self.origin)
        if not 0 <= self.tree_size <= MAX_TREE_SIZE:
            raise NoteContentError(f"tree_size {self.tree_size} is not in [0, 2**64)")
        if len(self.root_hash) != HASH_SIZE:
            raise NoteContentError(f"root_hash has {len(self.root_hash)} bytes, want {HASH_SIZE}")
        # Accept any sequence but keep the frozen instance hashable.
        object.__setattr__(self, "extensions", tuple(self.extensions))
        for line in self.extensions:
            _check_line("extension line", line)

    def body(self) -> bytes:
        """Return the note text: origin, size, base64 root, extensions; each line ends in \\n."""
        lines = (self.origin, str(self.tree_size), encode_base64(self.root_hash), *self.extensions)
        return "".join(line + "\n" for line in lines).encode("utf-8")

    @classmethod
    def from_body(cls, body: bytes) -> "Checkpoint":
        """Parse a checkpoint note text; raises NoteFormatError unless it is exactly well formed."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteFormatError("checkpoint is not valid UTF-8") from exc
        if not text.endswith("\n"):
            raise NoteFormatError("checkpoint does not end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise NoteFormatError(f"checkpoint has {len(lines)} lines, want at least 3")
        origin, size_text, root_text, *extensions = lines
        # 20 digits hold any uint64; the length cap also keeps int() away from huge inputs.
        if len(size_text) > 20 or not _CANONICAL_SIZE.fullmatch(size_text):
            raise NoteFormatError(f"tree size {size_text!r} is not a canonical decimal")
        try:
            root_hash = decode_base64_strict(root_text)
        except ValueError as exc:
            raise NoteFormatError(f"root hash {root_text!r} is not canonical base64") from exc
        try:
            return cls(origin, int(size_text), root_hash, tuple(extensions))
        except NoteContentError as exc:
            raise NoteFormatError(f"malformed checkpoint: {exc}") from exc
