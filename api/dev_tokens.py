"""HS256 access tokens shaped like Supabase's, for `evpower dev`'s demo client and for tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt

DEFAULT_TTL = timedelta(days=30)


def issue_dev_token(
    secret: str,
    client_id: str,
    supabase_url: str | None = None,
    ttl: timedelta = DEFAULT_TTL,
    *,
    email: str | None = None,
    audience: str = "authenticated",
    operator_role: str | None = None,
    operator_role_claim: str = "app_metadata.role",
) -> str:
    """A token the API accepts when it is configured with the same secret (and SUPABASE_URL).
    With `operator_role` (`operator` or `admin`) it also opens the operations API: the role
    is put where OPERATOR_ROLE_CLAIM says, as Supabase puts `app_metadata`."""
    now = datetime.now(UTC)
    claims: dict[str, object] = {
        "sub": client_id,
        "aud": audience,
        "role": "authenticated",
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    if supabase_url:
        claims["iss"] = f"{supabase_url.rstrip('/')}/auth/v1"
    if email:
        claims["email"] = email
    if operator_role:
        *parents, leaf = operator_role_claim.split(".")
        node = claims
        for name in parents:
            child = node.setdefault(name, {})
            if not isinstance(child, dict):
                raise ValueError(f"claim {name!r} is not an object")
            node = child
        node[leaf] = operator_role
    return jwt.encode(claims, secret, algorithm="HS256")
