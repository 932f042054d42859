"""Content-Security-Policy of the few HTML pages the API serves: each names exactly what its
page loads. Everything else (JSON) gets the strict policy of `api.security`."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def source_hash(source: str) -> str:
    """The CSP source for one inline <script> or <style> body, byte for byte."""
    digest = hashlib.sha256(source.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def inline_script_hashes(page: str) -> list[str]:
    return [source_hash(body) for body in _INLINE_SCRIPT.findall(page)]


def page_policy(
    *,
    script: Iterable[str] = (),
    style: Iterable[str] = (),
    img: Iterable[str] = (),
    connect: Iterable[str] = (),
    form_action: Iterable[str] = (),
) -> str:
    """`default-src 'none'` plus only the sources given; no framing, no <base>."""
    directives = ["default-src 'none'"]
    for name, sources in (
        ("script-src", script),
        ("style-src", style),
        ("img-src", img),
        ("connect-src", connect),
    ):
        listed = " ".join(sources)
        if listed:
            directives.append(f"{name} {listed}")
    targets = " ".join(form_action) or "'none'"
    directives.append(f"form-action {targets}")
    directives += ["frame-ancestors 'none'", "base-uri 'none'"]
    return "; ".join(directives)
