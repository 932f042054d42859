"""Review: an admin's decision on a session or top-up in `needs_review`, as a short workflow with
its own timeline (who, why, what moved). Its id names the item (`review:{kind}:{id}`), so a
double click joins the running one; its money movement has the op_key
`review:{kind}:{id}:{decision}`, so even a later run can never pay twice.

plan (read the item, refuse what may not be done) -> the ledger movement, if any -> record the
resolution (the item leaves `needs_review`).
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.ledger import LedgerMovement, LedgerResult
    from activities.review import PLAN_REVIEW, RECORD_REVIEW, ReviewPlan, ReviewRecord
    from domain.contracts.review import WORKFLOW_NAME, ReviewRequest, ReviewResult
    from domain.errors import InsufficientFunds
    from domain.review import LedgerRefused
    from workflows.database_steps import database_activity


def _refused(request: ReviewRequest, code: str | None, message: str) -> ReviewResult:
    """The answer to a decision that moved nothing and recorded nothing."""
    return ReviewResult(
        request.kind,
        request.item_id,
        request.decision,
        "refused",
        operator=request.operator,
        reason=request.reason,
        code=code,
        message=message,
    )


@workflow.defn(name=WORKFLOW_NAME)
class ReviewWorkflow:
    @workflow.run
    async def run(self, request: ReviewRequest) -> ReviewResult:
        amount = "" if request.amount_tyiyn is None else f" {request.amount_tyiyn} tyiyn"
        workflow.set_current_details(
            f"**{request.decision}{amount}** on {request.kind} {request.item_id} "
            f"by {request.operator}: {request.reason}"[:1000]
        )
        plan = await database_activity(
            PLAN_REVIEW, request, f"check {request.kind} {request.item_id}", ReviewPlan
        )
        if plan.outcome == "done" and plan.previous is not None:
            return plan.previous
        if plan.outcome == "refused":
            return _refused(request, plan.code, plan.message)
        entry_id = None
        if plan.operation is not None and plan.op_key is not None:
            try:
                moved = await self._move(request, plan, plan.operation, plan.op_key)
            except ActivityError as exc:
                cause = exc.cause
                if not (
                    isinstance(cause, ApplicationError) and cause.type == InsufficientFunds.__name__
                ):
                    raise
                # The client's accounts no longer allow it (a release of a reservation a
                # manual change already took): nothing moved, nothing is recorded.
                return _refused(request, LedgerRefused.code, cause.message)
            entry_id = moved.entry_id
        # A decision whose money moved must be recorded: database_activity retries until it is.
        record = ReviewRecord(
            request,
            plan.client_id,
            plan.amount_tyiyn,
            entry_id,
            plan.op_key,
            workflow.info().workflow_id,
        )
        return await database_activity(RECORD_REVIEW, record, "record the resolution", ReviewResult)

    async def _move(
        self, request: ReviewRequest, plan: ReviewPlan, operation: str, op_key: str
    ) -> LedgerResult:
        movement = LedgerMovement(
            op_key,
            plan.client_id,
            plan.amount_tyiyn,
            reference=request.item_id,
            provider=plan.provider,
        )
        return await database_activity(
            operation, movement, f"{operation} {plan.amount_tyiyn} tyiyn", LedgerResult
        )
