#!/usr/bin/env bash
# `make images`: goal-engine, goal-engine-kafka, goal-engine-postgres and goal-engine-prometheus,
# built offline.
#
# No image registry: the base is Debian bookworm (minbase) from the mirror apt uses here,
# made with debootstrap and `docker import`ed once (tagged with a hash of how it is made).
# The goal-engine image installs wheels built on the host (pinned to this .venv's versions),
# the Kafka image the jars deploy/kafka/pom.xml pins. Builds use host networking (apt inside
# them reaches the mirror like the host does) and Docker's layer cache: with no change, a
# rebuild takes seconds. Ends with the images' sizes.
set -euo pipefail
cd "$(dirname "$0")/../.."

# Debian's CLI (from docker.io) matches its engine; any other docker on PATH may not.
DOCKER=${DOCKER:-$(command -v /usr/bin/docker || command -v docker)}
PY=${PY:-.venv/bin/python}
WORK=.cache/images
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-${MIRROR%/debian}/debian-security}
export DOCKER_BUILDKIT=0  # the classic builder: no buildx plugin needed, honours --network host
mkdir -p "$WORK"

build() {  # build <tag> <context> [docker build args...]
    local tag=$1 context=$2
    shift 2
    local started=$SECONDS
    "$DOCKER" build --quiet --network host --tag "$tag" "$@" "$context" >/dev/null
    echo "  $tag built in $((SECONDS - started)) s"
}

# --- base: debootstrap, once per recipe ------------------------------------------------------
recipe="debootstrap --variant=minbase $SUITE $MIRROR; security $SECURITY_MIRROR; v1"
BASE=goal-engine-base:$SUITE-$(printf '%s' "$recipe" | sha256sum | cut -c1-12)
if ! "$DOCKER" image inspect "$BASE" >/dev/null 2>&1; then
    echo "building $BASE ($recipe)"
    rootfs=$(mktemp -d "$PWD/$WORK/rootfs.XXXXXX")
    trap 'rm -rf "$rootfs"' EXIT
    debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
        || { tail -n 20 "$WORK/debootstrap.log" >&2; exit 1; }
    cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
SOURCES
    # No recommends, no docs and no caches: smaller layers for every image built on it.
    printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
        >"$rootfs/etc/apt/apt.conf.d/90goal-engine"
    chroot "$rootfs" apt-get clean
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/usr/share/doc/* \
        "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
    tar -C "$rootfs" -c . | "$DOCKER" import --change 'CMD ["bash"]' - "$BASE" >/dev/null
    rm -rf "$rootfs"
    trap - EXIT
fi
echo "base image $BASE"

# --- goal-engine: wheels from the host -----------------------------------------------------
ctx=$WORK/goal-engine
mkdir -p "$ctx/wheels"
# The runtime dependencies at the versions this .venv runs (and the tests passed with).
"$PY" deploy/docker/runtime_requirements.py >"$ctx/requirements.txt"
deps_key=$(sha256sum <"$ctx/requirements.txt" | cut -c1-16)
if [ "$(cat "$ctx/wheels/deps.key" 2>/dev/null)" != "$deps_key" ]; then
    echo "building the dependency wheels (pinned to .venv)"
    rm -rf "$ctx/wheels/deps"
    "$PY" -m pip wheel --quiet --no-deps --wheel-dir "$ctx/wheels/deps" -r "$ctx/requirements.txt"
    echo "$deps_key" >"$ctx/wheels/deps.key"
fi
rm -rf "$ctx/wheels/app"
# A fixed timestamp makes the wheel byte-identical when the code is: Docker's cache then holds.
SOURCE_DATE_EPOCH=315532800 "$PY" -m pip wheel --quiet --no-deps --wheel-dir "$ctx/wheels/app" .
rm -rf build  # setuptools' scratch directory of the wheel build
cp deploy/docker/goal-engine/Dockerfile deploy/docker/goal-engine/healthcheck.py "$ctx/"
build goal-engine:latest "$ctx" --build-arg "BASE=$BASE"

# --- Kafka: the pinned jars -----------------------------------------------------------------
libs=$("$PY" -c "from goal_engine.devstack.kafka import ensure_kafka_libs; print(ensure_kafka_libs())")
version=$("$PY" -c "from goal_engine.devstack.kafka import KAFKA_VERSION; print(KAFKA_VERSION)")
ctx=$WORK/kafka
rm -rf "$ctx" && mkdir -p "$ctx"
cp -a "$libs" "$ctx/libs"
rm -f "$ctx/libs/.complete"
cp deploy/docker/kafka/Dockerfile deploy/docker/kafka/entrypoint.sh deploy/docker/kafka/log4j2.properties "$ctx/"
build "goal-engine-kafka:$version" "$ctx" --build-arg "BASE=$BASE"
"$DOCKER" tag "goal-engine-kafka:$version" goal-engine-kafka:latest

# --- PostgreSQL -----------------------------------------------------------------------------
build goal-engine-postgres:15 deploy/docker/postgres --build-arg "BASE=$BASE"
"$DOCKER" tag goal-engine-postgres:15 goal-engine-postgres:latest

# --- Prometheus -----------------------------------------------------------------------------
build goal-engine-prometheus:latest deploy/docker/prometheus --build-arg "BASE=$BASE"

echo "images:"
"$DOCKER" image ls --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' \
    | grep -E "^(goal-engine:latest|goal-engine-kafka:$version|goal-engine-postgres:15|goal-engine-prometheus:latest|$BASE)\s" \
    | sort | sed 's/^/  /'
