"""``GET /users`` and ``GET /users/{user_id}/history``: what the try-it page shows."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi import Path as PathParam

import level3_recsys.api.ids  # noqa: F401  (registers the ``{name:id}`` path convertor)
from level3_recsys.api.dependencies import ReadyService
from level3_recsys.api.errors import errors
from level3_recsys.schemas import MAX_ID, HistoryResponse, RecommendedItem, UsersResponse

router = APIRouter(prefix="/users", tags=["users"])


@router.get("", response_model=UsersResponse, responses=errors(422, 503))
def list_users(
    service: ReadyService, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> UsersResponse:
    """The first ``limit`` known user ids (for the try-it page's picker)."""
    ids = service.histories.user_ids
    return UsersResponse(users=[int(u) for u in ids[:limit]], total=len(ids))


@router.get(
    "/{user_id:id}/history", response_model=HistoryResponse, responses=errors(404, 422, 503)
)
def user_history(
    user_id: Annotated[int, PathParam(ge=0, le=MAX_ID)],
    service: ReadyService,
    n: Annotated[int, Query(ge=1, le=50)] = 10,
) -> HistoryResponse:
    """A user's latest training items with titles (empty for an unknown user)."""
    model = service.served
    history = service.histories.get(user_id)
    titles = model.titles or {}
    ids = [] if history is None else model.to_ids(history[:n])
    return HistoryResponse(
        user_id=user_id,
        known=history is not None,
        items=[RecommendedItem(item_id=i, title=titles.get(i)) for i in ids],
    )
