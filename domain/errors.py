"""Domain errors. They carry a stable machine code; `api/` maps them to HTTP statuses."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every rule violation the product reports to a caller."""

    code = "domain_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidAmount(DomainError):
    code = "invalid_amount"


class InvalidInput(DomainError):
    """Data that can never be stored or processed (an activity's permanent failure)."""

    code = "invalid_input"


class InsufficientFunds(DomainError):
    code = "insufficient_funds"


class OpKeyConflict(DomainError):
    """The same op_key was reused for a different movement."""

    code = "op_key_conflict"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"
