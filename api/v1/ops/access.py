"""Who may use the operations API: a verified token carrying an operator role.

Operators authenticate with the same Supabase tokens as drivers (api/auth.py); their role
comes from OPERATOR_ROLE_CLAIM. No clients row is created for them, and their routes use the
plain database session, never the client row-level-security role.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth import resolve_client
from api.errors import ApiError
from domain.operators import OperatorRole


@dataclass(frozen=True)
class Operator:
    """A caller the operations API accepts: `subject` is the token's `sub`."""

    subject: str
    role: OperatorRole
    email: str | None


_bearer = HTTPBearer(auto_error=False, description="Supabase access token of an operator")


async def current_operator(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Operator:
    caller = await resolve_client(request)  # 401 without a valid token
    if caller.operator is None:
        raise ApiError(403, "forbidden", "this endpoint is for operators")
    return Operator(subject=caller.client_id, role=caller.operator, email=caller.email)


CurrentOperator = Annotated[Operator, Depends(current_operator)]


async def current_admin(operator: CurrentOperator) -> Operator:
    if operator.role is not OperatorRole.ADMIN:
        raise ApiError(403, "forbidden", "this action is for admins")
    return operator


CurrentAdmin = Annotated[Operator, Depends(current_admin)]
