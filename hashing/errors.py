"""Every exception the hashing package raises.

Two families, kept apart on purpose:

- ``VerificationError``: something presented to us (a proof, a root, a signed
  note) did not check out. Callers treat these as evidence about the other
  party, never as a bug in their own code.
- ``HashingError`` (a ``ValueError``): the caller passed arguments that cannot
  be right (an index past the tree, a hash of the wrong length, a value JSON
  cannot carry). These are bugs or bad configuration on our side.
"""


class HashingError(ValueError):
    """Base for misuse of the hashing API: arguments that cannot be valid."""


class TreeArgumentError(HashingError):
    """An index, size or hash list given to a tree, proof or range builder is inconsistent."""


class CanonicalEncodingError(HashingError):
    """A value cannot be encoded as RFC 8785 canonical JSON."""


class KeyFormatError(HashingError):
    """A signed-note key name, verifier key or signer key is malformed."""


class WeakKeyError(KeyFormatError):
    """An Ed25519 public key that is not the canonical encoding of a point of large order."""


class TilePathError(HashingError):
    """A path that does not name a C2SP tlog-tiles hash tile (bad level, index or width)."""


class NoteContentError(HashingError):
    """Text or checkpoint fields that cannot be written into a well-formed signed note."""


class VerificationError(Exception):
    """Base for every failed check of a proof, root or signature."""


class RootMismatchError(VerificationError):
    """The root recomputed from a proof differs from the trusted root."""

    def __init__(self, expected: bytes, computed: bytes, *, label: str = "root") -> None:
        # args holds the data, not the message, so the error pickles and compares usefully.
        super().__init__(expected, computed)
        self.expected = expected
        self.computed = computed
        self.label = label

    def __str__(self) -> str:
        return (
            f"computed {self.label} {self.computed.hex()} "
            f"does not match expected {self.label} {self.expected.hex()}"
        )


class ProofShapeError(VerificationError):
    """A proof has the wrong number of hashes, or a hash has the wrong length."""


class IndexOutOfRangeError(VerificationError):
    """A leaf index is negative or not below the tree size."""


class SizeError(VerificationError):
    """Tree sizes are impossible together (size1 > size2, a negative size, size1 == 0)."""


class SignatureError(VerificationError):
    """No signature from the trusted key verifies, or one from it is invalid."""


class NoteFormatError(VerificationError):
    """A signed note or the checkpoint inside it is malformed."""


class PolicyFormatError(HashingError):
    """A witness policy file (C2SP tlog-policy) is malformed; the message names the line."""


class QuorumError(VerificationError):
    """A checkpoint lacks the witness cosignatures its policy requires."""
