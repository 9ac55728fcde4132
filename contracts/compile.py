"""Build ``artifacts/AnchorRegistry.json`` from the Solidity source with the pinned npm solc.

``python -m contracts.compile`` rewrites the artifact; ``python -m contracts.compile --check``
rebuilds it in memory and exits 1 unless the committed file is byte-identical. The compiler
is ``node_modules/.bin/solcjs`` beside the repository root (the parent of this package),
fed standard-JSON input so every setting that shapes the bytecode is explicit here.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from contracts.artifact import (
    ARTIFACT_PATH,
    CONTRACT_NAME,
    SOURCE_PATH,
    Artifact,
    CompilerSettings,
    source_sha256,
)
from contracts.errors import ArtifactError

# Pinned in package.json; a different solcjs would silently change the bytecode.
SOLC_VERSION = "0.8.28"
EVM_VERSION = "cancun"
OPTIMIZER_RUNS = 200
REPO_ROOT = SOURCE_PATH.parent.parent
SOLCJS = REPO_ROOT / "node_modules" / ".bin" / "solcjs"
_COMPILE_TIMEOUT_S = 300


def standard_json_input(source: str) -> dict[str, Any]:
    """The solc standard-JSON request for the registry source."""
    return {
        "language": "Solidity",
        "sources": {SOURCE_PATH.name: {"content": source}},
        "settings": {
            "evmVersion": EVM_VERSION,
            "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
            "outputSelection": {
                SOURCE_PATH.name: {
                    CONTRACT_NAME: [
                        "abi",
                        "metadata",
                        "evm.bytecode.object",
                        "evm.deployedBytecode.object",
                    ]
                }
            },
        },
    }


def run_solcjs(request: dict[str, Any], solcjs: Path = SOLCJS) -> dict[str, Any]:
    """Run solcjs in standard-JSON mode and return its parsed output."""
    if not solcjs.exists():
        raise ArtifactError(f"{solcjs} not found; run `npm ci` in {REPO_ROOT}")
    try:
        completed = subprocess.run(
            [str(solcjs), "--standard-json"],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            check=False,
            timeout=_COMPILE_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ArtifactError(f"running {solcjs} failed: {exc}") from exc
    if completed.returncode != 0:
        raise ArtifactError(f"solcjs exited {completed.returncode}: {completed.stderr.strip()}")
    # solcjs prints ">>> ..." notes (e.g. about missing SMT solvers) before the JSON.
    start = completed.stdout.find("\n{") + 1 if not completed.stdout.startswith("{") else 0
    try:
        output: dict[str, Any] = json.loads(completed.stdout[start:])
    except ValueError as exc:
        raise ArtifactError(f"solcjs printed no JSON: {completed.stdout[:200]!r}") from exc
    return output


def build_artifact(source_path: Path = SOURCE_PATH, solcjs: Path = SOLCJS) -> Artifact:
    """Compile ``source_path``; any compiler error or warning is an ArtifactError."""
    source = source_path.read_bytes()
    output = run_solcjs(standard_json_input(source.decode()), solcjs)
    diagnostics = output.get("errors", [])
    if diagnostics:
        text = "\n".join(d.get("formattedMessage", d.get("message", "")) for d in diagnostics)
        raise ArtifactError(f"solc reported diagnostics:\n{text}")
    try:
        contract = output["contracts"][source_path.name][CONTRACT_NAME]
        version = json.loads(contract["metadata"])["compiler"]["version"]
        bytecode = bytes.fromhex(contract["evm"]["bytecode"]["object"])
        deployed = bytes.fromhex(contract["evm"]["deployedBytecode"]["object"])
        abi = tuple(contract["abi"])
    except (KeyError, ValueError, TypeError) as exc:
        raise ArtifactError(f"unexpected solc output: {exc}") from exc
    if not str(version).startswith(SOLC_VERSION + "+"):
        raise ArtifactError(f"solcjs is {version}, but {SOLC_VERSION} is pinned")
    return Artifact(
        contract_name=CONTRACT_NAME,
        abi=abi,
        bytecode=bytecode,
        deployed_bytecode=deployed,
        compiler=CompilerSettings(
            version=str(version),
            evm_version=EVM_VERSION,
            optimizer_enabled=True,
            optimizer_runs=OPTIMIZER_RUNS,
        ),
        source_sha256=source_sha256(source),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m contracts.compile", description=__doc__)
    parser.add_argument(
        "--check",
        action="store_true",
        help="rebuild in memory; exit 1 unless the committed artifact is byte-identical",
    )
    args = parser.parse_args(argv)
    try:
        rebuilt = build_artifact().to_json_bytes()
    except ArtifactError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        committed = ARTIFACT_PATH.read_bytes() if ARTIFACT_PATH.exists() else b""
        if committed != rebuilt:
            print(f"{ARTIFACT_PATH} is out of date; run `python -m contracts.compile`")
            return 1
        print(f"{ARTIFACT_PATH} matches its source")
        return 0
    ARTIFACT_PATH.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT_PATH.write_bytes(rebuilt)
    print(f"wrote {ARTIFACT_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
