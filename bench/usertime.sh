#!/usr/bin/env bash
# Server user time per request, measured finer than the harness's tick counts: each server runs
# pinned to CPU 0 under the harness's load (echo: c/bin/loadgen, 100 connections, 64 B; http:
# wrk -t1 -c100) on CPU 1, while `perf record -e cpu-clock -F 20000` samples it; the share of
# samples in user space times the CPU used per request gives user us/request. Runs are
# interleaved (one of each server, then again), so a noisy spell of the host falls on all.
#   bench/usertime.sh echo 3 weft=build-release/bench/weft-bench-server epoll=/tmp/weft-peers/c/bin/srv_epoll
#   bench/usertime.sh http 3 NAME=CMD ...      (CMD is given MODE PORT, as the harness does)
# Environment: DUR (seconds per run, 5), WEFT_PEERS_DIR (scratch harness copy with c/bin/loadgen
# built, /tmp/weft-peers: bench/compare.sh makes it), PORT (first port, 19500). Prints one line
# per run and a median line per server. Traffic stays on 127.0.0.1; every process is bounded.
set -euo pipefail
[ $# -ge 3 ] || { sed -n 2,11p "$0" >&2; exit 2; }
MODE=$1; ROUNDS=$2; shift 2
DUR=${DUR:-5}
PEERS=${WEFT_PEERS_DIR:-/tmp/weft-peers}
PORT=${PORT:-19500}
LG=$PEERS/c/bin/loadgen
command -v perf >/dev/null || { echo "usertime.sh: perf is not installed" >&2; exit 1; }
[ "$MODE" != echo ] || [ -x "$LG" ] || { echo "usertime.sh: no $LG (run bench/compare.sh once)" >&2; exit 1; }
[ "$MODE" != http ] || command -v wrk >/dev/null || { echo "usertime.sh: wrk is not installed" >&2; exit 1; }
TMP=$(mktemp -d)
SERVER=
trap '[ -z "$SERVER" ] || kill "$SERVER" 2>/dev/null; rm -rf "$TMP"' EXIT

one() { # one NAME CMD -> "NAME rps cpu_us user_frac user_us"
  local name=$1 cmd=$2 spid lg rps
  PORT=$((PORT + 1))
  # shellcheck disable=SC2086
  taskset -c 0 $cmd "$MODE" "$PORT" >/dev/null 2>&1 & # taskset execs: $! is the server
  spid=$!
  SERVER=$spid
  for _ in $(seq 50); do ss -ltn | grep -q ":$PORT " && break; sleep 0.1; done
  if [ "$MODE" = echo ]; then
    timeout $((DUR + 15)) taskset -c 1 "$LG" -p "$PORT" -c 100 -s 64 -d $((DUR + 1)) -w 1 >"$TMP/lg" 2>&1 &
  else
    timeout $((DUR + 15)) taskset -c 1 wrk -t1 -c100 -d$((DUR + 2))s "http://127.0.0.1:$PORT/" >"$TMP/lg" 2>&1 &
  fi
  lg=$!
  sleep 1.2
  perf record -q -e cpu-clock -F 20000 -p "$spid" -o "$TMP/perf.data" -- sleep $((DUR - 1)) 2>/dev/null || true
  wait "$lg" || true
  kill "$spid" 2>/dev/null || true; wait "$spid" 2>/dev/null || true; SERVER=
  if [ "$MODE" = echo ]; then rps=$(grep -o 'rps=[0-9.]*' "$TMP/lg" | cut -d= -f2)
  else rps=$(awk '/Requests\/sec/ {print $2}' "$TMP/lg"); fi
  # Samples taken while the server ran; kernel addresses are the top half of the address space.
  perf script -i "$TMP/perf.data" -F ip 2>/dev/null | awk -v n="$name" -v rps="${rps:-0}" -v d=$((DUR - 1)) '
    { if ($1 ~ /^ffff/) k++; else u++ }
    END { if (rps <= 0 || u + k == 0) { print n, "NA NA NA NA"; exit }
          cpu = (u + k) / 20000 / d; f = u / (u + k)
          printf "%s %.0f %.3f %.4f %.4f\n", n, rps, cpu * 1e6 / rps, f, f * cpu * 1e6 / rps }'
}

for r in $(seq "$ROUNDS"); do
  for spec in "$@"; do
    one "${spec%%=*}" "${spec#*=}" | tee -a "$TMP/rows" |
      awk -v r="$r" '{ printf "run %d  %-12s rps %8s  cpu us/req %s  user share %s  user us/req %s\n", r, $1, $2, $3, $4, $5 }'
  done
done
echo "medians over $ROUNDS runs:"
for spec in "$@"; do
  awk -v n="${spec%%=*}" '$1 == n && $5 != "NA" { print $5, $4, $3 }' "$TMP/rows" | sort -n |
    awk -v n="${spec%%=*}" '{ u[NR] = $1; f[NR] = $2; c[NR] = $3 } END { if (NR == 0) { print n, "no data"; exit }
      m = int((NR + 1) / 2); printf "  %-12s user us/req %.3f  (user share %.4f, cpu us/req %.3f of that run)\n", n, u[m], f[m], c[m] }'
done
