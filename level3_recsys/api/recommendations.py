"""``GET /recommendations/{user_id}`` and ``POST /recommendations/session``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi import Path as PathParam

import level3_recsys.api.ids  # noqa: F401  (registers the ``{name:id}`` path convertor)
from level3_recsys.api.dependencies import ReadyService, client_key
from level3_recsys.api.errors import errors
from level3_recsys.schemas import MAX_ID, RecommendationResponse, SessionRequest

router = APIRouter(prefix="/recommendations", tags=["recommendations"])


# ``{user_id:id}`` only matches digits, so ``GET /recommendations/session`` reaches the session
# route (405, Allow: POST) instead of being read as a user id.
@router.post(
    "/session", response_model=RecommendationResponse, responses=errors(400, 413, 422, 503)
)
def recommend_session(
    body: SessionRequest, service: ReadyService, request: Request
) -> RecommendationResponse:
    """A list for an anonymous session from its recent items."""
    max_k = service.settings.serve.max_k
    if body.k > max_k:
        raise HTTPException(422, f"k must be <= {max_k}")
    return service.recommend_session(body.item_ids, body.k, client_key(request))


# The OpenAPI link tells a stateful client (schemathesis's stateful phase) how to send feedback
# on a list it was served: the response's impression id and one of its items.
FEEDBACK_LINK = {
    "links": {
        "ClickFirstItem": {
            "operationId": "post_feedback",
            "requestBody": {
                "impression_id": "$response.body#/impression_id",
                "clicks": ["$response.body#/items/0/item_id"],
            },
        }
    }
}


@router.get(
    "/{user_id:id}",
    response_model=RecommendationResponse,
    responses={200: FEEDBACK_LINK, **errors(404, 422, 503)},
)
def recommend_user(
    user_id: Annotated[int, PathParam(ge=0, le=MAX_ID)],
    service: ReadyService,
    request: Request,
    k: Annotated[int, Query(ge=1, le=100)] = 10,
) -> RecommendationResponse:
    """A known user's list (precomputed or live), or popular items for an unknown one."""
    max_k = service.settings.serve.max_k
    if k > max_k:
        raise HTTPException(422, f"k must be <= {max_k}")
    return service.recommend_user(user_id, k, client_key(request))
