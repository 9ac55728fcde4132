"""What only the apps need from the API: the institution directory and the auditor's report.

* ``GET /v1/institutions``: every signed-in role may list institutions (id, name, type,
  whether active), so a resident can pick a grantee by name. Institutions are not personal
  data; their keys and registration details stay with the admin's ``/v1/admin/institutions``.
* ``GET /v1/audience``: public, the ``aud`` every token for this deployment must carry
  (institutions sign their own tokens, so they must know it; it names no secret).
* ``GET /v1/audit/report``: the regulator's console shows the auditor's latest findings. The
  auditor runs elsewhere (it trusts nothing of this service) and writes its ``--json`` report;
  the file at ``audit_report`` is served as written, with the time it was written.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from ..auth import AUTH_RESPONSES, PlatformKeys, Principal, Role, require_roles
from ..dependencies import get_institutions, get_platform_keys, get_settings
from ..domain.vocab import InstitutionType
from ..errors import NotFoundError
from ..institutions import InstitutionRegistry
from ..settings import ApiSettings
from .access import problem_response

router = APIRouter(responses=AUTH_RESPONSES)

SignedIn = Annotated[
    Principal,
    Depends(require_roles(Role.RESIDENT, Role.INSTITUTION, Role.REGULATOR, Role.ADMIN)),
]
Regulator = Annotated[Principal, Depends(require_roles(Role.REGULATOR))]
MAX_REPORT_BYTES = 8 * 1024 * 1024


class DirectoryEntry(BaseModel):
    id: str
    name: str
    type: InstitutionType
    active: bool


class AudienceOut(BaseModel):
    audience: str = Field(description='The "aud" every token for this deployment must carry.')


class AuditReportOut(BaseModel):
    written_at: datetime = Field(description="When the auditor wrote the report (file time).")
    report: dict[str, Any] = Field(description="The report as the auditor wrote it (--json).")


@router.get("/v1/institutions", tags=["directory"])
def institution_directory(
    _: SignedIn, registry: Annotated[InstitutionRegistry, Depends(get_institutions)]
) -> list[DirectoryEntry]:
    """Every registered institution by id, for the apps' pickers."""
    return [
        DirectoryEntry(id=item.id, name=item.name, type=item.type, active=item.active)
        for item in registry.all()
    ]


@router.get("/v1/audience", tags=["directory"])
async def token_audience(
    platform: Annotated[PlatformKeys, Depends(get_platform_keys)],
) -> AudienceOut:
    """The audience institutions put in the tokens they sign for this deployment."""
    return AudienceOut(audience=platform.audience)


@router.get(
    "/v1/audit/report",
    tags=["audit"],
    responses={404: problem_response("No audit report is configured or written yet")},
)
def audit_report(
    _: Regulator, settings: Annotated[ApiSettings, Depends(get_settings)]
) -> AuditReportOut:
    """The auditor's latest report, from the file ``audit_report`` names."""
    path = settings.audit_report
    if path is None:
        raise NotFoundError("no audit report is configured (CONSENT_API_AUDIT_REPORT)")
    try:
        stat = path.stat()
        if stat.st_size > MAX_REPORT_BYTES:
            raise NotFoundError("the audit report is larger than the service will serve")
        report = json.loads(path.read_bytes())
    except FileNotFoundError as exc:
        raise NotFoundError("the auditor has not written a report yet") from exc
    except (OSError, ValueError) as exc:
        raise NotFoundError("the audit report cannot be read as JSON") from exc
    if not isinstance(report, dict):
        raise NotFoundError("the audit report is not a JSON object")
    return AuditReportOut(written_at=datetime.fromtimestamp(stat.st_mtime, UTC), report=report)
