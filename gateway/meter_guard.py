"""The energy-limit watch counts only meter steps that can have happened.

A glitch sample must neither stop a session early (a jump to a gigawatt-hour) nor let one pass
its limit (a register that resets and counts up from 0 again). Each new reading is judged by
the same rule settlement uses (domain.meter_readings.step_plausible):

1. a rise from the last trusted reading that the connector could deliver counts;
2. else a plausible rise from the previous reading (which was not trusted) counts from there:
   the meter reset, or jumped and stayed, and counts on from its new level;
3. anything else (a jump, a fall) is ignored until the readings after it show which it was.

The count is live only: settlement checks the stored readings again with the connector's own
maximum power.
"""

from __future__ import annotations

from datetime import datetime

from domain.meter_readings import MeterPoint, step_plausible
from gateway.transactions import RunningTx


def count_reading(tx: RunningTx, register_wh: int, measured_at: datetime) -> bool:
    """Add the reading's plausible energy to `tx.counted_wh`; False when it was ignored."""
    reading = MeterPoint(measured_at, register_wh)
    trusted = tx.trusted_reading
    previous, tx.previous_reading = tx.previous_reading, reading
    if trusted is None:
        if tx.started_at is None:
            # The start's time is unknown (stored without the database): only the direction
            # can be judged, as before the check.
            trusted = MeterPoint(measured_at, tx.meter_start_wh)
        else:
            trusted = MeterPoint(tx.started_at, tx.meter_start_wh)
    if register_wh >= trusted.register_wh and step_plausible(tx.max_power_w, trusted, reading):
        tx.counted_wh += register_wh - trusted.register_wh
        tx.trusted_reading = reading
        return True
    if (
        previous is not None
        and previous != trusted
        and register_wh >= previous.register_wh
        and step_plausible(tx.max_power_w, previous, reading)
    ):
        tx.counted_wh += register_wh - previous.register_wh
        tx.trusted_reading = reading
        return True
    tx.trusted_reading = trusted
    return False
