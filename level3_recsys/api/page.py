"""``GET /``: the try-it page (plain HTML + JS shipped in the package; no build step, no CDN)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

WEB_DIR = Path(__file__).parent.parent / "web"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    """The try-it page (plain HTML + JS shipped in the package; no build step, no CDN)."""
    return FileResponse(WEB_DIR / "index.html", media_type="text/html")
