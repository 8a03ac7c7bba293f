# Level 3 recommender API. Build from the repository root:
#   DOCKER_BUILDKIT=0 docker build -f docker/recsys.Dockerfile -t ml-levels/recsys .
# BASE lets a machine without a registry build from a local image (e.g. a debootstrap import).
# The model bundle is not baked in: mount it at /srv/bundle (see level3_recsys/deploy.py).
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
# Extra CA certificates (docker/ca-certificates/*.crt, present only during a local build) are
# trusted by pip in this stage only; the final stage never sees them.
COPY level3_recsys/requirements-serve.txt docker/ca-certificate[s] /tmp/build/
RUN set -eu; \
    if ls /tmp/build/*.crt >/dev/null 2>&1; then \
      cat /etc/ssl/certs/ca-certificates.crt /tmp/build/*.crt > /tmp/build/bundle.pem; \
      export PIP_CERT=/tmp/build/bundle.pem; \
    fi; \
    python3 -m venv /opt/venv; \
    /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
      -r /tmp/build/requirements-serve.txt; \
    rm -rf /tmp/build

FROM ${BASE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OPENBLAS_NUM_THREADS=1 \
    LEVEL3_SERVE__BUNDLE_DIR=/srv/bundle \
    LEVEL3_SERVE__HOST=0.0.0.0 \
    ML_ARTIFACTS_DIR=/tmp/artifacts
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin app \
    && mkdir -p /app /srv/bundle \
    && chown app /app
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY ml_common/ /app/ml_common/
COPY level3_recsys/ /app/level3_recsys/
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python3", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2).status == 200 else 1)"]
CMD ["uvicorn", "--factory", "level3_recsys.serve:app_from_env", "--host", "0.0.0.0", "--port", "8000", "--no-access-log"]
