#!/usr/bin/env bash
# `make up` / `make down`: deploy/compose.yaml with Debian's docker-compose 1.29.
#
#   deploy/docker/compose.sh up     # start (images must exist: make images), wait for /readyz
#   deploy/docker/compose.sh down   # stop and remove the containers; keep the volumes
#   deploy/docker/compose.sh ps|logs [service]
#
# The secrets (JWT, PostgreSQL password) are generated once into .local/compose.env (mode
# 600) and reused, so a restart keeps working tokens and the existing database.
set -euo pipefail
cd "$(dirname "$0")/../.."

ENV_FILE=.local/compose.env
if [ ! -f "$ENV_FILE" ]; then
    mkdir -p .local
    umask 077
    {
        echo "GOAL_ENGINE_JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '/+=')"
        echo "POSTGRES_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
    } >"$ENV_FILE"
fi
compose=(docker-compose --project-name goal-engine --env-file "$ENV_FILE" --file deploy/compose.yaml)

wait_ready() {
    local deadline=$((SECONDS + ${READY_TIMEOUT:-300})) port
    for port in 18000 18001; do
        until curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do
            if [ $SECONDS -gt $deadline ]; then
                echo "API on 127.0.0.1:$port not ready: $(curl -sS "http://127.0.0.1:$port/readyz" 2>&1)" >&2
                "${compose[@]}" ps >&2
                exit 1
            fi
            sleep 2
        done
        echo "ready: http://127.0.0.1:$port/readyz -> $(curl -sS "http://127.0.0.1:$port/readyz")"
    done
}

case "${1:-}" in
    up)
        started=$SECONDS
        "${compose[@]}" up --detach
        wait_ready
        echo "goal-engine is up in $((SECONDS - started)) s; Prometheus on http://127.0.0.1:19090"
        echo "a token: docker run --rm --network host --env-file $ENV_FILE goal-engine token --tenant t-1"
        ;;
    down) "${compose[@]}" down ;;
    ps | logs) "${compose[@]}" "$@" ;;
    *) echo "usage: $0 up|down|ps|logs [service]" >&2; exit 2 ;;
esac
