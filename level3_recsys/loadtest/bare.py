"""The baseline: a bare FastAPI JSON endpoint (no model, no store, no metrics).

The recommender's throughput is reported as a ratio to this app's, measured in the same run on
the same machine, so the number says what the service's own work costs, not how fast the
machine is.
"""

from fastapi import FastAPI

app = FastAPI(title="bare JSON endpoint")
PAYLOAD = {"user_id": 1, "items": [{"item_id": i, "title": None} for i in range(10)]}


@app.get("/recommendations/{user_id}")
async def recommend(user_id: int, k: int = 10) -> dict:
    return {**PAYLOAD, "user_id": user_id}


@app.get("/health")
async def health() -> dict:
    return {"status": "ok"}
