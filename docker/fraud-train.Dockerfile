# Level 4 fraud training image (ml-levels/fraud-train), used by the k8s Jobs: train, retrain
# (CronJob), distributed training (k8s/train-distributed.yaml, one GPU per pod, NCCL).
# torch comes from TORCH_SPEC, installed without PyTorch's own index:
# - default "torch==2.13.0": PyPI's Linux x86_64 wheel of it is the CUDA build (with its nvidia-*
#   wheels, several GB), which is what the GPU Job needs; build from the repository root:
#     DOCKER_BUILDKIT=0 docker build -f docker/fraud-train.Dockerfile -t ml-levels/fraud-train .
# - a CPU-only image (CI, the CronJob if no GPU is wanted): put a CPU wheel in docker/wheels/ and
#   pass --build-arg TORCH_SPEC=torch==2.13.0+cpu (tests/level4/test_docker.py builds it so, with
#   the machine's local wheel /opt/wheels/torch-2.13.0+cpu-*.whl).
# On machines whose HTTPS is intercepted, copy the CA certificates to docker/ca-certificates/*.crt
# for the build only (trusted by pip in the build stage, never in the final image).
# BASE lets a machine without a registry build from a local image (e.g. a debootstrap import).
# Outputs (MLflow sqlite, Feast store, decisions) go to ML_ARTIFACTS_DIR: mount a volume there.
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
ARG TORCH_SPEC="torch==2.13.0"
COPY docker/ca-certificate[s] /tmp/build/
COPY docker/wheel[s] /tmp/build/wheels/
COPY pyproject.toml constraints.txt /src/
COPY ml_common/ /src/ml_common/
COPY level4_fraud/ /src/level4_fraud/
# TORCH_SPEC is installed together with the level4 extra, pinned by the repository's lock
# (constraints.txt: its torch==2.13.0 accepts 2.13.0+cpu too); docker/wheels/ (optional) is
# searched beside the index.
RUN set -eu; \
    if ls /tmp/build/*.crt >/dev/null 2>&1; then \
      cat /etc/ssl/certs/ca-certificates.crt /tmp/build/*.crt > /tmp/build/bundle.pem; \
      export PIP_CERT=/tmp/build/bundle.pem; \
    fi; \
    python3 -m venv /opt/venv; \
    /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
      --find-links /tmp/build/wheels -c /src/constraints.txt "/src[level4]" "${TORCH_SPEC}"; \
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
