# A real Docker engine, and a base image made without a registry (none is reachable here):
# debootstrap a minimal Debian with Python, then `docker import` it. Container tests build their
# images FROM it (ARG BASE) and must not skip: .ci/run's REQUIRE_SYSTEM_TOOLS=1 turns a skip into
# a failure.
export DOCKER_BASE_IMAGE="${DOCKER_BASE_IMAGE:-ml-levels-base:bookworm}"
export DOCKER_BUILDKIT=0
# Logs of this hook (dockerd, debootstrap) go here, whether or not an engine was already running.
mkdir -p /tmp/ci-docker

if ! docker info >/dev/null 2>&1; then
  echo "starting dockerd"
  dockerd --pidfile /tmp/ci-docker/dockerd.pid >/tmp/ci-docker/dockerd.log 2>&1 &
  on_exit 'kill "$(cat /tmp/ci-docker/dockerd.pid 2>/dev/null)" 2>/dev/null; sleep 2'
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start:"; tail -20 /tmp/ci-docker/dockerd.log; exit 1; }
fi

if ! docker image inspect "$DOCKER_BASE_IMAGE" >/dev/null 2>&1; then
  echo "building base image $DOCKER_BASE_IMAGE with debootstrap"
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null)
  mirror="${mirror:-http://deb.debian.org/debian}"
  rootfs=$(mktemp -d /tmp/ci-rootfs.XXXXXX)
  debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates,curl \
    bookworm "$rootfs" "$mirror" >/tmp/ci-docker/debootstrap.log 2>&1 \
    || { echo "debootstrap failed:"; tail -20 /tmp/ci-docker/debootstrap.log; exit 1; }
  tar -C "$rootfs" -c . | docker import - "$DOCKER_BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
fi
echo "docker engine ready; base image $DOCKER_BASE_IMAGE"
