#!/bin/sh
# Serve necreg with gunicorn and run a mail worker beside it (what `make run` does).
# The worker is stopped when gunicorn exits, however it exits (Ctrl-C, SIGTERM, a crash).
# Usage: scripts/run.sh HOST PORT WORKERS   (BIN: the venv's bin directory, default .venv/bin)
set -u
HOST=${1:-127.0.0.1}
PORT=${2:-5000}
WORKERS=${3:-2}
BIN=${BIN:-.venv/bin}

"$BIN/necreg" mail-worker &
worker=$!
server=

stop_worker() {
    kill -TERM "$worker" 2>/dev/null
    wait "$worker" 2>/dev/null
}
trap stop_worker EXIT
trap '[ -n "$server" ] && kill -TERM "$server" 2>/dev/null' INT TERM

"$BIN/gunicorn" -c gunicorn.conf.py --bind "$HOST:$PORT" --workers "$WORKERS" necreg.wsgi:app &
server=$!
# A signal interrupts `wait`; keep waiting until gunicorn has really stopped.
status=0
while kill -0 "$server" 2>/dev/null; do
    wait "$server"
    status=$?
done
exit "$status"
