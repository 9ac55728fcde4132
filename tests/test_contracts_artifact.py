"""The committed artifact is exactly what the pinned solc makes of the committed source."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from contracts import artifact as artifact_module
from contracts import compile as compile_module
from contracts.artifact import ARTIFACT_PATH, SOURCE_PATH, Artifact, load_artifact
from contracts.errors import ArtifactError
from tests.paths import REPO

pytestmark = pytest.mark.skipif(
    not compile_module.SOLCJS.exists(), reason=f"{compile_module.SOLCJS} missing (run npm ci)"
)


@pytest.fixture(scope="module")
def rebuilt() -> Artifact:
    return compile_module.build_artifact()


def test_rebuild_from_source_is_byte_identical(rebuilt: Artifact) -> None:
    assert rebuilt.to_json_bytes() == ARTIFACT_PATH.read_bytes()


def test_artifact_records_how_it_was_built() -> None:
    document = json.loads(ARTIFACT_PATH.read_bytes())
    assert document["compiler"] == {
        "name": "solc",
        "version": "0.8.28+commit.7893614a",
        "evmVersion": "cancun",
        "optimizer": {"enabled": True, "runs": 200},
    }
    assert document["sourceSha256"] == hashlib.sha256(SOURCE_PATH.read_bytes()).hexdigest()
    names = {entry.get("name") for entry in document["abi"]}
    assert {"anchor", "latest", "assignLog", "anchorerOf", "transferOwnership"} <= names
    assert {"Anchored", "LogAssigned", "NotLogAnchorer", "NotOwner", "StaleTreeSize"} <= names
    # One list of anchorers let any of them anchor every log; it is gone.
    assert not {"addAnchorer", "removeAnchorer", "isAnchorer", "NotAnchorer"} & names


def test_check_command_passes_on_the_committed_artifact() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "contracts.compile", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_check_fails_on_a_changed_artifact(
    rebuilt: Artifact, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = tmp_path / "AnchorRegistry.json"
    stale.write_bytes(ARTIFACT_PATH.read_bytes().replace(b'"runs": 200', b'"runs": 201'))
    monkeypatch.setattr(compile_module, "ARTIFACT_PATH", stale)
    monkeypatch.setattr(compile_module, "build_artifact", lambda: rebuilt)
    assert compile_module.main(["--check"]) == 1
    assert compile_module.main([]) == 0
    assert stale.read_bytes() == ARTIFACT_PATH.read_bytes()
    assert compile_module.main(["--check"]) == 0


def test_compiler_diagnostics_fail_the_build(tmp_path: Path) -> None:
    broken = tmp_path / SOURCE_PATH.name
    broken.write_text(SOURCE_PATH.read_text().replace("uint64 nowTs", "uint64 nowTs; uint8 unused"))
    with pytest.raises(ArtifactError, match="diagnostics"):
        compile_module.build_artifact(broken)


def test_an_artifact_not_built_from_the_source_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    edited = tmp_path / SOURCE_PATH.name
    edited.write_text(SOURCE_PATH.read_text() + "\n// edited after compiling\n")
    monkeypatch.setattr(artifact_module, "SOURCE_PATH", edited)
    load_artifact.cache_clear()
    try:
        with pytest.raises(ArtifactError, match="not built from the current"):
            load_artifact()
    finally:
        load_artifact.cache_clear()


@pytest.mark.parametrize(
    "data",
    [b"", b"[]", b"{}", b'{"contractName": "AnchorRegistry"}'],
    ids=["empty", "list", "no keys", "partial"],
)
def test_malformed_artifact_is_an_artifact_error(data: bytes) -> None:
    with pytest.raises(ArtifactError):
        Artifact.from_json_bytes(data)


@pytest.mark.parametrize(
    ("key", "change"),
    [
        ("bytecode", lambda v: v[:10] + " " + v[10:]),
        ("deployedBytecode", lambda v: "0x" + v[2:].upper()),
        ("deployedBytecode", lambda v: v[:-1]),
        ("sourceSha256", lambda v: v + "\n"),
        ("sourceSha256", lambda v: v[:-2]),
    ],
    ids=["space in bytecode", "upper-case hex", "odd length", "newline in hash", "short hash"],
)
def test_artifact_hex_is_read_only_as_written(key: str, change: Any) -> None:
    document = json.loads(ARTIFACT_PATH.read_bytes())
    document[key] = change(document[key])
    with pytest.raises(ArtifactError):
        Artifact.from_json_bytes(json.dumps(document).encode())
