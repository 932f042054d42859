"""REST v1 routers, one module per domain; `ROUTERS` is what the app factory mounts."""

from __future__ import annotations

from fastapi import APIRouter

ROUTERS: list[APIRouter] = []
