"""The benchmark's report: one row per figure, gateway beside the bare echo server."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    figure: str
    gateway: float | None
    bare: float | None
    target: str
    passed: bool | None  # None: informational, no target
    unit: str = ""
    show_ratio: bool = True

    @property
    def ratio(self) -> float | None:
        if not self.show_ratio or self.gateway is None or not self.bare:
            return None
        return self.gateway / self.bare


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}"


def render(rows: list[Row]) -> str:
    """A Markdown table: readable in a terminal, pasteable into docs/benchmarks.md."""
    header = ("figure", "gateway", "bare echo", "ratio", "target", "result")
    lines = [
        (
            f"{row.figure} ({row.unit})" if row.unit else row.figure,
            _number(row.gateway),
            _number(row.bare),
            f"{row.ratio:.2f}" if row.ratio is not None else "-",
            row.target,
            {True: "PASS", False: "FAIL", None: "info"}[row.passed],
        )
        for row in rows
    ]
    widths = [max(len(cells[i]) for cells in (header, *lines)) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(cells) for cells in lines)])
