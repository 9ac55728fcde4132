"""``consent-ledger`` as a person runs it: the installed command in a subprocess, on real files.

The environment is the test's, minus the ``CONSENT_LEDGER_*`` and ``CONSENT_API_*`` settings
(a test names its data dir and database on the command line), with this checkout first on
``PYTHONPATH`` so that the command runs the code under test.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.paths import REPO

PROGRAM = REPO / ".venv" / "bin" / "consent-ledger"


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


def consent_ledger(
    *args: str | Path,
    cwd: Path | None = None,
    stdin: str = "",
    env: dict[str, str] | None = None,
    timeout: float = 180,
) -> Ran:
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("CONSENT_LEDGER_", "CONSENT_API_"))
    }
    environment["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(REPO), environment.get("PYTHONPATH", "")) if part
    )
    environment.update(env or {})
    done = subprocess.run(
        [str(PROGRAM), *map(str, args)],
        cwd=cwd or REPO,
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
        check=False,
    )
    return Ran(done.returncode, done.stdout, done.stderr)
