"""Where the shared test material lives: ``../shared`` beside the repository (CI lays it there)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
VECTORS = SHARED / "vectors"
FHIR = SHARED / "fhir"
NODE_BIN = REPO / "node_modules" / ".bin"
