"""`GET /ops/me`: the operator a token names, so a console can check it before acting."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

from api.ops_audit import audit_note
from api.v1.ops.access import CurrentOperator

router = APIRouter()


class OperatorView(BaseModel):
    subject: str
    role: str
    email: str | None


@router.get("/me")
async def whoami(request: Request, operator: CurrentOperator) -> OperatorView:
    """Who this token is to the operations API."""
    audit_note(request).action = "operator.me"
    return OperatorView(subject=operator.subject, role=operator.role.value, email=operator.email)
