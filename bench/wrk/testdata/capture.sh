#!/usr/bin/env bash
# Regenerates the wrk outputs in this directory by running the real wrk against fixtureserver
# on a free 127.0.0.1 port. wrk_test.go only parses these files; nothing in `go test` runs wrk.
#   bash bench/wrk/testdata/capture.sh     (about 90 s: minutes.txt needs a 61 s request)
# Needs wrk 4.x. Each file is wrk's stdout, untouched, except refused.txt (stderr, see below).
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd ../../.. && pwd)
TMP=$(mktemp -d /tmp/wrk-fixtures.XXXXXX)
SERVER_PID=
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

(cd "$ROOT" && go build -o "$TMP/fixtureserver" ./bench/wrk/testdata/fixtureserver)

# start_server ARGS...: starts fixtureserver in the background and sets PORT from its first line.
start_server() {
  "$TMP/fixtureserver" "$@" >"$TMP/server.out" &
  SERVER_PID=$!
  for _ in $(seq 100); do
    PORT=$(sed -n 's/^port=//p' "$TMP/server.out")
    [ -n "$PORT" ] && return 0
    sleep 0.05
  done
  echo "fixtureserver did not print its port" >&2
  exit 1
}
stop_server() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; }

# capture FILE SERVER_ARGS -- WRK_ARGS: one fixture. wrk's exit status is ignored on purpose:
# the error scenarios are what some fixtures are for.
capture() {
  local file=$1; shift
  local server_args=()
  while [ "$1" != "--" ]; do server_args+=("$1"); shift; done
  shift
  start_server "${server_args[@]}"
  echo "$file: wrk $* http://127.0.0.1:$PORT/" >&2
  (
    # connect.txt runs wrk with few fds, see below.
    [ -n "${FD_LIMIT:-}" ] && ulimit -n "$FD_LIMIT"
    wrk "$@" "http://127.0.0.1:$PORT/" >"$file"
  ) || true
  stop_server
}

capture clean.txt        -mode ok -- -t2 -c64 -d2s
capture clean-close.txt  -mode ok -- -t2 -c64 -d2s -H 'Connection: close'
capture latency-flag.txt -mode ok -- -t1 -c8 -d1s --latency
capture non2xx.txt       -mode status -- -t2 -c16 -d2s
capture reset.txt        -mode reset -- -t1 -c4 -d1s
capture dies.txt         -mode dies -after 1s -- -t2 -c16 -d2s
# wrk counts a connect error only when connect() fails at once; over loopback a refusal arrives
# later and is counted as a write error (dies.txt shows it). Running out of fds is a sure way to
# make connect() fail at once: 29 of the 64 connections get no socket.
FD_LIMIT=40 capture connect.txt -mode ok -- -t1 -c64 -d1s
capture timeout.txt      -mode ok -delay 1500ms -- -t1 -c4 -d3s --timeout 1s
capture seconds.txt      -mode ok -delay 1200ms -- -t1 -c4 -d3s --timeout 5s
capture minutes.txt      -mode ok -delay 61s -- -t1 -c1 -d63s --timeout 2m

# A port nobody listens on: wrk's start-up connect fails, it prints one line on stderr and exits 1
# with nothing on stdout, so this fixture holds stderr (what a caller sees in that case).
start_server -mode ok
stop_server
echo "refused.txt: wrk -t1 -c1 -d1s http://127.0.0.1:$PORT/" >&2
wrk -t1 -c1 -d1s "http://127.0.0.1:$PORT/" >refused.txt 2>&1 || true
