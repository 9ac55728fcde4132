"""The lawfulness replay against a real deployment: a ``consent-ledger serve`` process on SQLite,
its checkpoints anchored on the embedded chain, and the ``auditor`` command.

The platform plays a small day through its API (consents with a deny provision, a grant to an
institution type, a guardian's consent for a child, an HL7 opt-out imported as FHIR, permits,
releases, denials, a revocation with a refused redemption, a justified break-glass); the
auditor's independent rules must find nothing in it. ``Platform`` is built once per module and
copied for each test, which then attacks its copy (``tests/test_auditor_replay_attacks.py``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auditor.cli import main
from auditor.errors import ApiStatusError
from auditor.integrity import audit_integrity
from auditor.openings import fetch_openings
from consent_api.auth import sign_institution_token
from consent_api.institutions import jwk_of
from contracts.chain import connect
from ledger.anchoring import Anchorer
from ledger.log import Ledger
from ledger.settings import LedgerSettings
from tests.live_server import LiveServer
from tests.paths import FHIR

ORIGIN = "replay.test/log"
ENV = {"CONSENT_LEDGER_ORIGIN": ORIGIN, "CONSENT_API_ANCHOR_IN_BACKGROUND": "false"}
OPT_OUT = FHIR / "consent" / "Consent-consent-example-notOrg.json"
LAB = ["lab-results"]


@dataclass
class Platform:
    root: Path
    contract: str = ""
    keys: dict[str, Ed25519PrivateKey] = field(default_factory=dict)
    subjects: dict[str, str] = field(default_factory=dict)
    regulator: str = ""
    attackers_build: bool = False  # serve without the service's checks of its own storage

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def settings(self) -> LedgerSettings:
        return LedgerSettings(
            data_dir=self.data_dir, origin=ORIGIN, checkpoint_every=1000, checkpoint_interval=3600
        )

    def copy_to(self, dest: Path) -> Platform:
        shutil.copytree(self.root, dest)
        return Platform(dest, self.contract, self.keys, self.subjects, self.regulator)

    @contextmanager
    def serve(self) -> Iterator[Session]:
        server = LiveServer(self.data_dir, env=ENV, attackers_build=self.attackers_build)
        try:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                yield Session(self, server, client)
        finally:
            server.stop()

    @contextmanager
    def ledger(self) -> Iterator[Ledger]:
        ledger = Ledger.open(self.settings)
        try:
            yield ledger
        finally:
            ledger.close()

    def anchor(self) -> int:
        """Seal and anchor everything logged so far (the service must be stopped)."""
        with self.ledger() as ledger:
            anchorer = Anchorer(ledger)
            try:
                report = anchorer.run_once(force_seal=True)
                assert report.error is None, report.error
                self.contract = anchorer.connect().address
            finally:
                anchorer.close()
            return ledger.tree_size()

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        with self.ledger() as ledger:
            return [
                (json.loads(leaf.leaf_data)["kind"], json.loads(leaf.leaf_data)["data"])
                for leaf in ledger.leaves(0, ledger.tree_size())
            ]

    def audit_args(self, url: str, state: Path, *extra: str) -> list[str]:
        return [
            "--api",
            url,
            "--chain-dir",
            str(self.settings.chain_dir),
            "--contract",
            self.contract,
            "--state",
            str(state),
            "--json",
            str(state.parent / f"{state.name}.json"),
            "--quiet",
            *extra,
        ]


@dataclass
class Session:
    platform: Platform
    server: LiveServer
    client: httpx.Client
    admin_token: str = ""

    @property
    def url(self) -> str:
        return self.server.url

    def admin(self) -> dict[str, str]:
        if not self.admin_token:  # one CLI process per session: it opens the data dir too
            self.admin_token = self.server.cli(
                "issue-token", "--role", "admin", "--subject", "ops"
            ).strip()
        return {"Authorization": f"Bearer {self.admin_token}"}

    def token(self, role: str, subject: str) -> str:
        body = {"role": role, "subject": subject, "ttl": 3600}
        response = self.client.post("/v1/admin/tokens", json=body, headers=self.admin())
        assert response.status_code == 201, response.text
        token: str = response.json()["access_token"]
        return token

    def resident(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token('resident', self.platform.subjects[name])}"}

    def institution(self, institution_id: str) -> dict[str, str]:
        key = self.platform.keys[institution_id]
        audience = self.client.get("/v1/audience").json()["audience"]
        token = sign_institution_token(key, institution_id, audience=audience)
        return {"Authorization": f"Bearer {token}"}

    def register_institution(self, institution_id: str, kind: str) -> None:
        key = self.platform.keys[institution_id] = Ed25519PrivateKey.generate()
        body = {
            "id": institution_id,
            "name": institution_id,
            "type": kind,
            "public_key": jwk_of(key.public_key()),
        }
        response = self.client.post("/v1/admin/institutions", json=body, headers=self.admin())
        assert response.status_code == 201, response.text

    def register_resident(self, name: str, born: date, guardians: tuple[str, ...] = ()) -> str:
        body = {
            "identifier": name,
            "name": name,
            "birth_date": born.isoformat(),
            "guardians": [self.platform.subjects[g] for g in guardians],
        }
        response = self.client.post("/v1/admin/residents", json=body, headers=self.admin())
        assert response.status_code in (200, 201), response.text
        subject: str = response.json()["subject"]
        self.platform.subjects[name] = subject
        return subject

    def grant(self, by: str, about: str, rules: dict[str, Any]) -> dict[str, Any]:
        body = {**rules, "subject": self.platform.subjects[about]}
        response = self.client.post("/v1/consents", json=body, headers=self.resident(by))
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def request(
        self,
        requester: str,
        about: str,
        holder: str,
        categories: list[str],
        purpose: str,
        *,
        emergency: bool = False,
    ) -> dict[str, Any]:
        body = {
            "subject": self.platform.subjects[about],
            "holder": holder,
            "categories": categories,
            "purpose": purpose,
            "emergency": emergency,
        }
        response = self.client.post(
            "/v1/access-requests", json=body, headers=self.institution(requester)
        )
        assert response.status_code == 201, response.text
        decided: dict[str, Any] = response.json()
        return decided

    def redeem(self, decided: dict[str, Any], requester: str, holder: str) -> httpx.Response:
        request = self.client.get("/v1/access-requests", headers=self.institution(requester)).json()
        mine = next(r for r in request if r["request_id"] == decided["request_id"])
        body = {
            "grant_token": decided["grant"]["token"],
            "requester": requester,
            "subject": mine["subject"],
            "categories": mine["categories"],
            "purpose": mine["purpose"],
        }
        return self.client.post("/v1/grants/redeem", json=body, headers=self.institution(holder))

    def justify(self, decided: dict[str, Any], requester: str) -> None:
        response = self.client.post(
            f"/v1/break-glass/{decided['request_id']}/justification",
            json={"text": "stroke alarm, patient unconscious"},
            headers=self.institution(requester),
        )
        assert response.status_code == 201, response.text


def play_a_day(session: Session) -> None:
    """The clean traffic the auditor must find lawful."""
    for institution_id, kind in (
        ("h-alpha", "hospital"),
        ("h-beta", "hospital"),
        ("cl-gamma", "clinic"),
        ("f001", "hospital"),
    ):
        session.register_institution(institution_id, kind)
    session.register_resident("ana", date(1980, 5, 1))
    session.register_resident("ben", date(1975, 2, 2))
    today = datetime.now(UTC).date()
    session.register_resident("kid", date(today.year - 9, 1, 15), guardians=("ben",))
    opt_out = json.loads(OPT_OUT.read_text())
    patient = opt_out["patient"]["reference"].split("/", 1)[1]
    session.register_resident(patient, date(1970, 1, 1))
    deny_gamma = {"type": "deny", "holders": ["cl-gamma"], "grantees": [], "provisions": []}
    session.grant(
        "ana",
        "ana",
        {
            "grantee": {"institution": "h-beta"},
            "categories": ["lab-results", "imaging"],
            "purposes": ["treatment"],
            "provisions": [deny_gamma],
        },
    )
    session.grant(
        "ana",
        "ana",
        {
            "grantee": {"institution_type": "clinic"},
            "categories": ["prescriptions"],
            "purposes": ["referral"],
        },
    )
    session.grant("ben", "kid", {"grantee": {"institution": "h-beta"}, "categories": LAB})
    ben = session.grant("ben", "ben", {"grantee": {"institution": "h-beta"}, "categories": LAB})
    session.grant(patient, patient, {"grantee": {"institution": "f001"}, "categories": LAB})
    headers = session.resident(patient)
    assert session.client.post("/fhir/Consent", json=opt_out, headers=headers).status_code == 201

    permit = session.request("h-beta", "ana", "h-alpha", ["lab-results", "imaging"], "treatment")
    assert permit["decision"] == "permit", permit
    assert session.redeem(permit, "h-beta", "h-alpha").status_code == 200
    typed = session.request("cl-gamma", "ana", "h-alpha", ["prescriptions"], "referral")
    assert session.redeem(typed, "cl-gamma", "h-alpha").status_code == 200
    assert session.request("h-beta", "ana", "cl-gamma", LAB, "treatment")["decision"] == "deny"
    assert session.request("h-beta", "ana", "h-alpha", LAB, "research")["decision"] == "deny"
    child = session.request("h-beta", "kid", "h-alpha", LAB, "treatment")
    assert session.redeem(child, "h-beta", "h-alpha").status_code == 200
    out = session.request("f001", patient, "h-alpha", LAB, "treatment")
    assert out["decision"] == "deny", out  # the HL7 opt-out, as it reads
    before = session.request("h-beta", "ben", "h-alpha", LAB, "treatment")
    revoked = session.client.delete(
        f"/v1/consents/{ben['consent']['consent_id']}", headers=session.resident("ben")
    )
    assert revoked.status_code == 200, revoked.text
    assert session.redeem(before, "h-beta", "h-alpha").status_code == 422  # no longer covered
    assert session.request("h-beta", "ben", "h-alpha", LAB, "treatment")["decision"] == "deny"
    emergency = session.request(
        "h-beta", "ben", "h-alpha", ["emergency-stroke"], "emergency", emergency=True
    )
    assert emergency["breakglass"] is True
    assert session.redeem(emergency, "h-beta", "h-alpha").status_code == 200
    session.justify(emergency, "h-beta")
    session.platform.regulator = session.token("regulator", "reg-audit")


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Platform:
    built = Platform(tmp_path_factory.mktemp("replay") / "platform")
    built.data_dir.mkdir(parents=True)
    with built.serve() as session:
        play_a_day(session)
    shutil.copytree(built.root, built.root.parent / "unanchored")
    built.anchor()
    return built


@pytest.fixture
def copy(platform: Platform, tmp_path: Path) -> Platform:
    return platform.copy_to(tmp_path / "platform")


def report_of(state: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((state.parent / f"{state.name}.json").read_text())
    return loaded


# -- the clean deployment -----------------------------------------------------------------------


def test_a_clean_day_is_lawful_by_the_auditors_own_rules(copy: Platform, tmp_path: Path) -> None:
    state = tmp_path / "state"
    with copy.serve() as session:
        assert main(copy.audit_args(session.url, state, "--token", copy.regulator)) == 0
    report = report_of(state)
    assert report["findings"] == []
    law = report["lawfulness"]
    assert law["replayed_size"] == report["verified"]["tree_size"] > 0
    assert law["events"] == law["replayed_size"]
    # ana x2 + kid + ben-before + emergency; research, cl-gamma's holder, f001, ben-after denied
    assert (law["permits"], law["denials"], law["releases"], law["breakglass"]) == (5, 4, 4, 1)
    assert law["unverifiable_guardian_consents"] == 0
    (case,) = report["activity"]["breakglass"]
    assert case["status"] == "justified"
    assert case["justification_leaf_index"] > case["leaf_index"]
    days = {a["day"] for a in report["activity"]["accesses"]}
    assert days == {datetime.now(UTC).date().isoformat()} or len(days) == 2  # near midnight
    assert sum(a["count"] for a in report["activity"]["accesses"]) == 9
    (anchor,) = report["anchoring"]
    assert anchor["tree_size"] == law["replayed_size"]
    assert anchor["lag_s"] is not None


def test_without_a_token_guardian_consents_are_counted_unverifiable(
    copy: Platform, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    with copy.serve() as session:
        assert main([*copy.audit_args(session.url, state)[:-1]]) == 0
    assert report_of(state)["lawfulness"]["unverifiable_guardian_consents"] == 1
    assert "judged without their lapse date" in capsys.readouterr().err


def test_a_bad_token_cannot_audit(copy: Platform, tmp_path: Path) -> None:
    with copy.serve() as session:
        args = copy.audit_args(session.url, tmp_path / "state", "--token", "not-a-token")
        assert main(args) == 2


def test_the_second_run_replays_only_the_new_leaves(copy: Platform, tmp_path: Path) -> None:
    state = tmp_path / "state"
    with copy.serve() as session:
        assert main(copy.audit_args(session.url, state, "--token", copy.regulator)) == 0
        first = report_of(state)
        assert first["stats"]["leaves_replayed"] == first["lawfulness"]["replayed_size"]
        assert main(copy.audit_args(session.url, state, "--token", copy.regulator)) == 0
        assert report_of(state)["stats"]["leaves_replayed"] == 0
        decided = session.request("h-beta", "ana", "h-alpha", LAB, "treatment")
        assert session.redeem(decided, "h-beta", "h-alpha").status_code == 200
    copy.anchor()
    with copy.serve() as session:
        assert main(copy.audit_args(session.url, state, "--token", copy.regulator)) == 0
    second = report_of(state)
    assert second["stats"]["leaves_replayed"] == 2
    assert second["stats"]["leaves_hashed"] == 2
    assert second["lawfulness"]["replayed_size"] == first["lawfulness"]["replayed_size"] + 2
    assert second["lawfulness"]["permits"] == first["lawfulness"]["permits"] + 1
    assert len(list(state.glob("replay-*.bin"))) == 1  # the old blob is gone


def test_a_state_verified_without_the_replay_is_caught_up_once(
    copy: Platform, tmp_path: Path
) -> None:
    """A state directory of an auditor that checked integrity only: the verified leaves are
    fetched again, rehashed to the verified root, and replayed; then the runs are incremental."""
    state = tmp_path / "state"
    with copy.serve() as session:
        with connect(data_dir=copy.settings.chain_dir) as chain:
            integrity = audit_integrity(
                session.url, chain, copy.contract, state, max_anchor_lag_s=3600.0
            )
        assert integrity.ok
        assert integrity.lawfulness is None
        assert not list(state.glob("replay-*.bin"))
        assert main(copy.audit_args(session.url, state, "--token", copy.regulator)) == 0
        caught_up = report_of(state)
        size = caught_up["verified"]["tree_size"]
        assert caught_up["stats"]["leaves_replayed"] == size, caught_up
        assert caught_up["stats"]["leaves_hashed"] == 0  # nothing new for the integrity half
        assert caught_up["lawfulness"]["replayed_size"] == size
        (state / "replay-0123456789abcdef0123456789abcdef.bin").write_bytes(b"left by a crash")
        assert main(copy.audit_args(session.url, state, "--token", copy.regulator)) == 0
    assert report_of(state)["stats"]["leaves_replayed"] == 0
    assert report_of(state)["lawfulness"] == caught_up["lawfulness"]
    assert len(list(state.glob("replay-*.bin"))) == 1


def test_lapse_openings_page_through_the_log(copy: Platform) -> None:
    size = len(copy.events())
    with copy.serve() as session, httpx.Client(timeout=30) as http:
        whole, one_request = fetch_openings(http, session.url, copy.regulator, 0, size)
        paged, requests = fetch_openings(http, session.url, copy.regulator, 0, size, page=2)
        with pytest.raises(ApiStatusError) as refused:
            fetch_openings(
                http, session.url, session.token("resident", copy.subjects["ana"]), 0, size
            )
    assert refused.value.status == 403
    assert one_request == 1
    assert requests > 1
    assert paged == whole
    ((consent_id, version), (day, salt)) = next(iter(whole.items()))
    kid_consent = next(
        data["consent"]
        for kind, data in copy.events()
        if kind == "consent.granted" and data["consent"]["consent_id"] == consent_id
    )
    assert version == 1
    assert kid_consent["subject"] == copy.subjects["kid"]
    committed = kid_consent["guardian_authority_ends"]["sha256"]
    assert hashlib.sha256(salt + day.encode()).hexdigest() == committed
    assert date.fromisoformat(day).year == datetime.now(UTC).year + 5


def test_a_catch_up_over_leaves_rewritten_since_is_a_finding(
    copy: Platform, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    with copy.serve() as session:
        with connect(data_dir=copy.settings.chain_dir) as chain:
            assert audit_integrity(session.url, chain, copy.contract, state, max_anchor_lag_s=60).ok
        with sqlite3.connect(copy.data_dir / "ledger.db") as conn:  # the served leaf 3 changes
            conn.execute("UPDATE leaf SET leaf_data = ? WHERE leaf_index = 3", (b"{}",))
        assert main(copy.audit_args(session.url, state, "--token", copy.regulator)) == 1
    report = report_of(state)
    (finding,) = report["findings"]
    assert finding["code"] == "leaves-mismatch"
    assert finding["tree_size"] == report["verified"]["tree_size"]
    assert report["lawfulness"]["replayed_size"] == 0
