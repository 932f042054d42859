"""Calls an API process makes to a TopUp workflow through its Temporal client."""

from __future__ import annotations

from temporalio.client import WorkflowHandle

from domain.contracts.topups import INVOICE_UPDATE, InvoiceInfo, TopUpView
from workflows.topup import TopUpWorkflow


async def request_invoice(handle: WorkflowHandle[TopUpWorkflow, TopUpView]) -> InvoiceInfo:
    """The `invoice` update. By name, because the SDK's typing of an async update method makes
    mypy see a coroutine where the answer is."""
    invoice: InvoiceInfo = await handle.execute_update(INVOICE_UPDATE, result_type=InvoiceInfo)
    return invoice
