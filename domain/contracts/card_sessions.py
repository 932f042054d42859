"""Card-started sessions: what the gateway hands a ChargingSession workflow it starts for an RFID
card at a charger's StartTransaction, and what the workflow answers.

The gateway starts the workflow with update-with-start: `card_transaction` is the update, its
answer the idTagInfo status the charger gets. The workflow id is `charging-{session_id}` like any
session's; the session id is derived from the charger transaction's natural key
(`domain.identifiers.card_session_id`), so a retried StartTransaction reaches the same workflow.
"""

# No `from __future__ import annotations`: the workflow sandbox resolves these dataclasses' field
# types against the module it sees, and real annotations need no lookup there.
from dataclasses import dataclass

from domain.contracts.session_signals import TransactionStarted

CARD_TRANSACTION_UPDATE = "card_transaction"


@dataclass(frozen=True)
class CardStart:
    """Part of the workflow input of a card-started session."""

    id_tag: str  # the card's tag as stored (upper case, domain/cards.py)
    transaction: TransactionStarted  # the StartTransaction the session is started for
    # The owner must have at least this much available (the gateway's Authorize rule too).
    min_balance_tyiyn: int = 0


@dataclass(frozen=True)
class CardStartAnswer:
    """The `card_transaction` update's answer: `status` is what the charger is told."""

    status: str  # session_signals.START_ACCEPTED / START_REFUSED
    session_id: str
    reserved_tyiyn: int = 0
    energy_limit_wh: int = 0  # what the reservation buys; the gateway stops the charger there
    refusal: str | None = None  # why not (a domain error's class name), for the log
