#!/usr/bin/env bash
# The Docker engine for `make images`, `make chaos` and deploy/compose.yaml, on this host only.
#
#   deploy/docker/engine.sh install   # Debian's docker.io, debootstrap and docker-compose (apt)
#   deploy/docker/engine.sh start     # dockerd with no bridge and no iptables rules, if not running
#   deploy/docker/engine.sh stop      # stops the dockerd this script started
#
# Why these flags: every container runs with host networking and binds 127.0.0.1, so no
# container ever gets an address on a private range and no packet leaves loopback.
# --bridge=none means Docker creates no docker0 network at all (a container asking for
# the default bridge network then fails instead of getting a private-range address).
set -euo pipefail

STATE_DIR=${GOAL_ENGINE_DOCKER_STATE:-/var/lib/goal-engine-dockerd}
PID_FILE=$STATE_DIR/dockerd.pid
LOG_FILE=$STATE_DIR/dockerd.log

install() {
    local missing=()
    [ -x /usr/sbin/dockerd ] || missing+=(docker.io)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    command -v docker-compose >/dev/null || missing+=(docker-compose)
    if [ ${#missing[@]} -eq 0 ]; then return; fi
    echo "installing ${missing[*]} (Debian packages)"
    apt-get update -qq
    # policy-rc.d exiting 101 keeps dpkg from starting the engine with its default
    # (bridged) networking: only `start` below starts it, with the flags above.
    local policy_added=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        policy_added=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null
    if [ -n "$policy_added" ]; then rm -f /usr/sbin/policy-rc.d; fi
}

running() {
    [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null
}

start() {
    if docker info >/dev/null 2>&1; then return; fi  # an engine is already serving the socket
    mkdir -p "$STATE_DIR"
    echo "starting dockerd (--bridge=none --iptables=false; log: $LOG_FILE)"
    /usr/sbin/dockerd --bridge=none --iptables=false --ip-masq=false --ip6tables=false \
        --pidfile "$PID_FILE" >"$LOG_FILE" 2>&1 &
    for _ in $(seq 120); do
        if docker info >/dev/null 2>&1; then return; fi
        if ! kill -0 $! 2>/dev/null; then
            echo "dockerd exited; last lines of $LOG_FILE:" >&2
            tail -n 30 "$LOG_FILE" >&2
            exit 1
        fi
        sleep 0.5
    done
    echo "dockerd did not answer within 60 s; see $LOG_FILE" >&2
    exit 1
}

stop() {
    if ! running; then return; fi
    local pid
    pid=$(cat "$PID_FILE")
    echo "stopping dockerd (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 60); do
        if ! kill -0 "$pid" 2>/dev/null; then return; fi
        sleep 0.5
    done
    kill -KILL "$pid" 2>/dev/null || true
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
