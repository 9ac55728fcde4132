"""The attacker's build of the service: our code with its checks of its own storage taken out.

The operator who edits the database can also run a service that does not check it; the auditor
must catch what such a service serves. The attack tests patch these checks out in-process
(``take_out_checks`` with pytest's monkeypatch), or run ``python -m tests.attackers_build serve
...`` for a real server process. Test-only: nothing in the product can turn its checks off.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from consent_api.cli import main
from consent_api.routes import log as log_routes
from hashing import Checkpoint
from ledger.log import Ledger
from ledger.witness import Witness

Patch = Callable[[Any, str, Any], None]


def _no_check(*_args: object, **_kwargs: object) -> None:
    return None


def _unwitnessed(_self: Witness, note: str, _prove: object) -> Checkpoint:
    return Checkpoint.from_body(note.split("\n\n")[0].encode() + b"\n")


def take_out_checks(patch: Patch = setattr) -> None:
    for name in ("check_storage", "_vouch_for_inclusion", "_vouch_for_consistency"):
        patch(Ledger, name, _no_check)
    patch(Witness, "read", _no_check)
    patch(Witness, "advance", _unwitnessed)
    patch(log_routes, "refuse_gaps", _no_check)


if __name__ == "__main__":
    take_out_checks()
    sys.exit(main(sys.argv[1:]))
