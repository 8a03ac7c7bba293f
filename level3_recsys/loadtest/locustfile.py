"""Locust users for ``python -m level3_recsys loadtest`` (run by the locust CLI, headless).

The same request mix against the service and against the bare endpoint (:mod:`.bare`, which
answers the same routes without any work): 20 user lists : 2 session lists : 1 feedback. The
feedback task is what a page does: it gets a list, then clicks one of its items with the list's
``impression_id`` (a POST with a JSON body in both modes).

Environment: ``LOADTEST_RATE`` requests/s per simulated user (0: as fast as possible),
``LOADTEST_USERS_FILE`` a text file of known user ids (one per line).
"""

import os
import random

from locust import FastHttpUser, constant, constant_throughput, task

RATE = float(os.environ.get("LOADTEST_RATE", "0"))
USERS_FILE = os.environ.get("LOADTEST_USERS_FILE")
if USERS_FILE:
    with open(USERS_FILE) as handle:
        USER_IDS = [int(line) for line in handle.read().split()]
else:
    USER_IDS = list(range(1, 672))
POPULAR_ITEMS = [1, 50, 110, 260, 296, 318, 356, 480, 527, 589, 593, 1196, 1198, 2571, 2959]


class RecommendationUser(FastHttpUser):
    wait_time = constant_throughput(RATE) if RATE > 0 else constant(0)
    last_list: dict | None = None

    @task(20)
    def user_list(self) -> None:
        user_id = random.choice(USER_IDS)
        with self.client.get(
            f"/recommendations/{user_id}?k=10",
            name="/recommendations/{user_id}",
            catch_response=True,
        ) as response:
            if response.status_code == 200:
                self.last_list = response.json()
                response.success()

    @task(2)
    def session_list(self) -> None:
        items = random.sample(POPULAR_ITEMS, random.randint(1, 5))
        self.client.post("/recommendations/session", json={"item_ids": items, "k": 10})

    @task(1)
    def feedback(self) -> None:
        served = self.last_list
        if not served or not served.get("items"):
            return self.user_list()
        self.last_list = None  # one click per list: a repeat would count as a duplicate
        clicked = random.choice(served["items"])["item_id"]
        self.client.post(
            "/feedback", json={"impression_id": served["impression_id"], "clicks": [clicked]}
        )
