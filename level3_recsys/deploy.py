"""Stage 8 — deploy: ``make level3`` end to end, ``make level3-down`` to stop.

1. Train and register the models if the registry has no ``champion`` yet.
2. Run the nightly batch flow once (export by alias → precompute → store).
3. With a Docker engine: build ``docker/recsys.Dockerfile`` (legacy builder; ``DOCKER_BASE_IMAGE``
   as ``BASE`` when set; the machine's extra CA certificates copied into the build context only
   for the build, then deleted) and run it with the serving bundle mounted read-only.
   Without one: say so and run the same app with uvicorn in the background (pid file).
4. Wait for ``/health`` and print the URLs (the try-it page first).

The admin token: the service refuses the public default from ``config.yaml``. Unless
``LEVEL3_SERVE__ADMIN_TOKEN`` is set, ``deploy`` writes a random one to
``artifacts/level3/admin_token`` (git-ignored, mode 600) once and passes it to the service; the
commands that call the admin API (``promote``, ``drift``, ``bench``) read it from there.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from level3_recsys.settings import Level3Settings
from ml_common.logs import get_logger
from ml_common.paths import PROJECT_ROOT, level_dir
from ml_common.services import docker_available, wait_healthy

log = get_logger(__name__)
DOCKERFILE = PROJECT_ROOT / "docker" / "recsys.Dockerfile"
CA_SOURCE = Path("/usr/local/share/ca-certificates")
CA_CONTEXT = PROJECT_ROOT / "docker" / "ca-certificates"
CONTAINER_PORT = 8000
SERVICE_APP = "level3_recsys.serve:app_from_env"  # uvicorn --factory target (config + env)


def build_image(tag: str, base: str | None = None) -> None:
    """``docker build`` the serving image; CA certificates live in the context only meanwhile."""
    base = base or os.environ.get("DOCKER_BASE_IMAGE")
    CA_CONTEXT.mkdir(parents=True, exist_ok=True)
    copied = []
    try:
        for cert in CA_SOURCE.glob("*.crt") if CA_SOURCE.is_dir() else []:
            shutil.copy(cert, CA_CONTEXT / cert.name)
            copied.append(CA_CONTEXT / cert.name)
        command = ["docker", "build", "-f", str(DOCKERFILE), "-t", tag]
        if base:
            command += ["--build-arg", f"BASE={base}"]
        command.append(str(PROJECT_ROOT))
        log.info("building %s%s", tag, f" from {base}" if base else "")
        env = {**os.environ, "DOCKER_BUILDKIT": "0"}
        subprocess.run(command, check=True, env=env)
    finally:
        for path in copied:
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            CA_CONTEXT.rmdir()


def admin_token_file() -> Path:
    """Where ``make level3`` keeps the deployed service's admin token (git-ignored)."""
    return level_dir(3) / "admin_token"


def deployed_admin_token(settings: Level3Settings, create: bool = False) -> str:
    """The configured token when it is not the public default, else the token file's
    (written with a random token first when ``create``)."""
    from level3_recsys.settings import DEFAULT_ADMIN_TOKEN

    token = settings.serve.admin_token
    if token and token != DEFAULT_ADMIN_TOKEN:
        return token
    path = admin_token_file()
    if path.is_file():
        return path.read_text().strip()
    if not create:
        return token
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()


def reload_deployed(settings: Level3Settings) -> bool:
    """Ask a running ``make level3`` service to load the new bundle (admin token)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{settings.deploy.port}/admin/reload",
        method="POST",
        headers={"X-Admin-Token": deployed_admin_token(settings)},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (local)
            return response.status == 200
    except OSError:
        return False


def run_container(
    settings: Level3Settings, serving_dir: Path, port: int, extra_env: dict[str, str] | None = None
) -> str:
    """Start the container (replacing one of the same name); return its id.

    The admin token goes in through the environment of ``docker run`` (never into the image).
    """
    name = settings.deploy.container
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    env = {
        "LEVEL3_SERVE__BUNDLE_DIR": "/srv/bundle",
        "LEVEL3_SERVE__ADMIN_TOKEN": settings.serve.admin_token,
        "LEVEL3_SERVE__ALLOW_DEFAULT_ADMIN_TOKEN": str(
            settings.serve.allow_default_admin_token
        ).lower(),
        "LEVEL3_STORE__BACKEND": settings.store.backend,
        "LEVEL3_STORE__REDIS_URL": settings.store.redis_url,
        **(extra_env or {}),
    }
    command = [
        "docker",
        "run",
        "-d",
        "--name",
        name,
        "-p",
        f"127.0.0.1:{port}:{CONTAINER_PORT}",
        "-v",
        f"{serving_dir.resolve()}:/srv/bundle:ro",
    ]
    for key, value in env.items():
        command += ["-e", f"{key}={value}"]
    command.append(settings.deploy.image)
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


def pid_file() -> Path:
    return level_dir(3) / "serve.pid"


def start_uvicorn(
    app: str,
    port: int,
    env: dict[str, str] | None = None,
    factory: bool = True,
    **popen_kwargs: Any,
) -> subprocess.Popen:
    """Start ``app`` under uvicorn on ``127.0.0.1:port`` in a child process, as the image runs it
    (warnings only, no access log); ``env`` is added to this process's environment."""
    command = [sys.executable, "-m", "uvicorn", *(["--factory"] if factory else []), app]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    command += ["--log-level", "warning", "--no-access-log"]
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **(env or {})}
    return subprocess.Popen(command, env=env, **popen_kwargs)


def run_uvicorn(serving_dir: Path, port: int, admin_token: str) -> int:
    """The same app with uvicorn in the background; pid in ``artifacts/level3/serve.pid``."""
    stop_uvicorn()
    with (level_dir(3) / "serve.log").open("ab") as log_file:
        process = start_uvicorn(
            SERVICE_APP,
            port,
            {
                "LEVEL3_SERVE__BUNDLE_DIR": str(serving_dir),
                "LEVEL3_SERVE__ADMIN_TOKEN": admin_token,
            },
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    pid_file().write_text(str(process.pid))
    return process.pid


def stop_uvicorn() -> bool:
    """Stop the background uvicorn started by :func:`run_uvicorn`, if its pid file exists."""
    path = pid_file()
    if not path.is_file():
        return False
    pid = int(path.read_text().strip())
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            os.kill(pid, 0)
            time.sleep(0.1)
    path.unlink(missing_ok=True)
    return True


def deploy(settings: Level3Settings, use_docker: bool | None = None) -> dict[str, str]:
    """Train if needed, run the batch, start the service; return its URLs."""
    from level3_recsys.batch import nightly_batch
    from level3_recsys.train import default_dirs, train
    from ml_common.tracking import CHAMPION, alias_version, setup_mlflow

    data_dir, models_dir, serving_dir = default_dirs()
    setup_mlflow(settings.train.experiment)
    if alias_version(settings.train.model_name, CHAMPION) is None:
        log.info("no champion registered yet: preparing data and training")
        from level3_recsys.data import prepare

        if not (data_dir / "train.csv").is_file():
            prepare(settings.data, data_dir)
        train(settings, data_dir, models_dir)
    log.info("running the nightly batch flow once")
    nightly_batch(settings, serving_dir)

    port = settings.deploy.port
    token = deployed_admin_token(settings, create=True)
    settings = settings.model_copy(
        update={"serve": settings.serve.model_copy(update={"admin_token": token})}
    )
    if use_docker is None:
        use_docker = docker_available()
    if use_docker:
        build_image(settings.deploy.image)
        run_container(settings, serving_dir, port)
        mode = f"docker container {settings.deploy.container}"
    else:
        print("No Docker engine answers (docker info fails): running the service with uvicorn.")
        run_uvicorn(serving_dir, port, token)
        mode = f"uvicorn (pid file {pid_file()})"
    base = f"http://127.0.0.1:{port}"
    if not wait_healthy(f"{base}/health"):
        raise RuntimeError(f"service did not become healthy at {base}/health ({mode})")
    urls = {
        "mode": mode,
        "page": f"{base}/",
        "api": base,
        "docs": f"{base}/docs",
        "example": f"{base}/recommendations/{first_user(serving_dir)}?k=10",
        "metrics": f"{base}/metrics",
        "admin token": (
            str(admin_token_file()) if admin_token_file().is_file() else "LEVEL3_SERVE__ADMIN_TOKEN"
        ),
    }
    return urls


def first_user(serving_dir: Path) -> int:
    """A user id the service knows (for the printed example URL)."""
    from level3_recsys.bundle import UserHistories

    return int(UserHistories.load(serving_dir / "champion" / "users.npz").user_ids[0])


def down(settings: Level3Settings) -> list[str]:
    """Stop whatever :func:`deploy` started; return what was stopped."""
    stopped = []
    if docker_available():
        result = subprocess.run(
            ["docker", "rm", "-f", settings.deploy.container], capture_output=True, text=True
        )
        if result.returncode == 0:
            stopped.append(f"container {settings.deploy.container}")
    if stop_uvicorn():
        stopped.append("uvicorn")
    return stopped
