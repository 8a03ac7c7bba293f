# Level 4 fraud training image (ml-levels/fraud-train), used by the k8s Jobs: train, retrain
# (CronJob), distributed training. CPU PyTorch 2.13 + the level4 extra; several GB, so it is NOT
# built in CI (too big for the 2-core runner); build it by hand from the repository root:
#   DOCKER_BUILDKIT=0 docker build -f docker/fraud-train.Dockerfile -t ml-levels/fraud-train .
# On machines whose HTTPS is intercepted, copy the CA certificates to docker/ca-certificates/*.crt
# for the build only (trusted by pip in the build stage, never in the final image).
# BASE lets a machine without a registry build from a local image (e.g. a debootstrap import).
# Outputs (MLflow sqlite, Feast store, decisions) go to ML_ARTIFACTS_DIR: mount a volume there.
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
COPY docker/ca-certificate[s] /tmp/build/
COPY pyproject.toml /src/pyproject.toml
COPY ml_common/ /src/ml_common/
COPY level4_fraud/ /src/level4_fraud/
# torch==2.13.0+cpu (it satisfies the extra's torch==2.13.0) can only come from PyTorch's CPU
# index: if that index is unreachable the build fails instead of pulling the CUDA wheels from PyPI.
RUN set -eu; \
    if ls /tmp/build/*.crt >/dev/null 2>&1; then \
      cat /etc/ssl/certs/ca-certificates.crt /tmp/build/*.crt > /tmp/build/bundle.pem; \
      export PIP_CERT=/tmp/build/bundle.pem; \
    fi; \
    python3 -m venv /opt/venv; \
    /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
      --extra-index-url https://download.pytorch.org/whl/cpu \
      "/src[level4]" "torch==2.13.0+cpu"; \
    rm -rf /tmp/build /src

FROM ${BASE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ML_ARTIFACTS_DIR=/artifacts \
    MLFLOW_DISABLE_TELEMETRY=true \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    OMP_NUM_THREADS=1
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin app \
    && mkdir -p /app /artifacts \
    && chown app /app /artifacts
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
# The sources the venv was installed from; /app comes first on sys.path, so these run.
COPY pyproject.toml /app/pyproject.toml
COPY ml_common/ /app/ml_common/
COPY level4_fraud/ /app/level4_fraud/
USER 10001
ENTRYPOINT ["python", "-m", "level4_fraud"]
CMD ["--help"]
