"""RFC 9162 Merkle tree hashing, proofs, compact ranges, canonical JSON and signed checkpoints.

Pure computation: no I/O, and nothing imported from the rest of consent-ledger.
Hashes are raw bytes throughout; hex and base64 belong at the edges.
"""

from hashing.canonical import canonical_json
from hashing.checkpoint import Checkpoint
from hashing.compact import CompactRange
from hashing.cosignature import (
    Cosignature,
    CosignatureSigner,
    CosignatureVerifier,
    add_signature_lines,
    parse_cosignature_lines,
    split_note,
    verify_cosignatures,
)
from hashing.ed25519 import check_public_key, check_signature, point_problem, signature_problem
from hashing.errors import (
    CanonicalEncodingError,
    HashingError,
    IndexOutOfRangeError,
    KeyFormatError,
    NoteContentError,
    NoteFormatError,
    PolicyFormatError,
    ProofShapeError,
    QuorumError,
    RootMismatchError,
    SignatureError,
    SizeError,
    TilePathError,
    TreeArgumentError,
    VerificationError,
    WeakKeyError,
)
from hashing.nodes import NodeID, ProofNodes, consistency_nodes, inclusion_nodes, range_nodes
from hashing.note import NoteSigner, NoteVerifier, open_checkpoint, open_note
from hashing.rfc6962 import EMPTY_ROOT, HASH_SIZE, leaf_hash, node_hash
from hashing.tiles import (
    TILE_WIDTH,
    TileID,
    parse_tile_path,
    root_from_tiles,
    tile_in_tree,
    tiles_for_size,
)
from hashing.tree import consistency_proof, inclusion_proof, merkle_root, subtree_root
from hashing.verify import (
    root_from_consistency_proof,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from hashing.witness_policy import QuorumCheck, WitnessPolicy, parse_policy

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "TILE_WIDTH",
    "CanonicalEncodingError",
    "Checkpoint",
    "CompactRange",
    "Cosignature",
    "CosignatureSigner",
    "CosignatureVerifier",
    "HashingError",
    "IndexOutOfRangeError",
    "KeyFormatError",
    "NodeID",
    "NoteContentError",
    "NoteFormatError",
    "NoteSigner",
    "NoteVerifier",
    "PolicyFormatError",
    "ProofNodes",
    "ProofShapeError",
    "QuorumCheck",
    "QuorumError",
    "RootMismatchError",
    "SignatureError",
    "SizeError",
    "TileID",
    "TilePathError",
    "TreeArgumentError",
    "VerificationError",
    "WeakKeyError",
    "WitnessPolicy",
    "add_signature_lines",
    "canonical_json",
    "check_public_key",
    "check_signature",
    "consistency_nodes",
    "consistency_proof",
    "inclusion_nodes",
    "inclusion_proof",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "open_checkpoint",
    "open_note",
    "parse_cosignature_lines",
    "parse_policy",
    "parse_tile_path",
    "point_problem",
    "range_nodes",
    "root_from_consistency_proof",
    "root_from_inclusion_proof",
    "root_from_tiles",
    "signature_problem",
    "split_note",
    "subtree_root",
    "tile_in_tree",
    "tiles_for_size",
    "verify_consistency",
    "verify_cosignatures",
    "verify_inclusion",
]
