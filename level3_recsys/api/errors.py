"""Error bodies: the OpenAPI ``responses`` of each route and the 422 handler (one readable line
plus the field errors, never the client's input echoed back)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from level3_recsys.schemas import ErrorResponse, ValidationProblem


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for error statuses, all with the :class:`ErrorResponse` body."""
    what = {
        400: "the body is not decodable (not UTF-8)",
        401: "missing or wrong admin token",
        404: "not found (unknown impression, or a path segment that is no id)",
        405: "method not allowed",
        409: "conflicts with the service's state",
        413: "request body too large",
        422: "invalid request",
        503: "not ready: no model loaded",
    }
    return {code: {"model": ErrorResponse, "description": what[code]} for code in codes}


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with one readable line plus the field errors (the :class:`ErrorResponse` shape)."""
    problems = [
        ValidationProblem(
            loc=[p if isinstance(p, int) else str(p) for p in err.get("loc", ())],
            msg=str(err.get("msg")),
            type=str(err.get("type")),
        )
        for err in exc.errors()
    ]
    line = "; ".join(f"{'.'.join(str(p) for p in e.loc)}: {e.msg}" for e in problems)
    body = ErrorResponse(detail=f"invalid request: {line}", errors=problems)
    return JSONResponse(status_code=422, content=body.model_dump())
