#!/usr/bin/env bash
# The newcomer's case: a fresh copy of this checkout's HEAD (git clone, committed files only), in a
# clean container from the Debian base image .ci/setup.d/20-docker.sh builds, with Python, make
# and git only: no promtool, Redis, chromium or Docker engine inside. `make setup && make test`
# must pass there, the tests that need one of those tools skipped with their reason (the skip
# summary is printed). CI's own machine keeps what earlier runs installed, so it cannot play this.
#
# Usage: .ci/newcomer.sh [IMAGE]   (default $DOCKER_BASE_IMAGE, else ml-levels-base:bookworm)
# Needs a running Docker engine. NEWCOMER_TIMEOUT_S bounds the whole run (default 2400).
# NEWCOMER_PYTEST="tests/shared -x" runs only those tests instead of `make test` (a quick check of
# this script itself; CI never sets it).
#
# What the container borrows from this machine, read-only and at run time only (nothing is baked
# into an image): the network (--network host: the package index and Debian's archive are the
# only things reachable), the extra CA certificates HTTPS interception needs
# (/usr/local/share/ca-certificates), and pip's configuration with the local wheel folders and
# indexes it names (e.g. the CPU torch wheel), as a newcomer's machine of this kind has them.
set -euo pipefail
cd "$(dirname "$0")/.."

image="${1:-${DOCKER_BASE_IMAGE:-ml-levels-base:bookworm}}"
timeout_s="${NEWCOMER_TIMEOUT_S:-2400}"
name="ml-levels-newcomer-$$"
work=$(mktemp -d /tmp/ci-newcomer.XXXXXX)
cleanup() {
  docker rm -f "$name" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

docker image inspect "$image" >/dev/null 2>&1 || {
  echo "newcomer: base image $image not found (.ci/setup.d/20-docker.sh builds it)" >&2
  exit 1
}
git clone --quiet --no-hardlinks "$PWD" "$work/repo"
echo "newcomer: fresh clone of $(git -C "$work/repo" rev-parse --short HEAD) in $image"

mounts=(-v "$work/repo:/home/newcomer/repo")
if [ -d /usr/local/share/ca-certificates ]; then
  mounts+=(-v /usr/local/share/ca-certificates:/usr/local/share/ca-certificates:ro)
fi
envs=()
# pip's configuration files, where pip looks for them in the container (which runs as root).
[ -f /etc/pip.conf ] && mounts+=(-v /etc/pip.conf:/etc/pip.conf:ro)
[ -d /etc/xdg/pip ] && mounts+=(-v /etc/xdg/pip:/etc/xdg/pip:ro)  # its pip.conf and constraints
[ -f "$HOME/.config/pip/pip.conf" ] && mounts+=(-v "$HOME/.config/pip/pip.conf:/root/.config/pip/pip.conf:ro")
[ -f "$HOME/.pip/pip.conf" ] && mounts+=(-v "$HOME/.pip/pip.conf:/root/.pip/pip.conf:ro")
# Local folders pip's configuration or environment points at (find-links, file:// indexes).
folders=$( { python3 -m pip config list 2>/dev/null || true; env | grep '^PIP_' || true; } |
  grep -oE "(file://)?/[^' \"]+" | sed -E 's#^file://##' | sort -u)
declare -A mounted=()
for folder in $folders; do
  top="/$(echo "$folder" | cut -d/ -f2-3)"  # e.g. /opt/pypi for /opt/pypi/simple
  [ -n "${mounted[$top]:-}" ] && continue
  case "$top" in /opt/* | /srv/* | /mnt/*) [ -d "$top" ] && mounts+=(-v "$top:$top:ro") ;; esac
  mounted[$top]=1
done
for var in $(env | grep -oE '^PIP_[A-Z_]+' || true); do envs+=(-e "$var"); done

# Inside: trust the extra CAs (this container only), install make + git, then the two commands.
inner=$(cat <<'EOF'
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
update-ca-certificates >/dev/null 2>&1 || true
start=$SECONDS
apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends make git >/dev/null
echo "newcomer: apt-get install make git: $((SECONDS - start)) s"
for tool in promtool redis-server chromium docker; do
  command -v "$tool" >/dev/null && { echo "newcomer: $tool is present; not a newcomer's machine"; exit 1; }
done
cd /home/newcomer/repo
start=$SECONDS
make setup
echo "newcomer: make setup: $((SECONDS - start)) s"
start=$SECONDS
if [ -n "${NEWCOMER_PYTEST:-}" ]; then
  # shellcheck disable=SC2086
  .venv/bin/python -m pytest -m "not slow" $NEWCOMER_PYTEST
  echo "newcomer: pytest $NEWCOMER_PYTEST (not make test): $((SECONDS - start)) s"
else
  make test  # pytest's -ra (pyproject.toml) lists every skip with its reason
  echo "newcomer: make test: $((SECONDS - start)) s"
fi
EOF
)
start=$SECONDS
# REQUIRE_SYSTEM_TOOLS is not passed in: a newcomer's missing tools skip, with their reason.
timeout --kill-after=30 "$timeout_s" docker run --rm --name "$name" --network host \
  "${mounts[@]}" "${envs[@]}" -e NEWCOMER_PYTEST="${NEWCOMER_PYTEST:-}" "$image" bash -c "$inner"
echo "newcomer: passed in $((SECONDS - start)) s"
