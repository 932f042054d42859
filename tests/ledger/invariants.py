"""Ledger invariants checked against the real database (after property runs and chaos)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


async def assert_ledger_invariants(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        total = await connection.scalar(
            text("SELECT coalesce(sum(amount_tyiyn), 0) FROM ledger_postings")
        )
        assert total == 0, f"postings sum to {total}, not 0"
        unbalanced = await connection.scalar(
            text(
                "SELECT count(*) FROM (SELECT entry_id FROM ledger_postings GROUP BY entry_id "
                "HAVING sum(amount_tyiyn) <> 0) AS t"
            )
        )
        assert unbalanced == 0, f"{unbalanced} entries do not balance"
        negative = await connection.scalar(
            text(
                "SELECT count(*) FROM ledger_accounts "
                "WHERE kind IN ('available', 'held') AND balance_tyiyn < 0"
            )
        )
        assert negative == 0
        drift = await connection.scalar(
            text(
                "SELECT count(*) FROM ledger_accounts a LEFT JOIN ("
                " SELECT account_id, sum(amount_tyiyn) AS s"
                " FROM ledger_postings GROUP BY account_id"
                ") p ON p.account_id = a.id"
                " WHERE a.kind IN ('available', 'held') AND a.balance_tyiyn <> coalesce(p.s, 0)"
            )
        )
        assert drift == 0, "a client account's balance differs from the sum of its postings"
