#!/usr/bin/env bash
# Where a tend cluster worker differs from the same app with no manager (issue 17): one suspect at
# a time, each a setup of bench/apps/hello.js (hello-fd.js for the direct launcher) as 2 workers,
# measured under wrk in interleaved rounds whose order rotates. For each setup it prints the
# median requests/s, the workers' CPU per request (user + system, from /proc: what the worker
# itself spends, less sensitive to wrk's share of the 2 cores than requests/s), and the median of
# per-round ratios to "direct".
#
#   bench/gap.sh [rounds] [seconds] [close|keep]   # default 8 rounds of 5 s, new connection each
#
# The setups:
#   direct         bench/direct in a session of its own (as a service, and as tend's daemon, is)
#   direct-shared  the same in this script's session: the workers share wrk's scheduling autogroup
#   direct+ipc     direct, each worker with an IPC channel nothing writes to (NODE_CHANNEL_FD)
#   direct+preload direct, with tend's Node preload (--require)
#   tend           tend's cluster mode (Node's cluster-worker protocol, the preload, IPC, log pipes)
#   tend-nopreload TEND_NODE_PRELOAD=0
#   tend-shim      TEND_NODE_SHIM=1: the preload asks for the socket; no NODE_UNIQUE_ID
set -eu
rounds=${1:-8}
secs=${2:-5}
mode=${3:-close}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/tend-gap.XXXXXX)
export TEND_HOME=$work/home
launchers=()
cleanup() {
	"$work/tend" kill >/dev/null 2>&1 || true
	for p in "${launchers[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 2; }
(cd "$repo" && CGO_ENABLED=0 go build -ldflags="-s -w" -o "$work/tend" ./cmd/tend && go build -o "$work/direct" ./bench/direct)

# Ports below the ephemeral range, so that no client connection of an earlier round holds one.
next_port=21000
declare -A addr pids

direct() { # name, then how: own|shared, then env for the launcher and its workers
	local name=$1 how=$2 p out before
	shift 2
	next_port=$((next_port + 1))
	p=$next_port
	out=$work/$name.out
	before=$(ps -eo pid= | sort)
	if [ "$how" = own ]; then
		env "$@" setsid "$work/direct" -workers 2 -port "$p" ${DIRECT_FLAGS:-} -- node "$repo/bench/apps/hello-fd.js" >"$out" 2>&1 &
	else
		env "$@" "$work/direct" -workers 2 -port "$p" ${DIRECT_FLAGS:-} -- node "$repo/bench/apps/hello-fd.js" >"$out" 2>&1 &
	fi
	launchers+=($!)
	for _ in $(seq 100); do grep -q '^ready' "$out" 2>/dev/null && break; sleep 0.1; done
	addr[$name]=$p
	# Its workers: the node processes that were not there before.
	pids[$name]=$(comm -13 <(echo "$before") <(ps -eo pid= | sort) | xargs -r ps -o pid=,args= -p | awk '$2 == "node" && /hello-fd/ {print $1}' | xargs)
}
tendapp() { # name, then env for the app
	local name=$1 p
	shift
	next_port=$((next_port + 1))
	p=$next_port
	env "$@" PORT="$p" "$work/tend" start "$repo/bench/apps/hello.js" -i 2 --name "$name" --listen-timeout 10000 -s >/dev/null
	addr[$name]=$p
	pids[$name]=$("$work/tend" jlist | python3 -c "import json,sys; print(' '.join(str(p['pid']) for p in json.load(sys.stdin) if p['name']=='$name'))")
}

tendapp tend
tendapp tend-nopreload TEND_NODE_PRELOAD=0
tendapp tend-shim TEND_NODE_SHIM=1
preload=$(ls "$TEND_HOME"/lib/tend-preload-*.cjs)
direct direct own
direct direct-shared shared
DIRECT_FLAGS=-ipc direct direct+ipc own
direct direct+preload own NODE_OPTIONS="--require $preload"
for s in "${!pids[@]}"; do
	[ "$(echo "${pids[$s]}" | wc -w)" = 2 ] || { echo "gap: setup $s has workers '${pids[$s]}', want 2" >&2; exit 1; }
done

setups=(direct direct-shared direct+ipc direct+preload tend tend-nopreload tend-shim)
hdr=()
[ "$mode" = close ] && hdr=(-H "Connection: close")
ticks() { local s=0; for p in "$@"; do s=$((s + $(awk '{print $14+$15}' /proc/"$p"/stat))); done; echo $s; }
for s in "${setups[@]}"; do # warm up each once
	wrk -t2 -c64 -d2s "${hdr[@]}" "http://127.0.0.1:${addr[$s]}/" >/dev/null
done
results=$work/results
for r in $(seq "$rounds"); do
	n=${#setups[@]}
	for i in $(seq 0 $((n - 1))); do
		s=${setups[$(((i + r) % n))]}
		# shellcheck disable=SC2086
		b=$(ticks ${pids[$s]})
		rps=$(wrk -t2 -c64 -d"${secs}s" "${hdr[@]}" "http://127.0.0.1:${addr[$s]}/" | awk '/Requests\/sec/ {print $2}')
		# shellcheck disable=SC2086
		a=$(ticks ${pids[$s]})
		echo "$r $s $rps $(((a - b) * 10000))" >>"$results"
	done
done
python3 - "$results" "$secs" "$mode" <<'EOF'
import collections, statistics, sys
path, secs, mode = sys.argv[1], float(sys.argv[2]), sys.argv[3]
rps, cpu, byround = collections.defaultdict(list), collections.defaultdict(list), collections.defaultdict(dict)
for line in open(path):
    r, s, v, us = line.split()
    v = float(v)
    rps[s].append(v)
    cpu[s].append(float(us) / (v * secs))
    byround[r][s] = v
d = rps['direct']
spread = (max(d) - min(d)) / statistics.median(d)
print(f"{mode}: {len(d)} rounds of {secs:g} s; direct varied {spread*100:.0f} % from round to round")
print(f"| setup | requests/s | worker CPU per request | ratio to direct |")
print(f"|---|---|---|---|")
for s in rps:
    ratios = [byround[r][s] / byround[r]['direct'] for r in byround]
    if len(d) < 5:
        ratio = "too few rounds to judge (5 at least)"
    else:
        ratio = f"{statistics.median(ratios):.3f}×" if spread <= 0.10 else "too noisy to judge"
    print(f"| {s} | {statistics.median(rps[s]):.0f} | {statistics.median(cpu[s]):.1f} µs | {ratio} |")
EOF
