"""Temporal search attributes: set by workflows and their starters, registered by `evpower
migrate` and the embedded dev server, filtered on by operators in the Temporal UI."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

STATION_ID = SearchAttributeKey.for_keyword("StationId")
CLIENT_ID = SearchAttributeKey.for_keyword("ClientId")
SESSION_STATE = SearchAttributeKey.for_keyword("SessionState")

# The names a namespace must have, all Keyword, for whatever registers them.
SEARCH_ATTRIBUTES = tuple(key.name for key in (STATION_ID, CLIENT_ID, SESSION_STATE))
