#!/usr/bin/env bash
# Runs every fuzz target (func Fuzz… in any package) for a while: FUZZTIME each, 3s by default.
# A failing input is written to the package's testdata/fuzz/, where it stays as a seed once the
# bug is fixed; `go test ./...` runs every seed.
#
#   test/fuzz.sh              # every target, 3 s each
#   FUZZTIME=1m test/fuzz.sh  # longer
set -euo pipefail
cd "$(dirname "$0")/.."
failed=0
for pkg in $(go list ./...); do
	for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		if go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "${FUZZTIME:-3s}" >/tmp/tend-fuzz.log 2>&1; then
			echo "ok    $target ($pkg)"
		else
			echo "FAIL  $target ($pkg)"
			tail -20 /tmp/tend-fuzz.log
			failed=1
		fi
	done
done
exit $failed
