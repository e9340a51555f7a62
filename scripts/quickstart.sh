#!/usr/bin/env bash
# Quilt quick start on a fresh Debian 12 machine, as root:
#   installs the system packages, builds the release binaries, starts quiltd in
#   the background with its default paths, waits until it answers, and runs a
#   first container.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "quickstart: run me as root (namespaces, mounts and cgroups need it)" >&2
    exit 1
fi

# The packages Quilt needs to build and run (scripts/deps.sh).
. scripts/deps.sh
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y "${QUILT_RUN_PACKAGES[@]}"
quilt_check_overlay

scripts/build.sh

QUILTD=target/release/quiltd
QUILT=target/release/quilt
LOG=/var/log/quiltd.log
PIDFILE=/run/quiltd.pid

if [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "quickstart: quiltd already running (pid $(cat "$PIDFILE")); restarting it"
    kill -TERM "$(cat "$PIDFILE")"
    for _ in $(seq 1 100); do
        kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break
        sleep 0.1
    done
fi

# Default paths: data in /var/lib/quilt, socket at /run/quilt/quilt.sock.
setsid "$QUILTD" </dev/null >>"$LOG" 2>&1 &
echo $! >"$PIDFILE"
echo "quickstart: quiltd started (pid $(cat "$PIDFILE"), log $LOG)"

# Wait (at most 30 s) until it answers.
ready=0
for _ in $(seq 1 150); do
    if "$QUILT" ps >/dev/null 2>&1; then
        ready=1
        break
    fi
    if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
        echo "quickstart: quiltd exited; last lines of $LOG:" >&2
        tail -n 20 "$LOG" >&2
        exit 1
    fi
    sleep 0.2
done
if [ "$ready" -ne 1 ]; then
    echo "quickstart: quiltd did not answer within 30 s; last lines of $LOG:" >&2
    tail -n 20 "$LOG" >&2
    exit 1
fi

"$QUILT" run --rm default echo "hello from quilt"
