"""The compiled AnchorRegistry artifact: where it lives, its JSON form, and loading it.

The ABI and bytecode the rest of the package uses come only from here, never from
hand-written dicts. Loading checks that the artifact was built from the ``.sol`` file next
to it, so a stale artifact fails loudly instead of deploying old code.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from contracts.errors import ArtifactError

CONTRACT_NAME = "AnchorRegistry"
PACKAGE_DIR = Path(__file__).resolve().parent
SOURCE_PATH = PACKAGE_DIR / f"{CONTRACT_NAME}.sol"
ARTIFACT_PATH = PACKAGE_DIR / "artifacts" / f"{CONTRACT_NAME}.json"
_LOWER_HEX = re.compile(r"0x(?:[0-9a-f]{2})+")


@dataclass(frozen=True)
class CompilerSettings:
    """What produced the bytecode; recorded in the artifact so a rebuild can match it."""

    version: str
    evm_version: str
    optimizer_enabled: bool
    optimizer_runs: int


@dataclass(frozen=True)
class Artifact:
    """One compiled contract: ABI, creation and runtime code, and its provenance."""

    contract_name: str
    abi: tuple[dict[str, Any], ...]
    bytecode: bytes
    deployed_bytecode: bytes
    compiler: CompilerSettings
    source_sha256: bytes

    def to_json_bytes(self) -> bytes:
        """The canonical file form: sorted keys, two-space indent, trailing newline."""
        document = {
            "contractName": self.contract_name,
            "abi": list(self.abi),
            "bytecode": "0x" + self.bytecode.hex(),
            "deployedBytecode": "0x" + self.deployed_bytecode.hex(),
            "compiler": {
                "name": "solc",
                "version": self.compiler.version,
                "evmVersion": self.compiler.evm_version,
                "optimizer": {
                    "enabled": self.compiler.optimizer_enabled,
                    "runs": self.compiler.optimizer_runs,
                },
            },
            "sourceSha256": self.source_sha256.hex(),
        }
        return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json_bytes(cls, data: bytes) -> Artifact:
        try:
            document = json.loads(data)
            compiler = document["compiler"]
            return cls(
                contract_name=str(document["contractName"]),
                abi=tuple(document["abi"]),
                bytecode=_unhex(document["bytecode"]),
                deployed_bytecode=_unhex(document["deployedBytecode"]),
                compiler=CompilerSettings(
                    version=str(compiler["version"]),
                    evm_version=str(compiler["evmVersion"]),
                    optimizer_enabled=bool(compiler["optimizer"]["enabled"]),
                    optimizer_runs=int(compiler["optimizer"]["runs"]),
                ),
                source_sha256=_unhex("0x" + document["sourceSha256"], 32),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ArtifactError(f"malformed contract artifact: {exc}") from exc


def source_sha256(source: bytes) -> bytes:
    return hashlib.sha256(source).digest()


@cache
def load_artifact() -> Artifact:
    """The committed AnchorRegistry artifact, checked against the source beside it."""
    try:
        data = ARTIFACT_PATH.read_bytes()
    except OSError as exc:
        raise ArtifactError(
            f"cannot read {ARTIFACT_PATH}: {exc}; run `python -m contracts.compile`"
        ) from exc
    artifact = Artifact.from_json_bytes(data)
    if artifact.contract_name != CONTRACT_NAME:
        raise ArtifactError(f"artifact is for {artifact.contract_name}, not {CONTRACT_NAME}")
    try:
        source = SOURCE_PATH.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"cannot read {SOURCE_PATH}: {exc}") from exc
    if source_sha256(source) != artifact.source_sha256:
        raise ArtifactError(
            f"{ARTIFACT_PATH.name} was not built from the current {SOURCE_PATH.name}; "
            "run `python -m contracts.compile`"
        )
    if not artifact.bytecode or not artifact.deployed_bytecode:
        raise ArtifactError("artifact has empty bytecode")
    return artifact


def _unhex(value: str, length: int | None = None) -> bytes:
    """Bytes from 0x + lower-case hex, as ``to_json_bytes`` writes them (no spaces)."""
    if not isinstance(value, str) or _LOWER_HEX.fullmatch(value) is None:
        raise ValueError(f"expected 0x and lower-case hex, got {str(value)[:12]!r}")
    data = bytes.fromhex(value[2:])
    if length is not None and len(data) != length:
        raise ValueError(f"expected {length} bytes, got {len(data)}")
    return data
