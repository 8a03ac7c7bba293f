# Level 4 fraud scoring tier: ONNX models served by onnxruntime + FastAPI, no torch in the image.
# Build from the repository root (the context needs level4_fraud/ and, on machines whose HTTPS is
# intercepted, docker/ca-certificates/*.crt copied there for the build only):
#   DOCKER_BUILDKIT=0 docker build -f docker/fraud.Dockerfile -t ml-levels/fraud-scoring .
# BASE lets a machine without a registry build from a local image (e.g. a debootstrap import).
# The models are not baked in: `python -m level4_fraud export-onnx --out DIR`, then mount DIR at
# /srv/model (read-only), e.g. docker run -p 8080:8080 -v DIR:/srv/model:ro ml-levels/fraud-scoring
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
# The extra CA certificates are trusted by pip in this stage only; the final stage never sees them.
COPY level4_fraud/requirements-serve.txt docker/ca-certificate[s] /tmp/build/
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
    FRAUD_MODEL_DIR=/srv/model \
    FRAUD_CHALLENGER_SHARE=0.1 \
    FRAUD_AB_SALT=ab-1 \
    OMP_NUM_THREADS=1
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin app \
    && mkdir -p /app/level4_fraud/serving /srv/model \
    && chown app /app
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
# Only the modules the scoring tier imports (no torch, no training code).
COPY level4_fraud/__init__.py /app/level4_fraud/
COPY level4_fraud/serving/__init__.py level4_fraud/serving/errors.py level4_fraud/serving/traffic.py level4_fraud/serving/onnx_service.py /app/level4_fraud/serving/
# The shared body-size limit, with ml_common's package start-up (standard library only).
COPY ml_common/__init__.py ml_common/threads.py ml_common/tool_defaults.py ml_common/paths.py ml_common/body_limit.py /app/ml_common/
USER 10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python3", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=2).status == 200 else 1)"]
CMD ["uvicorn", "--factory", "level4_fraud.serving.onnx_service:app_from_env", "--host", "0.0.0.0", "--port", "8080", "--no-access-log"]
