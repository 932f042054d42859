"""Supabase JWT verification and the `CurrentClient` dependency (first use creates the client)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
import structlog
from cachetools import LRUCache
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.asgi_types import Scope, header
from api.client_scope import client_scope
from api.deps import ApiConfig, ApiContext
from api.errors import ApiError
from api.jwks import JWKS_PATH, JwksCache, JwksUnavailable
from db.clients import ensure_client
from domain.operators import OperatorRole, operator_role

log = structlog.get_logger(__name__)

ALLOWED_ROLE = "authenticated"
REQUIRED_CLAIMS = ("exp", "sub", "aud")
# Seconds of clock skew tolerated between Supabase and us on exp/nbf/iat.
LEEWAY_S = 30
_STATE_KEY = "evpower.auth"
VERIFIED_TTL_S = 60.0
VERIFIED_CAPACITY = 4_096


@dataclass(frozen=True)
class AuthenticatedClient:
    """Who is calling: `client_id` is the Supabase user id (`sub`); `operator` is the
    operator role the token carries (OPERATOR_ROLE_CLAIM), None for a driver."""

    client_id: str
    role: str
    email: str | None
    operator: OperatorRole | None = None


class AuthError(ApiError):
    """401 with a stable code and the Bearer challenge."""

    def __init__(self, code: str, message: str) -> None:
        challenge = f'Bearer error="invalid_token", error_description="{code}"'
        if code == "missing_token":
            challenge = "Bearer"
        super().__init__(401, code, message, {"WWW-Authenticate": challenge})


class Authenticator:
    """Verifies Supabase access tokens. The verification algorithm is fixed by the key that
    verifies (RSA → RS256, EC P-256 → ES256, shared secret → HS256); the token's own `alg`
    header only has to agree with it."""

    def __init__(
        self,
        *,
        supabase_url: str | None,
        jwt_secret: str | None,
        audience: str,
        jwks: JwksCache | None = None,
        operator_role_claim: str = "app_metadata.role",
    ) -> None:
        base = supabase_url.rstrip("/") if supabase_url else None
        self._issuer = f"{base}/auth/v1" if base else None
        self._secret = jwt_secret or None
        self._audience = audience
        self._operator_role_claim = operator_role_claim
        self._verified: LRUCache[str, tuple[AuthenticatedClient, float]] = LRUCache(
            VERIFIED_CAPACITY
        )
        self._jwks = jwks if jwks is not None else (JwksCache(base + JWKS_PATH) if base else None)

    @classmethod
    def from_config(cls, config: ApiConfig) -> Authenticator:
        return cls(
            supabase_url=config.auth.supabase_url,
            jwt_secret=config.auth.supabase_jwt_secret,
            audience=config.auth.supabase_jwt_audience,
            operator_role_claim=config.auth.operator_role_claim,
        )

    async def verify(self, token: str) -> AuthenticatedClient:
        cached = self._verified.get(token)
        if cached is not None and time.time() < cached[1]:
            return cached[0]
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("invalid_token", "the bearer token is not a JWT") from None
        key, algorithm = await self._key_for(header)
        claims = self._decode(token, key, algorithm)
        client = self._client_from(claims)
        self._remember(token, client, float(claims["exp"]))
        return client

    def _remember(self, token: str, client: AuthenticatedClient, exp: float) -> None:
        # An app sends the same token with every request for up to an hour; skipping the
        # signature check on repeats saves CPU on every request. Entries live briefly so a key the
        # issuer withdraws stops working soon after.
        self._verified[token] = (client, min(exp, time.time() + VERIFIED_TTL_S))

    async def _key_for(self, header: dict[str, Any]) -> tuple[Any, str]:
        kid = header.get("kid")
        if self._jwks is not None and isinstance(kid, str) and kid:
            try:
                found = await self._jwks.key(kid)
            except JwksUnavailable:
                if self._secret is None:
                    raise ApiError(
                        503, "auth_unavailable", "cannot reach the identity provider's keys"
                    ) from None
                found = None
            if found is not None:
                return found.key, found.algorithm
        # Supabase's legacy HS256 tokens carry a kid that is not in the JWKS; they and
        # kid-less tokens are checked against the shared secret, with HS256 only.
        if self._secret is not None:
            return self._secret, "HS256"
        raise AuthError("invalid_token", "the token is not signed by a known key")

    def _decode(self, token: str, key: Any, algorithm: str) -> dict[str, Any]:
        required = [*REQUIRED_CLAIMS, *(["iss"] if self._issuer else [])]
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=LEEWAY_S,
                options={"require": required},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token_expired", "the token has expired") from None
        except jwt.InvalidAudienceError:
            raise AuthError("invalid_audience", "the token is not meant for this API") from None
        except jwt.InvalidIssuerError:
            raise AuthError("invalid_issuer", "the token was issued by someone else") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError("missing_claim", f"the token has no '{exc.claim}' claim") from None
        except jwt.ImmatureSignatureError:
            raise AuthError("token_not_yet_valid", "the token is not valid yet") from None
        except jwt.PyJWTError:
            raise AuthError("invalid_token", "the token signature or format is invalid") from None
        return claims

    def _client_from(self, claims: dict[str, Any]) -> AuthenticatedClient:
        role = claims.get("role")
        if role != ALLOWED_ROLE:
            raise AuthError("forbidden_role", f"role '{role}' may not use this API")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not _is_uuid(sub):
            raise AuthError("invalid_subject", "the token's subject is not a user id")
        email = claims.get("email")
        return AuthenticatedClient(
            client_id=sub.lower(),
            role=role,
            email=email if isinstance(email, str) and email else None,
            operator=operator_role(claims, self._operator_role_claim),
        )


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) == 36


class ClientRegistry:
    """Creates the `clients` row on a client's first authenticated request. Remembers the ids
    it has already ensured (bounded), so the steady state costs no query."""

    def __init__(
        self, db_sessions: async_sessionmaker[AsyncSession], capacity: int = 10_000
    ) -> None:
        self._db_sessions = db_sessions
        self._seen: LRUCache[str, bool] = LRUCache(capacity)

    async def ensure(self, client: AuthenticatedClient) -> None:
        if self._seen.get(client.client_id):  # a hit also keeps the id among the recent
            return
        # In the client's own scope: a request can only ever create its own client row.
        async with client_scope(self._db_sessions, client.client_id) as session:
            await ensure_client(session, client.client_id, client.email)
        self._seen[client.client_id] = True


@dataclass
class AuthState:
    """Per-app auth machinery, created on first use and kept on `app.state`."""

    authenticator: Authenticator
    registry: ClientRegistry


def auth_state(app: Any) -> AuthState:
    state: AuthState | None = getattr(app.state, "auth", None)
    if state is None:
        context: ApiContext = app.state.context
        state = AuthState(
            Authenticator.from_config(context.config), ClientRegistry(context.db_sessions)
        )
        app.state.auth = state
    return state


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def _verify_once(scope: Scope) -> AuthenticatedClient | ApiError | None:
    """The verdict on the request's bearer token, computed once and kept in the scope so the
    rate limiter, idempotency and the endpoint dependency share it. None: no token."""
    if _STATE_KEY in scope:
        verdict: AuthenticatedClient | ApiError | None = scope[_STATE_KEY]
        return verdict
    token = bearer_token(header(scope, "authorization"))
    if token is None:
        verdict = None
    else:
        try:
            verdict = await auth_state(scope["app"]).authenticator.verify(token)
        except ApiError as exc:
            verdict = exc
    scope[_STATE_KEY] = verdict
    return verdict


async def client_from_scope(scope: Scope) -> AuthenticatedClient | None:
    """The verified caller, or None when the request is anonymous or its token is bad."""
    verdict = await _verify_once(scope)
    return verdict if isinstance(verdict, AuthenticatedClient) else None


async def resolve_client(request: Request) -> AuthenticatedClient:
    verdict = await _verify_once(request.scope)
    if verdict is None:
        raise AuthError("missing_token", "an Authorization: Bearer token is required")
    if isinstance(verdict, ApiError):
        raise verdict
    return verdict


_bearer = HTTPBearer(auto_error=False, description="Supabase access token")


async def current_client(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AuthenticatedClient:
    client = await resolve_client(request)
    await auth_state(request.app).registry.ensure(client)
    return client


CurrentClient = Annotated[AuthenticatedClient, Depends(current_client)]
