#!/usr/bin/env bash
# Runs PM2's own end-to-end scripts (test/e2e of Unitech/pm2) against tend, or against PM2
# itself for the baseline, and prints which pass. It fetches nothing: it runs a copy of the
# suite you keep outside this repository. Slow (minutes), so CI does not run it.
#
#   test/pm2suite/run.sh --suite DIR [--pm2 BIN] [--jobs N] [script ...]
#
# DIR holds PM2's test/ folder and package.json, e.g.
#   git -C <pm2 checkout> archive HEAD test package.json | tar -x -C DIR
# and modules/, PM2's bundled libraries that some fixtures require (a link to an installed PM2's:
#   ln -s <prefix>/node_modules/pm2/modules DIR/modules).
# Scripts are named as in PM2's test/e2e.sh (cli/reload.sh); none means every script e2e.sh runs.
# --pm2 BIN runs PM2's own CLI instead of tend (the baseline). Each script runs alone in a
# fresh copy of the suite with its own HOME, so scripts do not see each other's processes.
# --jobs N runs N scripts at once: faster, but fixtures listen on fixed ports, so the count is
# only reliable with the default, 1.
# The exceptions and differences on purpose are in docs/coming-from-pm2.md.
set -u

suite=${PM2_SUITE:-}
pm2bin=
jobs=1
scripts=()
while [ $# -gt 0 ]; do
	case $1 in
	--suite) suite=$2; shift 2 ;;
	--pm2) pm2bin=$2; shift 2 ;;
	--jobs) jobs=$2; shift 2 ;;
	-h|--help) sed -n 2,13p "$0"; exit 0 ;;
	*) scripts+=("$1"); shift ;;
	esac
done
if [ -z "$suite" ] || [ ! -f "$suite/test/e2e.sh" ]; then
	echo "run.sh: --suite DIR must hold PM2's test/e2e.sh (see --help)" >&2
	exit 2
fi
suite=$(cd "$suite" && pwd)
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/pm2suite.XXXXXX)
logs=/tmp/pm2suite-logs-$([ -z "$pm2bin" ] && echo tend || echo pm2)
rm -rf "$logs" && mkdir -p "$logs"
trap 'rm -rf "$work"' EXIT

if [ -z "$pm2bin" ]; then
	(cd "$repo" && go build -o "$work/tend" ./cmd/tend) || exit 1
	target="$work/tend"
else
	target=$(cd "$(dirname "$pm2bin")" && pwd)/$(basename "$pm2bin")
fi

if [ ${#scripts[@]} -eq 0 ]; then
	# The scripts e2e.sh runs (commented-out lines are not run by PM2 either).
	mapfile -t scripts < <(sed -n 's|^ *runTest \./test/e2e/||p' "$suite/test/e2e.sh")
fi

# one runs a script in a copy of the suite whose bin/pm2 is the target, and prints its verdict.
one() {
	local s=$1 dir
	dir=$(mktemp -d "$work/run.XXXXXX")
	cp -r "$suite/test" "$suite/package.json" "$dir/"
	# Some fixtures require ../../../modules/pm2-io-bpm (PM2's APM library): a link to it.
	[ -e "$suite/modules" ] && ln -s "$(readlink -f "$suite/modules")" "$dir/modules"
	# include.sh keeps prettylist's output in /tmp/tmp_out.txt: one file per run instead.
	sed -i "s|/tmp/tmp_out.txt|$dir/tmp_out.txt|g" "$dir/test/e2e/include.sh"
	mkdir -p "$dir/bin" "$dir/home"
	printf '#!/bin/sh\nexec %q "$@"\n' "$target" >"$dir/bin/pm2"
	chmod +x "$dir/bin/pm2"
	local home=$dir/home
	local start=$SECONDS rc
	# In a session of its own, so that what the script leaves behind (a `pm2 logs` it sent to
	# the background) is killed with the group at the end.
	(cd "$dir" && HOME=$home PM2_HOME=$home/.pm2 TEND_HOME=$home/.pm2 PM2_SILENT=true \
		exec setsid timeout -k 10 600 bash "test/e2e/$s" >"$dir/out.log" 2>&1) &
	local leader=$!
	wait $leader
	rc=$?
	kill -9 -- -$leader 2>/dev/null
	(cd "$dir" && HOME=$home PM2_HOME=$home/.pm2 TEND_HOME=$home/.pm2 timeout 30 bin/pm2 kill >/dev/null 2>&1)
	# A daemon the script started under another home of its own: found by its environment.
	local pid th
	for pid in $(pgrep -f "$target|God Daemon"); do
		tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "HOME=$home" || continue
		th=$(tr '\0' '\n' <"/proc/$pid/environ" | sed -n 's/^\(TEND\|PM2\)_HOME=//p' | head -n 1)
		(cd "$dir" && HOME=$home PM2_HOME=$th TEND_HOME=$th timeout 30 bin/pm2 kill >/dev/null 2>&1)
	done
	local verdict=pass
	[ $rc -eq 0 ] || verdict=FAIL
	[ $rc -eq 124 ] && verdict=TIMEOUT
	local why=
	if [ $verdict != pass ]; then
		why=$(grep -a -m1 '######## ✘' "$dir/out.log" | sed 's/######## ✘ //')
		[ -n "$why" ] || why=$(tail -n 1 "$dir/out.log")
		cp "$dir/out.log" "$logs/$(echo "$s" | tr / -).log"
	fi
	printf '%-7s %4ds  %s  %s\n' "$verdict" $((SECONDS - start)) "$s" "$why"
	rm -rf "$dir"
}
export -f one
export suite work pm2bin target logs

printf '%s\n' "${scripts[@]}" | xargs -P "$jobs" -I{} bash -c 'one "$@"' _ {} | tee "$work/results"
pass=$(grep -c '^pass' "$work/results")
echo "passed $pass of ${#scripts[@]} ($([ -z "$pm2bin" ] && echo tend || echo "$pm2bin")); logs of failures in $logs"
