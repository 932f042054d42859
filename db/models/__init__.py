"""All tables, imported here so `Base.metadata` knows every one of them."""

from db.models.base import Base
from db.models.cards import RfidCard
from db.models.clients import Client
from db.models.idempotency import IdempotencyKey
from db.models.ledger import LedgerAccount, LedgerEntry, LedgerPosting
from db.models.operators import OperatorAudit
from db.models.payments import (
    CardCharge,
    PaymentAudit,
    ProviderTransaction,
    SimulatedInvoice,
    TopUp,
)
from db.models.review import ReviewResolution
from db.models.sessions import ChargingSessionRecord
from db.models.stations import (
    Connector,
    Location,
    MeterValue,
    OcppRemoteStart,
    OcppTransaction,
    OcppTransactionEvent,
    Station,
    StationConnection,
)

__all__ = [
    "Base",
    "CardCharge",
    "ChargingSessionRecord",
    "Client",
    "Connector",
    "IdempotencyKey",
    "LedgerAccount",
    "LedgerEntry",
    "LedgerPosting",
    "Location",
    "MeterValue",
    "OcppRemoteStart",
    "OcppTransaction",
    "OcppTransactionEvent",
    "OperatorAudit",
    "PaymentAudit",
    "ProviderTransaction",
    "ReviewResolution",
    "RfidCard",
    "SimulatedInvoice",
    "Station",
    "StationConnection",
    "TopUp",
]
