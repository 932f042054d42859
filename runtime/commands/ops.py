"""`evpower ops ...`: the operations API for an operator at a terminal. Every subcommand is one
HTTP request to /api/v1/ops/ (so it is authorized and audited exactly as the API is), with the
token from EVPOWER_OPS_TOKEN and the URL from --url or EVPOWER_OPS_URL. Lists print as tables,
single answers as JSON; --json prints any answer as the API sent it."""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from runtime.ops_client import OpsClient, OpsError, parse_fields, print_json, print_table

TOKEN_ENV = "EVPOWER_OPS_TOKEN"  # noqa: S105 - the variable's name, not a token
URL_ENV = "EVPOWER_OPS_URL"
DEFAULT_URL = "http://127.0.0.1:9210"
EXIT_USAGE = 2

Handler = Callable[[OpsClient, argparse.Namespace], None]


def _say(text: str, *, err: bool = False) -> None:
    (sys.stderr if err else sys.stdout).write(text + "\n")


def _segment(value: str) -> str:
    """A path segment as typed (an id with `/` or `?` stays one segment)."""
    return quote(value, safe="")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "ops",
        help="operations API from the terminal (token: EVPOWER_OPS_TOKEN)",
        description="Calls /api/v1/ops/ over HTTP with the operator token in EVPOWER_OPS_TOKEN.",
    )
    parser.add_argument(
        "--url", default=None, help=f"the API's base URL (default ${URL_ENV} or {DEFAULT_URL})"
    )
    parser.add_argument("--json", action="store_true", help="print the API's JSON answer")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
    actions = parser.add_subparsers(dest="ops_action", required=True, metavar="ACTION")

    _add(actions, "me", "who the token is", _me)

    stations = _add(actions, "stations", "the fleet: online/offline, connectors", _stations)
    stations.add_argument("--location", help="a location id")
    stations.add_argument("--status", choices=("online", "offline"))
    stations.add_argument("--offline-for-min", type=int, help="offline for more than N minutes")

    command = _add(actions, "command", "send an OCPP command to a charger", _command)
    command.add_argument("station_id")
    command.add_argument(
        "command",
        help="reset, unlock_connector, change_availability, get_configuration, "
        "change_configuration, trigger_message, clear_cache, data_transfer",
    )
    command.add_argument(
        "--field",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an OCPP field in snake case (repeatable); JSON values are parsed: connector_id=1, "
        "key='[\"HeartbeatInterval\"]', value='\"300\"' for a string of digits",
    )
    command.add_argument("--reason", required=True)
    command.add_argument("--force", action="store_true", help="change_availability: force")
    command.add_argument("--idempotency-key", help="retry a command with the same key")

    status = _add(actions, "command-status", "a command still running", _command_status)
    status.add_argument("workflow_id")
    _register_fleet_changes(actions)
    _register_money(actions)


def _register_fleet_changes(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Locations and stations: each change is a StationChange workflow behind the API."""
    location = actions.add_parser("location", help="add or change a location")
    location_actions = location.add_subparsers(
        dest="location_action", required=True, metavar="ACTION"
    )
    _change(location_actions, "add", "a new location (fields: id, name, address, city, "
            "latitude, longitude)", "POST", "/locations")  # fmt: skip
    _change(location_actions, "update", "change or disable a location (enabled=false)",
            "PATCH", "/locations/{target}", target="location_id")  # fmt: skip

    station = actions.add_parser("station", help="add or change a station")
    station_actions = station.add_subparsers(dest="station_action", required=True, metavar="ACTION")
    _change(station_actions, "add", "register a station (fields: id, connectors, "
            "price_tyiyn_per_kwh, name, location_id, current_type, max_power_w, "
            "authorization_key); the answer shows its key once", "POST", "/stations")  # fmt: skip
    _change(station_actions, "update", "change or disable a station (enabled=false)",
            "PATCH", "/stations/{target}", target="station_id")  # fmt: skip
    price = _change(station_actions, "price", "a connector's own price "
                    "(price_tyiyn_per_kwh=N, or null for the station's)", "PATCH",
                    "/stations/{target}/connectors/{connector}", target="station_id")  # fmt: skip
    price.add_argument("connector", type=int)
    _change(station_actions, "rotate-key", "a new AuthorizationKey, shown once; the old one "
            "works for the grace period", "POST", "/stations/{target}/rotate-key",
            target="station_id", fields=False)  # fmt: skip


def _change(
    actions: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help_text: str,
    method: str,
    path: str,
    *,
    target: str | None = None,
    fields: bool = True,
) -> argparse.ArgumentParser:
    """A fleet change: `--field NAME=VALUE` pairs (the API's body in snake case), a mandatory
    reason and an Idempotency-Key (printed when made up, to retry with)."""
    parser = _add(actions, name, help_text, _fleet_change)
    parser.set_defaults(change_method=method, change_path=path)
    if target is not None:
        parser.add_argument("target", metavar=target)
    if fields:
        parser.add_argument(
            "--field", action="append", default=[], metavar="NAME=VALUE",
            help="a body field (repeatable); JSON values are parsed: connectors=2, enabled=false",
        )  # fmt: skip
    parser.add_argument("--reason", required=True)
    parser.add_argument("--idempotency-key", help="default: a new one, printed")
    return parser


def _register_money(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Sessions, the review queue, adjustments, cards and reports."""
    sessions = _add(actions, "sessions", "search sessions across clients", _sessions)
    sessions.add_argument("--station")
    sessions.add_argument("--client")
    sessions.add_argument("--state")
    sessions.add_argument("--from", dest="from_")
    sessions.add_argument("--to")
    sessions.add_argument("--limit", type=int)
    sessions.add_argument("--cursor")

    stop = _add(actions, "stop", "force-stop a session (settled like a driver's stop)", _stop)
    stop.add_argument("session_id")
    stop.add_argument("--reason", required=True)

    review = actions.add_parser("review", help="the review queue")
    review_actions = review.add_subparsers(dest="review_action", required=True, metavar="ACTION")
    listing = _add(review_actions, "list", "sessions and top-ups in needs_review", _review_list)
    listing.add_argument("--kind", choices=("session", "topup"))
    resolve = _add(review_actions, "resolve", "resolve one item (admins)", _review_resolve)
    resolve.add_argument("kind", choices=("session", "topup"))
    resolve.add_argument("item_id")
    resolve.add_argument("decision", choices=("credit", "refund", "release", "close"))
    resolve.add_argument(
        "--amount-tyiyn", type=int, help="default: confirmed / whole capture / all held"
    )
    resolve.add_argument("--reason", required=True)

    adjust = _add(actions, "adjust", "credit (+) or debit (-) a client's balance (admins)", _adjust)
    adjust.add_argument("client_id")
    adjust.add_argument("amount_tyiyn", type=int, help="tyiyn; negative for a debit")
    adjust.add_argument("--reason", required=True)
    adjust.add_argument(
        "--idempotency-key", help="default: a new one, printed; pass it again to retry safely"
    )

    card = actions.add_parser("card", help="block or unblock any RFID card")
    card_actions = card.add_subparsers(dest="card_action", required=True, metavar="ACTION")
    for action in ("block", "unblock"):
        one = _add(card_actions, action, f"{action} a card by its idTag", _card)
        one.add_argument("id_tag")
        one.add_argument("--reason", required=True)

    report = actions.add_parser("report", help="reports")
    report_actions = report.add_subparsers(dest="report_action", required=True, metavar="REPORT")
    revenue = _add(report_actions, "revenue", "captured money and energy per group", _revenue)
    revenue.add_argument("--from", dest="from_", required=True, help="ISO date or datetime")
    revenue.add_argument("--to", required=True, help="ISO date or datetime (excluded)")
    revenue.add_argument("--group-by", choices=("day", "station", "location"), default="day")
    revenue.add_argument("--csv", action="store_true", help="the CSV the API makes")


def _add(
    actions: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help_text: str,
    handler: Handler,
) -> argparse.ArgumentParser:
    parser = actions.add_parser(name, help=help_text)
    parser.set_defaults(handler=_runner(handler))
    return parser


def _runner(handler: Handler) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        token = os.environ.get(TOKEN_ENV, "").strip()
        if not token:
            _say(
                f"evpower ops: {TOKEN_ENV} is not set (an operator's access token; "
                "`evpower dev` prints one)",
                err=True,
            )
            return EXIT_USAGE
        url = args.url or os.environ.get(URL_ENV) or DEFAULT_URL
        try:
            handler(OpsClient(url, token, args.timeout), args)
        except OpsError as exc:
            _say(f"evpower ops: {exc}", err=True)
            return exc.exit_code
        return 0

    return run


def _show(
    args: argparse.Namespace,
    answer: Any,
    rows: list[dict[str, Any]] | None = None,
    columns: tuple[str, ...] = (),
) -> None:
    if args.json or rows is None:
        print_json(answer)
    else:
        print_table(rows, columns)


def _me(client: OpsClient, args: argparse.Namespace) -> None:
    print_json(client.json("GET", "/me"))


def _stations(client: OpsClient, args: argparse.Namespace) -> None:
    answer = client.json(
        "GET",
        "/stations",
        params={
            "location": args.location,
            "status": args.status,
            "offline_for_min": args.offline_for_min,
        },
    )
    rows = [
        {
            **station,
            "connectors": " ".join(
                f"{c['connector_id']}:{c['status']}"
                + (f"({c['session_id']})" if c["session_id"] else "")
                for c in station["connectors"]
            ),
        }
        for station in answer["items"]
    ]
    columns = (
        "id",
        "online",
        "last_seen_at",
        "offline_for_min",
        "vendor",
        "model",
        "firmware_version",
        "connectors",
    )
    _show(args, answer, rows, columns)
    if not args.json:
        _say(f"{answer['online']} online, {answer['offline']} offline")


def _command(client: OpsClient, args: argparse.Namespace) -> None:
    body = {**parse_fields(args.field), "reason": args.reason}
    if args.force:
        body["force"] = True
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else None
    response = client.request(
        "POST",
        f"/stations/{_segment(args.station_id)}/commands/{_segment(args.command)}",
        body=body,
        headers=headers,
    )
    answer = response.json()
    if response.status_code == 202:
        _say(f"still running: evpower ops command-status {answer['workflow_id']}", err=True)
    print_json(answer)


def _fleet_change(client: OpsClient, args: argparse.Namespace) -> None:
    path = args.change_path.format(
        target=_segment(getattr(args, "target", "")), connector=getattr(args, "connector", "")
    )
    body = {**parse_fields(getattr(args, "field", [])), "reason": args.reason}
    response = client.request(
        args.change_method, path, body=body, headers={"Idempotency-Key": _key(args)}
    )
    answer = response.json()
    if response.status_code == 202:
        _say(f"still running: workflow {answer['workflow_id']}; retry with the same key", err=True)
    print_json(answer)


def _key(args: argparse.Namespace) -> str:
    """The request's Idempotency-Key: the one given, or a new one the operator can retry with."""
    if args.idempotency_key:
        return str(args.idempotency_key)
    key = uuid.uuid4().hex
    _say(f"Idempotency-Key {key} (pass --idempotency-key {key} to retry)", err=True)
    return key


def _command_status(client: OpsClient, args: argparse.Namespace) -> None:
    print_json(client.json("GET", f"/commands/{_segment(args.workflow_id)}"))


def _sessions(client: OpsClient, args: argparse.Namespace) -> None:
    answer = client.json(
        "GET",
        "/sessions",
        params={
            "station_id": args.station,
            "client_id": args.client,
            "state": args.state,
            "from": args.from_,
            "to": args.to,
            "limit": args.limit,
            "cursor": args.cursor,
        },
    )
    columns = (
        "session_id",
        "state",
        "station_id",
        "connector_id",
        "client_id",
        "energy_wh",
        "cost_tyiyn",
        "created_at",
    )
    _show(args, answer, answer["items"], columns)
    if not args.json and answer.get("next_cursor"):
        _say(f"more: --cursor {answer['next_cursor']}")


def _stop(client: OpsClient, args: argparse.Namespace) -> None:
    print_json(
        client.json(
            "POST", f"/sessions/{_segment(args.session_id)}/stop", body={"reason": args.reason}
        )
    )


def _review_list(client: OpsClient, args: argparse.Namespace) -> None:
    answer = client.json("GET", "/review", params={"kind": args.kind})
    rows = [
        {
            **item,
            "money": (
                f"captured {item['captured_tyiyn']}, held {item['held_tyiyn']}"
                if item["kind"] == "session"
                else f"asked {item['amount_tyiyn']}, confirmed {item['confirmed_tyiyn']}"
            ),
            "decisions": ",".join(item["decisions"]),
        }
        for item in answer["items"]
    ]
    columns = ("kind", "item_id", "client_id", "why", "money", "decisions", "updated_at")
    _show(args, answer, rows, columns)


def _review_resolve(client: OpsClient, args: argparse.Namespace) -> None:
    body: dict[str, Any] = {"decision": args.decision, "reason": args.reason}
    if args.amount_tyiyn is not None:
        body["amount_tyiyn"] = args.amount_tyiyn
    print_json(client.json("POST", f"/review/{args.kind}/{_segment(args.item_id)}", body=body))


def _adjust(client: OpsClient, args: argparse.Namespace) -> None:
    key = _key(args)
    print_json(
        client.json(
            "POST",
            f"/clients/{_segment(args.client_id)}/adjustments",
            body={"amount_tyiyn": args.amount_tyiyn, "reason": args.reason},
            headers={"Idempotency-Key": key},
        )
    )


def _card(client: OpsClient, args: argparse.Namespace) -> None:
    print_json(
        client.json(
            "POST",
            f"/cards/{_segment(args.id_tag)}/{args.card_action}",
            body={"reason": args.reason},
        )
    )


def _revenue(client: OpsClient, args: argparse.Namespace) -> None:
    params = {"from": args.from_, "to": args.to, "group_by": args.group_by}
    if args.csv:
        response = client.request(
            "GET", "/reports/revenue", params=params, headers={"Accept": "text/csv"}
        )
        sys.stdout.write(response.text)
        return
    answer = client.json("GET", "/reports/revenue", params=params)
    columns = (
        "key",
        "name",
        "captured_tyiyn",
        "captured_som",
        "released_tyiyn",
        "energy_wh",
        "sessions",
    )
    _show(args, answer, [*answer["rows"], {"key": "total", **answer["totals"]}], columns)
