"""The operations API over HTTP for `evpower ops`: one request, its answer or one clear error
line, and the answer printed as JSON or as a table."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import httpx

API = "/api/v1/ops"


class OpsError(Exception):
    """What went wrong, as one line for the operator; `exit_code` for the shell."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class OpsClient:
    base_url: str
    token: str
    timeout_s: float = 60.0

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        url = self.base_url.rstrip("/") + API + path
        query = {name: value for name, value in (params or {}).items() if value is not None}
        try:
            response = httpx.request(
                method,
                url,
                params=query,
                json=body,
                headers={"Authorization": f"Bearer {self.token}", **(headers or {})},
                timeout=self.timeout_s,
            )
        except httpx.HTTPError as exc:
            raise OpsError(f"cannot reach {self.base_url}: {exc}") from None
        if response.status_code >= 400:
            raise OpsError(_error_line(response))
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise OpsError(f"{response.status_code}: the answer is not JSON") from None


def _error_line(response: httpx.Response) -> str:
    """`409 connector_busy: ...` from the API's error body (or the status alone)."""
    try:
        error = response.json().get("error", {})
        code, message = error.get("code"), error.get("message")
    except (ValueError, AttributeError):
        code = message = None
    if code is None:
        return f"{response.status_code}: {response.text[:300] or response.reason_phrase}"
    hint = " (set EVPOWER_OPS_TOKEN to an operator's token)" if response.status_code == 401 else ""
    return f"{response.status_code} {code}: {message}{hint}"


def print_json(value: Any, out: TextIO | None = None) -> None:
    # sys.stdout looked up at the call, not at import: a caller (or a test) may have replaced it.
    (out or sys.stdout).write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def print_table(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], out: TextIO | None = None
) -> None:
    """Left-aligned columns, one header line; `(none)` for no rows."""
    out = out or sys.stdout
    if not rows:
        out.write("(none)\n")
        return
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [
        max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)
    ]
    for line in [list(columns), *cells]:
        out.write(
            "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
            + "\n"
        )


def parse_fields(pairs: Sequence[str]) -> dict[str, Any]:
    """`name=value` pairs for a command's body: a value that reads as JSON (1, true,
    ["a","b"], null) is that, anything else is a string."""
    fields: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise OpsError(f"--field wants name=value, got {pair!r}", exit_code=2)
        try:
            fields[name] = json.loads(raw)
        except ValueError:
            fields[name] = raw
    return fields
