"""Locust users for ``python -m level3_recsys loadtest`` (run by the locust CLI, headless).

Environment: ``LOADTEST_RATE`` requests/s per simulated user (0: as fast as possible),
``LOADTEST_MODE`` ``service`` (a realistic mix) or ``bare`` (only the GET both apps have),
``LOADTEST_USERS_FILE`` a text file of known user ids (one per line).
"""

import os
import random

from locust import FastHttpUser, constant, constant_throughput, task

RATE = float(os.environ.get("LOADTEST_RATE", "0"))
MODE = os.environ.get("LOADTEST_MODE", "service")
USERS_FILE = os.environ.get("LOADTEST_USERS_FILE")
if USERS_FILE:
    with open(USERS_FILE) as handle:
        USER_IDS = [int(line) for line in handle.read().split()]
else:
    USER_IDS = list(range(1, 672))
POPULAR_ITEMS = [1, 50, 110, 260, 296, 318, 356, 480, 527, 589, 593, 1196, 1198, 2571, 2959]


class RecommendationUser(FastHttpUser):
    wait_time = constant_throughput(RATE) if RATE > 0 else constant(0)

    @task(20)
    def user_list(self) -> None:
        user_id = random.choice(USER_IDS)
        self.client.get(f"/recommendations/{user_id}?k=10", name="/recommendations/{user_id}")

    @task(2)
    def session_list(self) -> None:
        if MODE == "bare":
            return self.user_list()
        items = random.sample(POPULAR_ITEMS, random.randint(1, 5))
        self.client.post("/recommendations/session", json={"item_ids": items, "k": 10})

    @task(1)
    def feedback(self) -> None:
        if MODE == "bare":
            return self.user_list()
        shown = random.sample(POPULAR_ITEMS, 10)
        clicked = shown[:1] if random.random() < 0.2 else []
        self.client.post(
            "/feedback", json={"model_version": "1", "impressions": shown, "clicks": clicked}
        )
