"""``POST /feedback``: clicks on the items of one served list."""

from __future__ import annotations

from fastapi import APIRouter

from level3_recsys.api.dependencies import ReadyService
from level3_recsys.api.errors import errors
from level3_recsys.schemas import FeedbackRequest, FeedbackResponse

router = APIRouter(tags=["feedback"])


@router.post(
    "/feedback",
    operation_id="post_feedback",
    response_model=FeedbackResponse,
    responses=errors(400, 404, 409, 413, 422, 503),
)
def post_feedback(body: FeedbackRequest, service: ReadyService) -> FeedbackResponse:
    """Clicks on items of one served list (its ``impression_id``); CTR of the version that
    served it."""
    return service.record_feedback(body)
