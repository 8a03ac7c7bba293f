"""The API's request and response bodies (pydantic): what ``/docs`` and ``/openapi.json`` show.

Ids and ``k`` are JSON integers: ``3`` and ``3.0`` are, ``true`` and ``"3"`` are not. Every error
body is an :class:`ErrorResponse`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

MAX_ID = 2**31 - 1
Source = Literal["precomputed", "live", "fallback", "cold_start", "session"]


def _json_integer(value: object) -> object:
    """JSON Schema's ``integer``: ``3`` and ``3.0`` are, ``true`` and ``"3"`` are not (pydantic's
    lax mode would take both, its strict mode would refuse ``3.0``)."""
    if isinstance(value, bool | str | bytes):
        raise ValueError("must be a JSON integer (not a boolean or a string)")
    return value


JsonInt = Annotated[int, BeforeValidator(_json_integer)]
ItemId = Annotated[int, Field(ge=0, le=MAX_ID), BeforeValidator(_json_integer)]


# ---- request and response models ------------------------------------------------------------
class ValidationProblem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """Every 4xx/5xx body: one line saying what is wrong (+ the field errors for a 422)."""

    detail: str
    errors: list[ValidationProblem] | None = None


class RecommendedItem(BaseModel):
    item_id: int
    title: str | None = None


class RecommendationResponse(BaseModel):
    user_id: int | None = Field(None, description="None for an anonymous session")
    items: list[RecommendedItem]
    k: int
    model_version: str = Field(description="version of the model that ranked the list")
    impression_id: str = Field(description="send clicks on these items to /feedback with this id")
    source: Source
    fallback: bool = Field(description="True when the popularity fallback answered")
    fallback_reason: str | None = None
    cold_start: bool = Field(description="True when nothing was known about the requester")


class SessionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item_ids: list[ItemId] = Field(
        ..., max_length=200, description="the session's recent item ids, oldest first"
    )
    k: JsonInt = Field(10, ge=1, le=100)


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    impression_id: str = Field(
        ..., min_length=1, max_length=64, description="from the recommendation response"
    )
    clicks: list[ItemId] = Field(
        ..., min_length=1, max_length=100, description="clicked items, all from that impression"
    )


class FeedbackResponse(BaseModel):
    impression_id: str
    model_version: str = Field(description="the version that served the impression")
    accepted: int = Field(description="clicks newly recorded")
    duplicates: int = Field(description="clicks already recorded for this impression (ignored)")
    impressions: int = Field(description="items shown by this version so far")
    clicks: int = Field(description="clicks on them so far")
    ctr: float = Field(ge=0.0, le=1.0)


class HealthResponse(BaseModel):
    status: str


class ReadyResponse(BaseModel):
    ready: bool
    reason: str | None = Field(None, description="why not ready")
    champion_version: str | None
    store: str
    breakers: dict[str, str]


class ModelInfo(BaseModel):
    name: str
    version: str
    alias: str = Field(description="the registry alias the bundle was exported under")
    half_life: float
    items: int


class ModelsResponse(BaseModel):
    champion: ModelInfo
    challenger: ModelInfo | None
    serving: Literal["champion", "challenger"] = Field(description="whose lists users see")
    served_version: str
    users: int
    store_backend: str
    shadow: bool
    ctr_by_version: dict[str, float]
    impressions_by_version: dict[str, int]
    shadow_mean_overlap: float | None


class UsersResponse(BaseModel):
    users: list[int]
    total: int


class HistoryResponse(BaseModel):
    user_id: int
    known: bool
    items: list[RecommendedItem] = Field(description="latest first")


class SwitchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    serve: Literal["champion", "challenger"] = Field(
        description="which registry alias's model users see from now on"
    )


class AdminResponse(BaseModel):
    champion_version: str
    challenger_version: str | None
    serving: Literal["champion", "challenger"]
    served_version: str
    changed: bool
    detail: str


class FeaturesResponse(BaseModel):
    features: dict[str, list[float]]
    psi: dict[str, float]
