"""The demo day, scene by scene; each line it prints quotes an answer of the service."""

from __future__ import annotations

import base64
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hashing import NoteVerifier
from ledger.anchoring import Anchorer
from ledger.events import decode_leaf
from ledger.progress import Progress
from ledger.receipts import verify_receipt

from ..cli_institutions import KEY_DIR
from ..institution_keys import write_private_key
from ..institutions import jwk_of
from ..settings import ApiSettings
from .parties import Parties
from .report import (
    LogTally,
    plural,
    print_anchors,
    print_history,
    print_sign_in,
    print_tally,
    short,
)
from .world import (
    CHILDREN_HOSPITAL,
    CLINIC,
    EMERGENCY_DEPT,
    FAMILY_DOCTORS,
    INSTITUTIONS,
    SPECIALIST,
    Ask,
    Resident,
    World,
)

JUSTIFY_WITHIN = 2
"""Seconds to justify a break-glass access in the demo's compressed day (a day in service)."""
OVERDUE_WAIT_LIMIT = 10.0
"""Wait at most this long for the unjustified break-glass to fall overdue before the review."""
STROKE_NOTE = "Unresponsive on arrival, stroke symptoms; prior imaging needed before thrombolysis."


class Day:
    """One day of ``world`` on the service the parties call; ``play`` it once, on an empty log."""

    def __init__(self, parties: Parties, world: World, anchorer: Anchorer) -> None:
        self.api = parties
        self.world = world
        self.anchorer = anchorer
        self.overdue_from = datetime.now(UTC)
        self.key_dir = parties.settings.ledger.data_dir / KEY_DIR
        self.key_files: dict[str, Path] = {}

    def play(self, settings: ApiSettings, seed: int) -> None:
        size = self.api.call("GET", "/v1/log/leaves?start=0&end=0", {})["tree_size"]
        if size:
            raise ValueError(
                f"{settings.ledger.data_dir} already holds a log of {size} events; "
                "the day starts on an empty one"
            )
        cast, people = self.world.cast, len(self.world.residents)
        print(f"one day on a regional health platform: {people} residents, seed {seed}")
        embedded = settings.ledger.database_url is None and settings.ledger.rpc_url is None
        where = " (SQLite and an in-process chain)" if embedded else ""
        print(f"data: {settings.ledger.data_dir}{where}\n")
        self.register()
        self.consent()
        self.routine("the morning's requests", self.world.morning)
        self.referral(cast["narrows"])
        self.anchor("midday")
        self.emergencies(cast["stroke"], cast["trauma"])
        self.routine("the afternoon's requests", self.world.afternoon)
        self.revocation(cast["revokes"], cast["declines"])
        self.anchor("evening")
        print_anchors(self.api.call("GET", "/v1/log/anchors", {}))
        self.history(cast["stroke"])
        self.review()
        print_tally(LogTally.of(self.leaves()), people, len(self.world.children))
        print_sign_in(settings.ledger, self.key_files, cast["stroke"].subject)

    # -- morning -------------------------------------------------------------------------------

    def register(self) -> None:
        print("the platform admin registers institutions, each signing with its own key:")
        for institution_id, kind, name in INSTITUTIONS:
            key = self.api.keys[institution_id] = Ed25519PrivateKey.generate()
            # The institution's own copy, to sign in with after the day (hospital console).
            path = self.key_dir / f"{institution_id}.pem"
            write_private_key(path, key)
            self.key_files[institution_id] = path
            body: dict[str, Any] = {"id": institution_id, "name": name, "type": kind}
            body["public_key"] = jwk_of(key.public_key())  # the private key never leaves it
            done = self.api.call("POST", "/v1/admin/institutions", self.api.admin, body, 201)
            print(
                f"  {institution_id:<13} {kind:<19} {name:<29} "
                f"key {done['key_thumbprint'][:10]}…  leaf {done['leaf_index']}"
            )
        residents = self.world.residents
        progress = Progress("residents registered", total=len(residents))
        for person in residents:
            guardian = [] if person.guardian is None else [residents[person.guardian].subject]
            record = {
                "identifier": person.identifier,
                "name": person.name,
                "birth_date": person.birth_date.isoformat(),
                "guardians": guardian,
            }
            done = self.api.call("POST", "/v1/admin/residents", self.api.admin, record, 201)
            person.subject = done["subject"]
            progress.advance(1)
        children = plural(len(self.world.children), "child", "children")
        print(
            f"  and {len(residents)} residents, {children} among them with a guardian: names "
            "and identifiers stay\n  encrypted in the vault; the log and this screen see "
            "pseudonymous subject ids only\n"
        )

    def consent(self) -> None:
        granted: Counter[str] = Counter()
        progress = Progress("consents granted")
        for person in self.world.residents:
            grantor = self.world.grantor_of(person)
            for kind in person.consent_kinds:
                headers = self.api.resident(grantor.subject)
                body = person.consent_rules(kind)
                done = self.api.call("POST", "/v1/consents", headers, body, 201)
                person.consent_ids[kind] = done["consent"]["consent_id"]
                granted[kind] += 1
                progress.advance(1)
        print(f"residents grant {granted.total()} consents:")
        print(f"  {granted['family-doctor']} to their family doctors ({FAMILY_DOCTORS})")
        print(f"  {granted['referral']} for referral to the specialists at {SPECIALIST}")
        print(f"  {granted['remote-consultation']} for remote consultation by any hospital")
        print(f"  {granted['child-care']} by a guardian, for a child at {CHILDREN_HOSPITAL}\n")

    def routine(self, title: str, asks: list[Ask]) -> None:
        purposes: Counter[str] = Counter(ask.purpose for ask in asks)
        outcomes: Counter[str] = Counter()
        progress = Progress(title, total=len(asks))
        for ask in asks:
            decided = self.ask(ask.resident, ask.requester, list(ask.categories), ask.purpose)
            outcomes[decided["decision"]] += 1
            if decided["decision"] == "permit":
                self.redeem(decided)
                outcomes["released"] += 1
            progress.advance(1)
        print(f"{title}: {len(asks)} ({', '.join(f'{p} {n}' for p, n in purposes.items())})")
        print(
            f"  {outcomes['permit']} permitted, {outcomes['deny']} denied; "
            f"{outcomes['released']} released by the holders on redeemed grants\n"
        )

    def referral(self, person: Resident) -> None:
        home = person.home
        print(f"a referral, step by step (resident {short(person.subject)}):")
        decided = self.ask(person, SPECIALIST, ["lab-results", "imaging"], "referral")
        self.say(f"{SPECIALIST} asks {home} for lab results and imaging", decided)
        other = next(h for h in ("h-riverside", EMERGENCY_DEPT) if h != home)
        self.say(f"{other} presents the grant by mistake", self.redeem(decided, other, 403))
        self.say(f"{home} redeems it and releases the data", self.redeem(decided))
        self.say(f"{home}'s system retries the redemption", self.redeem(decided, expect=409))
        rules = {**person.consent_rules("referral"), "categories": ["lab-results"]}
        url = f"/v1/consents/{person.consent_ids['referral']}"
        narrowed = self.api.call("PUT", url, self.api.resident(person.subject), rules)
        print(f"  the resident narrows the consent to lab results: leaf {narrowed['leaf_index']}")
        again = self.ask(person, SPECIALIST, ["imaging"], "referral")
        self.say(f"{SPECIALIST} asks for imaging again", again)
        research = self.ask(person, SPECIALIST, ["lab-results"], "research")
        self.say(f"{SPECIALIST} asks for lab results for research", research)
        print()

    # -- afternoon -----------------------------------------------------------------------------

    def emergencies(self, stroke: Resident, trauma: Resident) -> None:
        print("emergencies (break-glass: emergency purposes and categories only):")
        decided = self.ask(stroke, EMERGENCY_DEPT, ["emergency-stroke"], "emergency", True)
        self.say(
            f"{EMERGENCY_DEPT}: a stroke ({short(stroke.subject)}), asks {stroke.home}", decided
        )
        self.say(f"{stroke.home} releases under the emergency grant", self.redeem(decided))
        url = f"/v1/break-glass/{decided['request_id']}/justification"
        note = {"text": STROKE_NOTE}
        done = self.api.call("POST", url, self.api.institution(EMERGENCY_DEPT), note, 201)
        print(
            f"  {EMERGENCY_DEPT} justifies it {'late' if done['late'] else 'in time'} "
            f"(the log keeps a salted commitment, not the text): leaf {done['leaf_index']}"
        )
        decided = self.ask(trauma, SPECIALIST, ["emergency-trauma"], "emergency", True)
        self.overdue_from = datetime.fromisoformat(decided["justify_by"])
        self.say(f"{SPECIALIST}: a trauma ({short(trauma.subject)}), asks {trauma.home}", decided)
        self.say(f"{trauma.home} releases; nobody justifies it", self.redeem(decided))
        print()

    def revocation(self, person: Resident, stranger: Resident) -> None:
        print(f"a revocation (resident {short(person.subject)}):")
        decided = self.ask(person, FAMILY_DOCTORS, ["prescriptions"], "family-doctor")
        self.say(f"{FAMILY_DOCTORS} asks {person.home} for prescriptions", decided)
        url = f"/v1/consents/{person.consent_ids['family-doctor']}"
        revoked = self.api.call("DELETE", url, self.api.resident(person.subject))
        print(f"  the resident revokes that consent at once: leaf {revoked['leaf_index']}")
        refused = self.redeem(decided, expect=422)
        self.say(f"{person.home} redeems the grant issued before", refused)
        again = self.ask(person, FAMILY_DOCTORS, ["prescriptions"], "family-doctor")
        self.say(f"{FAMILY_DOCTORS} asks again", again)
        asker = CLINIC if stranger.home != CLINIC else SPECIALIST
        nobody = self.ask(stranger, asker, ["lab-results"], "treatment")
        self.say(f"{asker} asks about a resident who consented to nothing", nobody)
        print()

    # -- evening -------------------------------------------------------------------------------

    def anchor(self, moment: str) -> None:
        report = self.anchorer.run_once(force_seal=True)
        if report.error is not None or report.sealed is None or not report.anchored:
            raise RuntimeError(f"anchoring failed: {report.error or 'nothing to seal'}")
        print(
            f"{moment}: a checkpoint of {report.sealed.tree_size} events is sealed and anchored "
            f"in block {report.anchored[-1].block_number}\n"
        )

    def history(self, person: Resident) -> None:
        headers = self.api.resident(person.subject)
        entries = self.api.call("GET", "/v1/me/access-history", headers)
        print_history(person.subject, entries)
        # An outsider's check: the key as the service publishes it, the chain, and the receipt.
        vkey = self.api.call("GET", "/v1/log/key", {}).strip()
        release = next(e for e in entries if e["kind"] == "access.released" and e["breakglass"])
        registry = self.anchorer.registry
        check = verify_receipt(release["receipt"], NoteVerifier.from_vkey(vkey), registry)
        print(
            f"  the emergency release's receipt (leaf {check.leaf_index}), checked with the key "
            f"from GET /v1/log/key\n  and the chain: inclusion in checkpoint "
            f"{check.checkpoint.tree_size}, its signature, and its anchor in block "
            f"{check.anchor.block_number}: verified\n"
        )

    def review(self) -> None:
        wait = (self.overdue_from - datetime.now(UTC)).total_seconds()
        if 0 < wait <= OVERDUE_WAIT_LIMIT:
            time.sleep(wait + 0.05)
        cases = self.api.call("GET", "/v1/break-glass?overdue=true", self.api.regulator())
        print(
            f"the regulator lists overdue break-glass (to be justified within {JUSTIFY_WITHIN} s "
            "in this compressed day):"
        )
        for case in cases:
            print(
                f"  {case['requester']} read {', '.join(case['categories'])} from "
                f"{case['holder']} about {short(case['subject'])}: {case['status']} since "
                f"{case['justify_by']}"
            )
        print("  none\n" if not cases else "")

    def leaves(self) -> list[tuple[str, dict[str, Any]]]:
        """Every event in the log as (kind, data), read back page by page as anyone can."""
        events: list[tuple[str, dict[str, Any]]] = []
        url: str | None = "/v1/log/leaves?start=0"
        while url:
            page = self.api.call("GET", url, {})
            events += [decode_leaf(base64.b64decode(leaf["leaf_data"])) for leaf in page["leaves"]]
            url = page["next"]
        return events

    # -- the parties' moves --------------------------------------------------------------------

    def ask(
        self,
        person: Resident,
        requester: str,
        categories: list[str],
        purpose: str,
        emergency: bool = False,
    ) -> dict[str, Any]:
        """``requester`` asks the resident's home for their data; the decision, with the ask."""
        body = {
            "subject": person.subject,
            "holder": person.home,
            "categories": categories,
            "purpose": purpose,
            "emergency": emergency,
        }
        headers = self.api.institution(requester)
        decided = self.api.call("POST", "/v1/access-requests", headers, body, 201)
        return {**decided, "asked": {**body, "requester": requester}}

    def redeem(self, decided: dict[str, Any], by: str | None = None, expect: int = 200) -> Any:
        """The holder (or ``by``) presents the grant of ``decided``: a release, or a refusal."""
        asked = decided["asked"]
        body = {
            "grant_token": decided["grant"]["token"],
            **{k: asked[k] for k in ("requester", "subject", "categories", "purpose")},
        }
        headers = self.api.institution(by or asked["holder"])
        return self.api.call("POST", "/v1/grants/redeem", headers, body, expect)

    @staticmethod
    def say(what: str, answer: Any) -> None:
        if "decision" in answer:
            glass = ", break-glass" if answer["breakglass"] else ""
            outcome = f"{answer['decision']} ({answer['reason']}{glass})"
        elif "type" in answer:
            outcome = f"refused, {answer['status']} {answer['type'].rsplit(':', 1)[-1]}"
        else:
            outcome = "released"
        print(f"  {what}: {outcome}, leaf {answer['leaf_index']}")
