"""The baseline: bare FastAPI JSON endpoints (no model, no store, no metrics) on the same routes.

The recommender's throughput is reported as a ratio to this app's, measured in the same run on
the same machine with the same request mix (GET lists, POST sessions, POST feedback with JSON
bodies parsed by pydantic), so the number says what the service's own work costs, not how fast
the machine is.
"""

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI(title="bare JSON endpoints")
ITEMS = [{"item_id": i, "title": None} for i in range(10)]


class Session(BaseModel):
    item_ids: list[int]
    k: int = 10


class Feedback(BaseModel):
    impression_id: str
    clicks: list[int]


@app.get("/recommendations/{user_id}")
async def recommend(user_id: int, k: int = 10) -> dict:
    return {"user_id": user_id, "items": ITEMS, "impression_id": "bare", "model_version": "0"}


@app.post("/recommendations/session")
async def session(body: Session) -> dict:
    return {"user_id": None, "items": ITEMS, "impression_id": "bare", "model_version": "0"}


@app.post("/feedback")
async def feedback(body: Feedback) -> dict:
    return {"impression_id": body.impression_id, "accepted": len(body.clicks)}


@app.get("/health")
async def health() -> dict:
    return {"status": "ok"}
