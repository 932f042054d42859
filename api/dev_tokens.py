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
) -> str:
    """A token the API accepts when it is configured with the same secret (and SUPABASE_URL)."""
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
    return jwt.encode(claims, secret, algorithm="HS256")
