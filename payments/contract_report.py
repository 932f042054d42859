"""What `evpower payments check` found: each assumption held or not, and the settings to change.

The check compares the provider's answers with our reading (payments.contract); this module
keeps the findings, masks what it prints, and turns what was seen into ODENGI_* values.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from payments.contract import DEFAULT_STATUS_PATHS, OdengiContract, status_key

SECRET_KEYS = frozenset({"hash", "password", "sign", "signature", "card_number", "cvc"})
HELD, NOT_HELD, NOT_CHECKED = "held", "DID NOT HOLD", "not checked"


def mask(value: Any) -> Any:
    """A copy fit to print: signatures and secrets replaced, the merchant id shortened."""
    if isinstance(value, Mapping):
        masked: dict[str, Any] = {}
        for key, item in value.items():
            if str(key).lower() in SECRET_KEYS:
                masked[key] = "***"
            elif str(key).lower() == "sid" and isinstance(item, str | int):
                text = str(item)
                masked[key] = f"{text[:2]}***{text[-2:]}" if len(text) > 4 else "***"
            else:
                masked[key] = mask(item)
        return masked
    if isinstance(value, list):
        return [mask(item) for item in value]
    return value


def shown(value: Any, limit: int = 4000) -> str:
    text = json.dumps(mask(value), ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "...(cut)"


def paths_to(data: Any, words: tuple[str, ...], prefix: str = "") -> Iterator[str]:
    """Paths (a.b) of keys in `data` whose name contains one of `words`, for advice."""
    if isinstance(data, Mapping):
        for key, item in data.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if any(word in str(key).lower() for word in words) and not isinstance(
                item, Mapping | list
            ):
                yield path
            yield from paths_to(item, words, path)


@dataclass(frozen=True)
class Finding:
    assumption: str
    held: bool | None  # None: not checked (an earlier step failed, or nothing to compare)
    seen: str = ""
    advice: str = ""

    @property
    def verdict(self) -> str:
        return NOT_CHECKED if self.held is None else HELD if self.held else NOT_HELD


@dataclass
class Report:
    """Findings in order, and the settings that would make our reading match what was seen."""

    contract: OdengiContract
    out: Callable[[str], None]
    findings: list[Finding] = field(default_factory=list)
    codes: dict[str, str] = field(default_factory=dict)  # status code -> reading, as seen
    paths: dict[str, str] = field(default_factory=dict)  # name -> path, as seen
    settings: dict[str, str] = field(default_factory=dict)  # other variables to set

    def add(self, assumption: str, held: bool | None, seen: str = "", advice: str = "") -> bool:
        finding = Finding(assumption, held, seen, advice)
        self.findings.append(finding)
        self.out(f"   [{finding.verdict}] {assumption}" + (f": {seen}" if seen else ""))
        if advice:
            self.out(f"      -> {advice}")
        return bool(held)

    def status_code(self, raw: object, reading: str) -> None:
        key = status_key(raw)
        if key and self.contract.status_codes.get(key) != reading:
            self.codes[key] = reading

    @property
    def failed(self) -> bool:
        return any(finding.held is False for finding in self.findings)

    def suggested(self) -> dict[str, str]:
        """Environment values to set, in full (ODENGI_STATUS_CODES replaces the table)."""
        values = dict(self.settings)
        if self.codes:
            table = {**self.contract.status_codes, **self.codes}
            values["ODENGI_STATUS_CODES"] = json.dumps(table, separators=(",", ":"))
        changed = {
            name: path
            for name, path in self.paths.items()
            if self.contract.status_paths.get(name, DEFAULT_STATUS_PATHS.get(name)) != path
        }
        if changed:
            values["ODENGI_STATUS_PATHS"] = json.dumps(changed, separators=(",", ":"))
        return values

    def summary(self) -> None:
        self.out("")
        self.out("== Summary")
        for finding in self.findings:
            self.out(f"{finding.verdict:>13}  {finding.assumption}")
        self.out("")
        values = self.suggested()
        if not values:
            self.out("== Configuration: nothing to change, our reading held where it was checked.")
            return
        self.out("== Configuration to set (then run this check again):")
        for name, value in values.items():
            self.out(f"{name}='{value}'")
        if self.codes and "paid" not in self.codes.values():
            self.out(
                "The code of a paid invoice shows only in a real payment: run the check with "
                "--webhook-url and pay its invoice with a test card, then fix the table."
            )
