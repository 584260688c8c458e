#!/usr/bin/env bash
# The core issue's figures, tend and PM2 side by side in one run (make bench).
#   bench/core.sh            all rows
#   bench/core.sh --no-pm2   tend (and the `| cat` baseline) only
# PM2 7.0.4 is installed from npm into bench/.cache (never globally) with its own PM2_HOME.
# Everything it starts is killed at the end. Needs node.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WITH_PM2=1
[ "${1:-}" = "--no-pm2" ] && WITH_PM2=0
RUNS=${RUNS:-3}

WORK=$(mktemp -d /tmp/tend-bench.XXXXXX)
export TEND_HOME=$WORK/th
export PM2_HOME=$WORK/pm2
TEND=$WORK/tend
PM2=$ROOT/bench/.cache/node_modules/.bin/pm2

cleanup() {
  "$TEND" kill >/dev/null 2>&1 || true
  [ -x "$PM2" ] && "$PM2" kill >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

CGO_ENABLED=0 go build -ldflags="-s -w" -o "$TEND" ./cmd/tend
if [ $WITH_PM2 = 1 ] && [ ! -x "$PM2" ]; then
  echo "installing pm2@7.0.4 into bench/.cache ..." >&2
  mkdir -p bench/.cache
  (cd bench/.cache && npm init -y >/dev/null 2>&1 && npm install --no-audit --no-fund pm2@7.0.4 >/dev/null 2>&1)
fi

now_ms() { date +%s%3N; }
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
# utime + stime: fields 14 and 15, counted after the ')' that ends the command name (PM2's
# title "PM2 v7.0.4: God Daemon (...)" holds spaces).
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
tend_pid() { cat "$TEND_HOME/daemon.pid"; }
pm2_pid() { cat "$PM2_HOME/pm2.pid"; }
row() { printf '| %-62s | %9s | %9s |\n' "$1" "$2" "$3"; }

apps_json() { # name count script args
  python3 -c "import json,sys; print(json.dumps({'apps':[{'name':'$1%d'%i,'script':'$3','args':'$4','autorestart':False} for i in range($2)]}))"
}

# Wall time until the file ends with the END line, polled every 5 ms the same way for everyone.
wait_end() { # file start_ms
  while ! tail -c 64 "$1" 2>/dev/null | grep -q 'END$'; do sleep 0.005; done
  echo $(( $(now_ms) - $2 ))
}

cat > "$WORK/flood.js" <<'EOF'
// 1,000,000 lines of 67 bytes, as fast as the pipe takes them, then END. FLOOD_LINES=1 writes
// one console.log per line (a write(2) each, as a chatty app does); otherwise 1000 lines a write.
const N = 1e6, pad = 'x'.repeat(53);
let i = 0;
if (process.env.FLOOD_LINES === '1') {
  for (; i < N; i++) console.log('line ' + String(i).padStart(7, '0') + ' ' + pad);
  console.log('END');
  return;
}
function write() {
  let ok = true;
  while (i < N && ok) {
    let s = '';
    for (let k = 0; k < 1000 && i < N; k++, i++) s += 'line ' + String(i).padStart(7, '0') + ' ' + pad + '\n';
    ok = process.stdout.write(s);
  }
  if (i < N) process.stdout.once('drain', write); else process.stdout.write('END\n');
}
write();
EOF
apps_json sleep 20 /bin/sleep 3600 > "$WORK/20.json"
apps_json s 200 /bin/sleep 3600 > "$WORK/200.json"

echo "machine: $(nproc) cores, $(uname -r), node $(node --version), $(go version | cut -d' ' -f3)"
echo
row "figure" "tend" "PM2 7.0.4"
row "---" "---" "---"

# --- 1. RSS idle, then 20 apps and the CLI round trip ---
"$TEND" ping >/dev/null
sleep 1
T_IDLE=$(rss_mb "$(tend_pid)")
P_IDLE="-"; P_20="-"; P_JL="-"
if [ $WITH_PM2 = 1 ]; then
  "$PM2" ping >/dev/null 2>&1; sleep 1
  P_IDLE=$(rss_mb "$(pm2_pid)")
fi
row "daemon RSS idle (MB)" "$T_IDLE" "$P_IDLE"

"$TEND" start "$WORK/20.json" -s
sleep 3
T_20=$(rss_mb "$(tend_pid)")
# Mean over a loop, fork and exec included, timed the same way for both.
loop_us() { local n=$1; shift; local s e; s=$(date +%s%N); for _ in $(seq "$n"); do "$@" >/dev/null 2>&1; done; e=$(date +%s%N); echo $(( (e - s) / n / 1000 )); }
T_JL=$(loop_us 200 "$TEND" jlist)
if [ $WITH_PM2 = 1 ]; then
  "$PM2" start "$WORK/20.json" >/dev/null 2>&1; sleep 3
  P_20=$(rss_mb "$(pm2_pid)")
  P_JL=$(loop_us 20 "$PM2" jlist)
  "$PM2" delete all >/dev/null 2>&1
fi
row "daemon RSS with 20 apps (MB)" "$T_20" "$P_20"
row "jlist round trip, 20 apps (ms, mean)" "$(awk "BEGIN{printf \"%.1f\", $T_JL/1000}")" "$( [ "$P_JL" = - ] && echo - || awk "BEGIN{printf \"%.0f\", $P_JL/1000}")"
"$TEND" delete all -s

# --- 2. 200 processes from one config ---
t_on=(); t_off=(); p_on=(); p_off=()
for r in $(seq "$RUNS"); do
  s=$(now_ms); "$TEND" start "$WORK/200.json" -s; t_on+=($(( $(now_ms) - s )))
  s=$(now_ms); "$TEND" stop all -s; t_off+=($(( $(now_ms) - s )))
  "$TEND" delete all -s
  if [ $WITH_PM2 = 1 ]; then
    s=$(now_ms); "$PM2" start "$WORK/200.json" >/dev/null 2>&1
    until [ "$("$PM2" jlist 2>/dev/null | python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(p["pm2_env"]["status"]=="online" for p in d))')" = 200 ]; do sleep 0.05; done
    p_on+=($(( $(now_ms) - s )))
    s=$(now_ms); "$PM2" stop all >/dev/null 2>&1; p_off+=($(( $(now_ms) - s )))
    "$PM2" delete all >/dev/null 2>&1
  fi
done
fmt_s() { if [ $# -eq 0 ]; then echo -; else printf '%s\n' "$@" | median | awk '{printf "%.2f", $1/1000}'; fi; }
row "200 processes: all online (s)" "$(fmt_s "${t_on[@]}")" "$(fmt_s "${p_on[@]+"${p_on[@]}"}")"
row "200 processes: stop all (s)" "$(fmt_s "${t_off[@]}")" "$(fmt_s "${p_off[@]+"${p_off[@]}"}")"

# --- 3. Log flood: 1,000,000 lines (67 MB) ---
flood() { # label tend_flags...
  local label=$1; shift
  local tw=() tc=() pw=() pc=() cw=()
  for r in $(seq "$RUNS"); do
    out=$WORK/cat.log; rm -f "$out"
    s=$(now_ms); (node "$WORK/flood.js" | cat > "$out") & cw+=($(wait_end "$out" "$s")); wait

    "$TEND" delete all -s >/dev/null 2>&1 || true
    out=$TEND_HOME/logs/flood-out.log; rm -f "$out"
    c0=$(cpu_ticks "$(tend_pid)")
    s=$(now_ms); "$TEND" start "$WORK/flood.js" --name flood --no-autorestart -s "$@"
    tw+=($(wait_end "$out" "$s"))
    tc+=($(( $(cpu_ticks "$(tend_pid)") - c0 )))
    lines=$(grep -c '^\(.*: \)\?line ' "$out")
    [ "$lines" = 1000000 ] || echo "tend lost lines: $lines of 1000000" >&2
    "$TEND" delete flood -s

    if [ $WITH_PM2 = 1 ]; then
      out=$PM2_HOME/logs/flood-out.log; rm -f "$out"
      c0=$(cpu_ticks "$(pm2_pid)")
      s=$(now_ms); "$PM2" start "$WORK/flood.js" --name flood --no-autorestart "$@" >/dev/null 2>&1
      pw+=($(wait_end "$out" "$s"))
      pc+=($(( $(cpu_ticks "$(pm2_pid)") - c0 )))
      "$PM2" delete flood >/dev/null 2>&1
    fi
  done
  row "log flood$label: wall (s)" "$(fmt_s "${tw[@]}")" "$(fmt_s "${pw[@]+"${pw[@]}"}")"
  row "log flood$label: same app piped to cat (s)" "$(fmt_s "${cw[@]}")" ""
  row "log flood$label: daemon CPU (s)" "$(printf '%s\n' "${tc[@]}" | median | awk '{printf "%.2f", $1/100}')" \
      "$( [ ${#pc[@]} -eq 0 ] && echo - || printf '%s\n' "${pc[@]}" | median | awk '{printf "%.2f", $1/100}')"
}
flood " (1000 lines a write)"
flood " (1000 lines a write) --time" --time
export FLOOD_LINES=1
flood " (console.log per line)"
flood " (console.log per line) --time" --time
