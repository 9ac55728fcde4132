"""Named corruptions of valid proofs: each must be rejected with the error class that says why."""

from typing import Any

import pytest

from hashing import (
    IndexOutOfRangeError,
    ProofShapeError,
    RootMismatchError,
    SizeError,
    VerificationError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)
from tests.test_hashing_reference import LEAF_HASHES, REF_ROOTS

LEAVES = LEAF_HASHES[:16]
INDEX, SIZE = 5, 13
OTHER_SIZE = 16  # Same proof length for leaf 5, different tree.


def _flip(value: bytes, bit: int = 0) -> bytes:
    return bytes([value[0] ^ (1 << bit)]) + value[1:]


def _swap(proof: list[bytes], i: int, j: int) -> list[bytes]:
    swapped = list(proof)
    swapped[i], swapped[j] = swapped[j], swapped[i]
    return swapped


INCLUSION = {
    "leaf_hash": LEAVES[INDEX],
    "leaf_index": INDEX,
    "tree_size": SIZE,
    "proof": inclusion_proof(LEAVES, INDEX, SIZE),
    "root_hash": REF_ROOTS[SIZE],
}
_proof = INCLUSION["proof"]
assert len(_proof) == 4

INCLUSION_TAMPERS: dict[str, tuple[dict[str, Any], type[VerificationError]]] = {
    **{
        f"flipped bit in proof[{i}]": (
            {"proof": [*_proof[:i], _flip(h), *_proof[i + 1 :]]},
            RootMismatchError,
        )
        for i, h in enumerate(_proof)
    },
    "truncated proof": ({"proof": _proof[:-1]}, ProofShapeError),
    "extended proof": ({"proof": [*_proof, REF_ROOTS[SIZE]]}, ProofShapeError),
    "extra hash in front": ({"proof": [REF_ROOTS[SIZE], *_proof]}, ProofShapeError),
    "empty proof": ({"proof": []}, ProofShapeError),
    "wrong index, same proof length": ({"leaf_index": 4}, RootMismatchError),
    "wrong index, other proof length": ({"leaf_index": 12}, ProofShapeError),
    "index equal to size": ({"leaf_index": SIZE}, IndexOutOfRangeError),
    "negative index": ({"leaf_index": -1}, IndexOutOfRangeError),
    "size doubled": ({"tree_size": 2 * SIZE}, ProofShapeError),
    "size halved below the index": ({"tree_size": SIZE // 2 - 1}, IndexOutOfRangeError),
    "proof of another tree size": (
        {"tree_size": OTHER_SIZE, "root_hash": REF_ROOTS[OTHER_SIZE]},
        RootMismatchError,
    ),
    "swapped siblings": ({"proof": _swap(_proof, 0, 1)}, RootMismatchError),
    "wrong root": ({"root_hash": REF_ROOTS[SIZE - 1]}, RootMismatchError),
    "empty root": ({"root_hash": b""}, RootMismatchError),
    "wrong leaf": ({"leaf_hash": LEAVES[INDEX + 1]}, RootMismatchError),
    "leaf hash 31 bytes": ({"leaf_hash": LEAVES[INDEX][:31]}, ProofShapeError),
    "leaf hash 33 bytes": ({"leaf_hash": LEAVES[INDEX] + b"\x00"}, ProofShapeError),
    "leaf data instead of leaf hash": ({"leaf_hash": b"consent granted"}, ProofShapeError),
    "proof hash 31 bytes": ({"proof": [_proof[0][:31], *_proof[1:]]}, ProofShapeError),
}


def test_untampered_inclusion_proof_verifies() -> None:
    verify_inclusion(**INCLUSION)


@pytest.mark.parametrize(("changes", "error"), INCLUSION_TAMPERS.values(), ids=INCLUSION_TAMPERS)
def test_tampered_inclusion_proof_is_rejected(
    changes: dict[str, Any], error: type[VerificationError]
) -> None:
    with pytest.raises(error):
        verify_inclusion(**{**INCLUSION, **changes})


# Second preimage: in the tree of 16 leaves, the level-1 node over leaves 4 and 5
# is "leaf" 2 of a tree of 8 whose leaves are the level-1 nodes.
INTERIOR = node_hash(LEAVES[4], LEAVES[5])
INTERIOR_PROOF = inclusion_proof(LEAVES, 4, 16)[1:]


def test_interior_node_as_leaf_hash_fails_at_the_trusted_size() -> None:
    # A verifier that takes the size from the checkpoint (16) needs a 4-hash proof.
    with pytest.raises(ProofShapeError):
        verify_inclusion(INTERIOR, 2, 16, INTERIOR_PROOF, REF_ROOTS[16])


def test_interior_node_preimage_as_leaf_data_is_rejected() -> None:
    # The attacker submits left || right as leaf data; the 0x00 leaf prefix makes
    # its hash differ from the 0x01-prefixed node hash, at any claimed size.
    forged_leaf = leaf_hash(LEAVES[4] + LEAVES[5])
    assert forged_leaf != INTERIOR
    with pytest.raises(RootMismatchError):
        verify_inclusion(forged_leaf, 2, 8, INTERIOR_PROOF, REF_ROOTS[16])


def _consistency_base(size1: int, size2: int) -> dict[str, Any]:
    return {
        "size1": size1,
        "size2": size2,
        "proof": consistency_proof(LEAVES, size1, size2),
        "root1": REF_ROOTS[size1],
        "root2": REF_ROOTS[size2],
    }


# 6 -> 13 carries the seed hash; 4 -> 13 starts from root1 itself.
CONSISTENCY_BASES = {"6-to-13": _consistency_base(6, 13), "4-to-13": _consistency_base(4, 13)}


def _consistency_tampers(base: dict[str, Any]) -> dict[str, tuple[dict[str, Any], type[Exception]]]:
    proof, size1, size2 = base["proof"], base["size1"], base["size2"]
    return {
        **{
            f"flipped bit in proof[{i}]": (
                {"proof": [*proof[:i], _flip(h, 4), *proof[i + 1 :]]},
                RootMismatchError,
            )
            for i, h in enumerate(proof)
        },
        "truncated proof": ({"proof": proof[:-1]}, ProofShapeError),
        "extended proof": ({"proof": [*proof, base["root2"]]}, ProofShapeError),
        "extra hash in front": ({"proof": [proof[0], *proof]}, ProofShapeError),
        "empty proof": ({"proof": []}, ProofShapeError),
        "size1 above size2": ({"size1": size2 + 1}, SizeError),
        "size1 zero": ({"size1": 0}, SizeError),
        "negative size1": ({"size1": -1}, SizeError),
        "size2 doubled": ({"size2": 2 * size2}, ProofShapeError),
        "proof of another size2": (
            {"size2": OTHER_SIZE, "root2": REF_ROOTS[OTHER_SIZE]},
            RootMismatchError,
        ),
        "swapped roots": ({"root1": base["root2"], "root2": base["root1"]}, RootMismatchError),
        "wrong root1": ({"root1": REF_ROOTS[size1 + 1]}, RootMismatchError),
        "wrong root2": ({"root2": REF_ROOTS[size2 - 1]}, RootMismatchError),
        "root1 of wrong length": ({"root1": base["root1"][:31]}, ProofShapeError),
        "swapped siblings": ({"proof": _swap(proof, 0, 1)}, RootMismatchError),
        "proof hash 33 bytes": ({"proof": [proof[0] + b"\x00", *proof[1:]]}, ProofShapeError),
        "equal sizes with a proof": ({"size2": size1, "root2": base["root1"]}, ProofShapeError),
        "equal sizes, different roots": (
            {"size2": size1, "proof": [], "root2": base["root2"]},
            RootMismatchError,
        ),
    }


CONSISTENCY_CASES = [
    pytest.param(base, changes, error, id=f"{base_name}: {name}")
    for base_name, base in CONSISTENCY_BASES.items()
    for name, (changes, error) in _consistency_tampers(base).items()
]


@pytest.mark.parametrize("base", CONSISTENCY_BASES.values(), ids=CONSISTENCY_BASES)
def test_untampered_consistency_proof_verifies(base: dict[str, Any]) -> None:
    verify_consistency(**base)


@pytest.mark.parametrize(("base", "changes", "error"), CONSISTENCY_CASES)
def test_tampered_consistency_proof_is_rejected(
    base: dict[str, Any], changes: dict[str, Any], error: type[VerificationError]
) -> None:
    with pytest.raises(error):
        verify_consistency(**{**base, **changes})


def test_root_mismatch_names_both_roots_in_hex() -> None:
    with pytest.raises(RootMismatchError) as caught:
        verify_inclusion(**{**INCLUSION, "root_hash": REF_ROOTS[SIZE - 1]})
    error = caught.value
    assert error.expected == REF_ROOTS[SIZE - 1]
    assert error.computed == REF_ROOTS[SIZE]
    assert REF_ROOTS[SIZE - 1].hex() in str(error)
    assert REF_ROOTS[SIZE].hex() in str(error)


def test_consistency_mismatch_says_which_root() -> None:
    base = CONSISTENCY_BASES["6-to-13"]
    with pytest.raises(RootMismatchError, match="root1"):
        verify_consistency(**{**base, "root1": REF_ROOTS[7]})
    with pytest.raises(RootMismatchError, match="root2"):
        verify_consistency(**{**base, "root2": REF_ROOTS[12]})
