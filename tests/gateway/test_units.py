"""Pure parts of the gateway: charger passwords, meter readings, OCPP-J frames."""

from __future__ import annotations

import asyncio
import inspect
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from ocpp.exceptions import PropertyConstraintViolationError
from ocpp.v16 import call_result

from gateway import framing, metering
from gateway.auth import ChargerKeys, KeyCheck, legacy_hash, verify_legacy
from gateway.charge_point import ChargePoint, on
from gateway.throttle import FailureThrottle
from gateway.upgrade import basic_credentials, choose_subprotocol, station_id_from_path

KEYS = ChargerKeys(b"unit-tests-pepper-0123456789abcdef")


def test_key_hash_is_salted_and_verifies_only_the_right_key():
    first, second = KEYS.hash("s3cret-key-0001"), KEYS.hash("s3cret-key-0001")
    assert first != second  # per-station salt
    assert "s3cret" not in first
    assert KEYS.check("s3cret-key-0001", first) is KeyCheck.MATCH
    assert KEYS.check("s3cret-key-0001 ", first) is KeyCheck.MISMATCH
    assert KEYS.check("", first) is KeyCheck.MISMATCH
    other_pepper = ChargerKeys(b"another-deployment-pepper-0123456789")
    assert other_pepper.check("s3cret-key-0001", first) is KeyCheck.MISMATCH


@pytest.mark.parametrize(
    "stored", ["", "plain", "hmac-sha256$!!$!!", "hmac-sha256$abc", "bcrypt$x$y$z$a$b"]
)
def test_malformed_stored_hash_never_matches(stored):
    assert KEYS.check("anything", stored) is KeyCheck.MISMATCH


def test_legacy_scrypt_hashes_are_recognised_and_verify_off_the_hmac_path():
    stored = legacy_hash("legacy-key-000001")
    assert KEYS.check("legacy-key-000001", stored) is KeyCheck.LEGACY
    assert verify_legacy("legacy-key-000001", stored)
    assert not verify_legacy("legacy-key-000002", stored)
    assert not verify_legacy("anything", "scrypt$1$2$3$!!$!!")


def test_energy_power_and_soc_are_read_in_wh_w_and_percent():
    reading = metering.reading(
        {
            "timestamp": "2026-01-01T10:00:00+06:00",
            "sampled_value": [
                {"value": "12.3456", "unit": "kWh"},  # measurand defaults to the register
                {"value": "4000", "measurand": "Power.Active.Import", "phase": "L1"},
                {"value": "11.5", "measurand": "Power.Active.Import", "unit": "kW"},
                {"value": "80", "measurand": "SoC"},
            ],
        }
    )
    assert reading is not None
    assert (reading.energy_wh, reading.power_w, reading.soc_percent) == (12_345, 11_500, 80)
    assert reading.measured_at.utcoffset().total_seconds() == 6 * 3600


def test_unusable_samples_are_skipped_not_guessed():
    assert (
        metering.reading(
            {
                "timestamp": "2026-01-01T10:00:00Z",
                "sampled_value": [
                    {"value": "a1b2c3", "format": "SignedData"},
                    {"value": "NaN"},
                    {"value": "12", "unit": "varh"},
                    {"value": "230", "measurand": "Voltage"},
                    {"value": "150", "measurand": "SoC"},
                ],
            }
        )
        is None
    )


@pytest.mark.parametrize(
    "value",
    [
        "1e999990",  # took ~26 s of one core to become an int, freezing every charger
        "1e9999999",  # raised decimal.Overflow: an InternalError the charger retried forever
        "9e999999",
        "1" * 33,
        "0x10",
        "",
    ],
)
def test_absurd_meter_values_are_ignored_not_computed(value):
    found = metering.reading(
        {
            "timestamp": "2026-01-01T10:00:00Z",
            "sampled_value": [{"value": value, "unit": "kWh"}, {"value": "50", "measurand": "SoC"}],
        }
    )
    assert found is not None  # the rest of the meterValue is still stored
    assert (found.energy_wh, found.soc_percent) == (None, 50)


def test_per_phase_energy_registers_are_summed_when_no_total_is_sent():
    phases_only = metering.reading(
        {
            "timestamp": "2026-01-01T10:00:00Z",
            "sampled_value": [
                {"value": "1.5", "unit": "kWh", "phase": "L1"},
                {"value": "1500", "phase": "L2-N"},
                {"value": "1600", "phase": "L3"},
                {"value": "999", "phase": "L1-L2"},  # line-to-line: not a delivered share
                {"value": "900", "phase": "L1"},  # the same conductor again
            ],
        }
    )
    with_total = metering.reading(
        {
            "timestamp": "2026-01-01T10:00:00Z",
            "sampled_value": [
                {"value": "1500", "phase": "L1"},
                {"value": "4700"},
            ],
        }
    )
    assert phases_only is not None and phases_only.energy_wh == 4_600
    assert with_total is not None and with_total.energy_wh == 4_700


def test_failures_are_throttled_per_key_within_a_window():
    throttle = FailureThrottle(limit=2, window_s=60)
    throttle.record("EVP-1", now=100.0)
    assert throttle.retry_after("EVP-1", now=101.0) is None
    throttle.record("EVP-1", now=110.0)
    assert throttle.retry_after("EVP-1", now=111.0) == 49
    assert throttle.retry_after("EVP-2", now=111.0) is None
    assert throttle.retry_after("EVP-1", now=160.0) is None  # the window is over


def test_throttle_memory_is_bounded():
    throttle = FailureThrottle(limit=1, window_s=60, max_keys=3)
    for number in range(10):
        throttle.record(f"key-{number}", now=float(number))
    assert throttle.retry_after("key-9", now=9.0) is not None
    assert throttle.retry_after("key-0", now=9.0) is None  # evicted, not kept forever


class _FailsAfterDeferring(ChargePoint):
    later: Any = None

    @on("Heartbeat")
    async def on_heartbeat(self) -> call_result.Heartbeat:
        self.defer(self.later)
        raise PropertyConstraintViolationError(details={"cause": "refused after deferring"})


async def test_work_deferred_by_a_failed_call_is_closed_not_leaked():
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    ran: list[str] = []

    async def later() -> None:
        ran.append("ran")

    point = _FailsAfterDeferring(
        "EVP-1", send, registration="accepted", remote_address=None, connected_at=datetime.now(UTC)
    )
    work = later()
    point.later = work
    await point._route('[2,"m-1","Heartbeat",{}]')
    await asyncio.sleep(0)
    assert json.loads(sent[0]["text"])[:3] == [4, "m-1", "PropertyConstraintViolation"]
    assert ran == []
    # Closed: no "coroutine was never awaited" warning.
    assert inspect.getcoroutinestate(work) == inspect.CORO_CLOSED


def test_latest_energy_is_the_newest_reading_not_the_last_listed():
    readings = metering.readings(
        [
            {"timestamp": "2026-01-01T10:05:00Z", "sampled_value": [{"value": "500"}]},
            {"timestamp": "2026-01-01T10:00:00Z", "sampled_value": [{"value": "100"}]},
        ]
    )
    assert metering.latest_energy(readings) == 500


def test_frames_out_are_compact_json_with_utc_z_times():
    frame = framing.result_frame("id-1", {"currentTime": framing.utc_now_text()})
    message = json.loads(frame)
    assert message[:2] == [3, "id-1"]
    assert message[2]["currentTime"].endswith("Z")
    assert " " not in frame


def test_payload_keys_convert_both_ways():
    snake = framing.to_snake({"connectorId": 1, "meterValue": [{"sampledValue": [{}]}]})
    assert snake == {"connector_id": 1, "meter_value": [{"sampled_value": [{}]}]}
    assert framing.to_camel({"id_tag_info": {"status": "Accepted", "expiry_date": None}}) == {
        "idTagInfo": {"status": "Accepted"}
    }


@pytest.mark.parametrize(
    ("path", "station_id"),
    [
        ("/ws/EVP-001", "EVP-001"),
        ("/ocpp/CP_7", "CP_7"),
        ("/ws/", None),
        ("/ws/a/b", None),
        ("/ws/" + "x" * 65, None),
        ("/api/EVP-001", None),
        ("/ws/bad id", None),
    ],
)
def test_station_id_comes_from_the_path(path, station_id):
    assert station_id_from_path(path) == station_id


def test_subprotocol_choice():
    assert choose_subprotocol([]) == (True, None)
    assert choose_subprotocol(["ocpp2.0.1", "ocpp1.6"]) == (True, "ocpp1.6")
    assert choose_subprotocol(["ocpp2.0.1"]) == (False, None)


def test_basic_credentials_parse_strictly():
    assert basic_credentials([(b"authorization", b"Basic RVZQOnA6dw==")]) == ("EVP", "p:w")
    assert basic_credentials([(b"authorization", b"Bearer abc")]) is None
    assert basic_credentials([(b"authorization", b"Basic not base64!")]) is None
    assert basic_credentials([(b"authorization", b"Basic bm9jb2xvbg==")]) is None  # "nocolon"
    assert basic_credentials([]) is None


def test_a_hash_made_with_older_parameters_still_verifies():
    """The cost parameters travel with the hash, so lowering them breaks no stored key."""
    import base64
    import hashlib

    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(b"older-station-key-1", salt=salt, n=2**14, r=8, p=1, dklen=32)
    stored = (
        f"scrypt$16384$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    )
    assert verify_legacy("older-station-key-1", stored)
    assert not verify_legacy("older-station-key-2", stored)
