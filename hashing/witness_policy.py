"""Witness policies: which witnesses' cosignatures a checkpoint needs (C2SP tlog-policy).

The file is line based (``\n`` ends a line); ``#`` starts a comment line, blank lines are
ignored, items are separated by ASCII spaces or tabs and by nothing else::

    log <vkey> [<url>]                      # a log key (type 0x01); its name is the origin
    witness <name> <vkey> [<url>]           # a witness cosigning key (type 0x04)
    group <name> all|any|<k> <member>...    # k of the members (witnesses or earlier groups)
    quorum <name>|none                      # exactly one: what a checkpoint needs

A name may be used only after the line defining it, and once per group, so no witness counts
twice, and a witness key only once. ``quorum none`` requires no cosignature. Outside comments a
line holds only printable ASCII, spaces and tabs (no other Unicode space, no CR: a verifier
that split items differently would read another policy); no line holds a control character.
The browser's parser (``consent_api/web/js/cosignature.js``) follows the same rules, and
``tests/test_web_verify.py`` holds the two to the same verdict. The URL of a witness is its
submission prefix (the log posts to ``<url>/add-checkpoint``); verifiers need none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hashing.cosignature import Cosignature, CosignatureVerifier, verify_cosignatures
from hashing.errors import PolicyFormatError, QuorumError
from hashing.note import NoteVerifier

_NONE = "none"
_MAX_ENTRIES = 256
_SEPARATORS = re.compile(r"[ \t]+")
_PRINTABLE = re.compile(r"[\t\x20-\x7e]*")


@dataclass(frozen=True, slots=True)
class PolicyLog:
    verifier: NoteVerifier
    url: str | None


@dataclass(frozen=True, slots=True)
class PolicyWitness:
    name: str
    verifier: CosignatureVerifier
    url: str | None


@dataclass(frozen=True, slots=True)
class PolicyGroup:
    name: str
    threshold: int
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class QuorumCheck:
    """What a policy check found: who cosigned (policy names, sorted) and whether it is enough."""

    cosigned: tuple[str, ...]
    cosignatures: tuple[Cosignature, ...]
    satisfied: bool
    requirement: str

    def describe(self) -> str:
        who = ", ".join(self.cosigned) or "no witness"
        verdict = "met" if self.satisfied else "NOT met"
        return f"cosigned by {who}; quorum {self.requirement}: {verdict}"


@dataclass(frozen=True, slots=True)
class WitnessPolicy:
    logs: tuple[PolicyLog, ...]
    witnesses: dict[str, PolicyWitness]
    groups: dict[str, PolicyGroup]
    quorum: str

    def requirement(self, name: str | None = None) -> str:
        """The rule ``name`` (default: the quorum) stands for, in words."""
        name = self.quorum if name is None else name
        if name == _NONE:
            return "none"
        group = self.groups.get(name)
        if group is None:
            return name
        members = ", ".join(self.requirement(member) for member in group.members)
        return f"{group.threshold} of ({members})"

    def _holds(self, name: str, cosigned: set[str]) -> bool:
        if name == _NONE:
            return True
        group = self.groups.get(name)
        if group is None:
            return name in cosigned
        held = sum(self._holds(member, cosigned) for member in group.members)
        return held >= group.threshold

    def holds(self, cosigned: set[str]) -> bool:
        """Whether cosignatures by the witnesses named ``cosigned`` meet the quorum."""
        return self._holds(self.quorum, cosigned)

    def check(self, note_text: str | bytes) -> QuorumCheck:
        """Verify the note's cosignatures by the policy's witnesses and evaluate the quorum.

        The log's own signature is not checked here (open the note with the log key). A line
        from a policy witness that does not verify raises SignatureError.
        """
        by_key = {witness.verifier: name for name, witness in self.witnesses.items()}
        found = verify_cosignatures(note_text, by_key)
        names = {by_key[verifier] for verifier in found}
        return QuorumCheck(
            cosigned=tuple(sorted(names)),
            cosignatures=tuple(found[v] for v in sorted(found, key=lambda v: by_key[v])),
            satisfied=self._holds(self.quorum, names),
            requirement=self.requirement(),
        )

    def require(self, note_text: str | bytes) -> QuorumCheck:
        """As ``check``, raising QuorumError when the quorum is not met."""
        result = self.check(note_text)
        if not result.satisfied:
            raise QuorumError(f"witness policy not satisfied: {result.describe()}")
        return result


def _url(items: list[str], at: int, where: str) -> str | None:
    if len(items) > at + 1:
        raise PolicyFormatError(f"{where}: too many items")
    return items[at] if len(items) == at + 1 else None


def parse_policy(text: str) -> WitnessPolicy:
    """Parse a policy file; raises PolicyFormatError naming the line at fault."""
    logs: list[PolicyLog] = []
    witnesses: dict[str, PolicyWitness] = {}
    groups: dict[str, PolicyGroup] = {}
    quorum: str | None = None
    seen_keys: set[bytes] = set()
    for number, raw in enumerate(text.split("\n"), start=1):
        where = f"policy line {number}"
        if any(char < " " and char != "\t" for char in raw):
            raise PolicyFormatError(f"{where}: control character")
        line = raw.strip(" \t")
        if not line or line.startswith("#"):
            continue
        if _PRINTABLE.fullmatch(line) is None:
            raise PolicyFormatError(f"{where}: only printable ASCII, spaces and tabs")
        items = _SEPARATORS.split(line)
        if len(logs) + len(witnesses) + len(groups) >= _MAX_ENTRIES:
            raise PolicyFormatError(f"{where}: more than {_MAX_ENTRIES} entries")
        keyword, args = items[0], items[1:]
        try:
            if keyword == "log" and args:
                log_key = NoteVerifier.from_vkey(args[0])
                logs.append(PolicyLog(log_key, _url(args, 1, where)))
            elif keyword == "witness" and len(args) >= 2:
                name = args[0]
                if name == _NONE or name in witnesses or name in groups:
                    raise PolicyFormatError(f"{where}: name {name!r} is reserved or defined")
                verifier = CosignatureVerifier.from_vkey(args[1])
                if verifier.public_raw in seen_keys:
                    raise PolicyFormatError(f"{where}: witness key listed twice")
                seen_keys.add(verifier.public_raw)
                witnesses[name] = PolicyWitness(name, verifier, _url(args, 2, where))
            elif keyword == "group" and len(args) >= 3:
                groups[args[0]] = _group(args, witnesses, groups, where)
            elif keyword == "quorum" and len(args) == 1:
                if quorum is not None:
                    raise PolicyFormatError(f"{where}: a second quorum line")
                if args[0] != _NONE and args[0] not in witnesses and args[0] not in groups:
                    raise PolicyFormatError(f"{where}: quorum {args[0]!r} is not defined above")
                quorum = args[0]
            else:
                raise PolicyFormatError(f"{where}: expected log, witness, group or quorum")
        except PolicyFormatError:
            raise
        except ValueError as exc:  # a KeyFormatError from a vkey
            raise PolicyFormatError(f"{where}: {exc}") from exc
    if quorum is None:
        raise PolicyFormatError("policy has no quorum line (use 'quorum none' for none)")
    return WitnessPolicy(tuple(logs), witnesses, groups, quorum)


def _group(
    args: list[str],
    witnesses: dict[str, PolicyWitness],
    groups: dict[str, PolicyGroup],
    where: str,
) -> PolicyGroup:
    name, threshold_text, members = args[0], args[1], tuple(args[2:])
    if name == _NONE or name in witnesses or name in groups:
        raise PolicyFormatError(f"{where}: name {name!r} is reserved or defined")
    if len(set(members)) != len(members):
        raise PolicyFormatError(f"{where}: a member is listed twice")
    for member in members:
        if member not in witnesses and member not in groups:
            raise PolicyFormatError(f"{where}: member {member!r} is not defined above")
    if threshold_text == "all":
        threshold = len(members)
    elif threshold_text == "any":
        threshold = 1
    elif threshold_text.isdigit() and threshold_text.isascii() and threshold_text[0] != "0":
        threshold = int(threshold_text)
        if threshold > len(members):
            raise PolicyFormatError(f"{where}: threshold {threshold} > {len(members)} members")
    else:
        raise PolicyFormatError(f"{where}: threshold must be all, any or a number 1..n")
    return PolicyGroup(name, threshold, members)
