#!/usr/bin/env bash
# What the Node preload's figures (event-loop delay and active handles, sent every 5 s) cost in
# request throughput: bench/apps/hello.js as 2 cluster instances under wrk (keep-alive, 32
# connections), with the figures on and with TEND_NODE_METRICS=0, in interleaved rounds.
#
#   bench/preload-metrics.sh [rounds] [seconds]     # default 5 rounds of 8 s each way
set -eu
rounds=${1:-5}
secs=${2:-8}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/preload-metrics.XXXXXX)
trap 'TEND_HOME=$work/home "$work/tend" kill >/dev/null 2>&1; rm -rf "$work"' EXIT
(cd "$repo" && CGO_ENABLED=0 go build -ldflags="-s -w" -o "$work/tend" ./cmd/tend)
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 2; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export TEND_HOME=$work/home
one() { # $1: on|off → requests/s
	local env=()
	[ "$1" = off ] && env=(TEND_NODE_METRICS=0)
	env "${env[@]}" PORT=$port "$work/tend" start "$repo/bench/apps/hello.js" -i 2 --name hello -s --listen-timeout 10000 >/dev/null
	sleep 1
	wrk -t2 -c32 -d1s "http://127.0.0.1:$port/" >/dev/null # warm up
	wrk -t2 -c32 -d"${secs}s" "http://127.0.0.1:$port/" | awk '/Requests\/sec/ {print $2}'
	"$work/tend" delete hello -s >/dev/null
}
on=() off=()
for i in $(seq "$rounds"); do
	if [ $((i % 2)) = 1 ]; then on+=("$(one on)"); off+=("$(one off)"); else off+=("$(one off)"); on+=("$(one on)"); fi
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
m_on=$(median "${on[@]}") m_off=$(median "${off[@]}")
echo "figures on:  ${on[*]} req/s (median $m_on)"
echo "figures off: ${off[*]} req/s (median $m_off)"
awk -v a="$m_on" -v b="$m_off" 'BEGIN {printf "on / off: %.3f (cost %.1f %%)\n", a/b, (1-a/b)*100}'
