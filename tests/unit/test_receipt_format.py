"""Receipt display rules: exact kWh from integer Wh, content negotiation."""

from __future__ import annotations

import pytest

from api.v1.receipts import wants_html
from domain.energy import format_kwh


@pytest.mark.parametrize(
    ("wh", "text"), [(0, "0.000"), (7, "0.007"), (3_457, "3.457"), (10**12 + 1, "1000000000.001")]
)
def test_kwh_has_exactly_three_decimals(wh: int, text: str) -> None:
    assert format_kwh(wh) == text


@pytest.mark.parametrize(
    ("accept", "output", "html"),
    [
        (None, None, False),
        ("*/*", None, False),
        ("application/json", None, False),
        ("text/html", None, True),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", None, True),
        ("application/json, text/html;q=0.5", None, False),
        ("text/html;q=bogus, application/json", None, False),
        ("text/html", "json", False),
        (None, "html", True),
    ],
)
def test_html_only_when_asked_for(accept: str | None, output: str | None, html: bool) -> None:
    assert wants_html(accept, output) is html  # type: ignore[arg-type]
