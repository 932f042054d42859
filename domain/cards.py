"""RFID cards: how an idTag printed on a card becomes the one EvPower stores and matches.

OCPP 1.6 idTags are CiString20Type (compared without regard to case), and readers differ in
how they send a UID: some upper-case, some lower-case. A card's tag is therefore kept in one
form, upper case without spaces, and a tag a charger presents is upper-cased before it is
looked up among cards.

Session ids, which RemoteStart hands to chargers as idTags, are lower-case base32
(`domain.identifiers.new_id`). A stored card tag is upper case, so the two never
compare equal byte for byte, and Authorize checks a RemoteStart's exact tag before any card:
on the charger a session was started at, its own tag is always the session's. (Only a session
id made of digits alone would equal its upper-case form: 16 characters from the six digits
2-7 of the base32 alphabet, a chance of about 2e-12 per session, and even then the
RemoteStart wins.)
"""

from __future__ import annotations

from domain.errors import Conflict, NotFound
from domain.identifiers import ID_TAG

LABEL_MAX_LENGTH = 64


def normalise_id_tag(printed: str) -> str | None:
    """The stored form of a card's idTag (upper case, spaces that group the digits removed),
    or None when it cannot be an OCPP idTag (empty, too long, not printable ASCII)."""
    tag = "".join(printed.split()).upper()
    return tag if ID_TAG.matches(tag) else None


def card_lookup_tag(presented: str) -> str:
    """The form a tag presented by a charger is matched against cards in."""
    return presented.upper()


class CardNotUsable(NotFound):
    """The tag is no active card of the session's owner (unknown, blocked, or re-linked)."""

    code = "card_not_usable"


class CardInUse(Conflict):
    """The card is already in a live session (another charger presented it first)."""

    code = "card_in_use"
