"""BalanceAdjustment: an admin's manual change of a client's available balance (a goodwill
credit, a correction), as a short workflow with its own timeline. One ledger movement between
the `adjustments` system account and the client's `available`, with the op_key from the
request's Idempotency-Key, so a retried request can never move money twice. A debit the
balance cannot cover is refused by the ledger (client balances never go negative): nothing
moves, the workflow reports why.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.ledger import LedgerMovement, LedgerResult
    from domain.contracts.adjustments import WORKFLOW_NAME, AdjustmentRequest, AdjustmentResult
    from domain.errors import InsufficientFunds, OpKeyConflict
    from domain.ledger import Operation
    from workflows.database_steps import database_activity

# The ledger's final answers (ApplicationError type: the domain error's class name).
REFUSALS = {
    InsufficientFunds.__name__: InsufficientFunds.code,
    OpKeyConflict.__name__: OpKeyConflict.code,
}


@workflow.defn(name=WORKFLOW_NAME)
class BalanceAdjustmentWorkflow:
    @workflow.run
    async def run(self, request: AdjustmentRequest) -> AdjustmentResult:
        workflow.set_current_details(
            f"**{request.amount_tyiyn:+} tyiyn** to {request.client_id} by {request.operator}: "
            f"{request.reason}"[:1000]
        )
        operation = Operation.ADJUST_CREDIT if request.amount_tyiyn > 0 else Operation.ADJUST_DEBIT
        try:
            moved = await database_activity(
                operation.value,
                LedgerMovement(request.op_key, request.client_id, abs(request.amount_tyiyn)),
                f"{operation.value} {abs(request.amount_tyiyn)} tyiyn",
                LedgerResult,
            )
        except ActivityError as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError) and cause.type in REFUSALS:
                return AdjustmentResult(
                    request.client_id,
                    request.amount_tyiyn,
                    request.op_key,
                    "refused",
                    code=REFUSALS[cause.type],
                    message=cause.message,
                )
            raise
        return AdjustmentResult(
            request.client_id,
            request.amount_tyiyn,
            request.op_key,
            "applied",
            entry_id=moved.entry_id,
            replayed=moved.replayed,
        )
