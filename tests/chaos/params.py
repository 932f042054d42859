"""The size of a chaos run: the CI suite runs a short one, benchmarks/chaos.py a soak."""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.chaos.proxy import PaymentFaults


@dataclass
class ChaosParams:
    seed: int
    sessions: int = 30  # sessions the API accepted (201)
    topups: int = 10  # paid top-ups; the expiring ones come on top
    # Never paid (they expire) and paid after expiry; each takes the invoice life (5 min).
    expiring_topups: int = 1
    paid_after_expiry: int = 1
    stations: int = 8
    clients: int = 12
    gateways: int = 2
    apis: int = 1
    workers: int = 1
    # Seconds between two infrastructure faults (uniform in the range).
    fault_gap_s: tuple[float, float] = (6.0, 14.0)
    temporal_down_s: tuple[float, float] = (5.0, 20.0)
    postgres_down_s: tuple[float, float] = (5.0, 15.0)
    role_down_s: tuple[float, float] = (0.0, 3.0)
    # Spread of the top-ups over the run (each waits this long before it starts).
    topup_spread_s: float = 120.0
    payment_faults: PaymentFaults = field(default_factory=PaymentFaults)
    # Safety nets, not timing assertions: how long a session or top-up may take to be final
    # after the last fault (the invoice life bounds the expiring top-ups).
    settle_timeout_s: float = 600.0

    @classmethod
    def short(cls, seed: int) -> ChaosParams:
        return cls(seed=seed)

    @classmethod
    def soak(cls, seed: int) -> ChaosParams:
        return cls(
            seed=seed,
            sessions=300,
            topups=100,
            expiring_topups=3,
            paid_after_expiry=3,
            stations=24,
            clients=20,
            fault_gap_s=(10.0, 30.0),
            temporal_down_s=(5.0, 90.0),
            postgres_down_s=(5.0, 30.0),
            topup_spread_s=600.0,
            settle_timeout_s=1200.0,
        )
