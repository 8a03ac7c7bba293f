"""Load testing: locust headless against the service and a bare FastAPI endpoint, same run."""
