#!/usr/bin/env bash
# Instruction counts of weft's hot paths under callgrind (docs/benchmarks.md, "Instruction
# counts"). Builds Release with -g in its own build dir, runs every operation of
# weft-bench-ops at two counts and the echo / http-hello servers (weft's and the harness's C
# epoll server) under a bounded loopback client at two request counts, and prints
# "operation | instructions per op" with the functions the instructions go to.
#   bench/profile.sh                 everything (~3 min on the project VM)
#   bench/profile.sh yield timer     only these (ops of weft-bench-ops, or echo, http)
# Environment: WEFT_PROF_BUILD (default build-prof), WEFT_PROF_OUT (callgrind files, default
# /tmp/weft-prof), N1/N2 (op counts, default 10000/20000), REQ1/REQ2 (requests, 2000/4000),
# TOP (functions listed per row, 5), CONNS (the second server load: that many connections in
# lock-step, 50), WEFT_PEERS_SRC (the harness, for srv_epoll.c), PORT (18911).
# Callgrind counts instructions executed in user space, so they repeat to the instruction from
# run to run (the servers' to within a few instructions per request: wake-ups and partial reads
# depend on timing) and do not depend on the machine's speed: a regression shows as a number
# that moved.
set -euo pipefail

ROOT=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)
BUILD=${WEFT_PROF_BUILD:-$ROOT/build-prof}
OUT=${WEFT_PROF_OUT:-/tmp/weft-prof}
N1=${N1:-10000}
N2=${N2:-20000}
REQ1=${REQ1:-2000}
REQ2=${REQ2:-4000}
TOP=${TOP:-5}
PORT=${PORT:-18911}
CONNS=${CONNS:-50}
PEERS_SRC=${WEFT_PEERS_SRC:-$ROOT/../shared/bench/peers}
OPS_ALL="yield sleep0 spawn-join iteration timer timer-arm timer-cancel event-handoff sleep"
WANT=${*:-"$OPS_ALL echo http"}

command -v valgrind >/dev/null || { echo "profile.sh: valgrind is not installed" >&2; exit 1; }
command -v python3 >/dev/null || { echo "profile.sh: python3 is not installed" >&2; exit 1; }

echo "== building Release + -g in $BUILD" >&2
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS=-g \
  -DWEFT_BUILD_TESTS=OFF -DWEFT_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$BUILD" -j 2 --target weft-bench-ops weft-bench-server >/dev/null
OPS_BIN=$BUILD/bench/weft-bench-ops
SERVER_BIN=$BUILD/bench/weft-bench-server
mkdir -p "$OUT"

CG=(valgrind --tool=callgrind --separate-recs=1)
RESULTS=$OUT/results.txt
: >"$RESULTS"

row() { # row NAME A.cg NA B.cg NB
  local j
  j=$(python3 "$ROOT/bench/cgdiff.py" --json --top "$TOP" "$2" "$3" "$4" "$5")
  printf '%s\t%s\n' "$1" "$j" >>"$RESULTS"
}

# ---- weft-bench-ops
for op in $OPS_ALL; do
  [[ " $WANT " == *" $op "* ]] || continue
  for n in "$N1" "$N2"; do
    echo "== $op $n" >&2
    "${CG[@]}" --callgrind-out-file="$OUT/$op.$n.cg" "$OPS_BIN" "$op" "$n" >/dev/null 2>"$OUT/$op.$n.log" ||
      { echo "profile.sh: weft-bench-ops $op $n failed, see $OUT/$op.$n.log" >&2; exit 1; }
  done
  row "$op" "$OUT/$op.$N1.cg" "$N1" "$OUT/$op.$N2.cg" "$N2"
done

# ---- servers: one connection, one request at a time (64-byte echo, or a GET for http-hello)
client() { # client MODE PORT COUNT CONNS: CONNS connections (retrying while the server starts),
  # COUNT requests in all, in rounds of one request per connection
  python3 - "$@" <<'EOF'
import socket, sys, time
mode, port, count, conns = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
req = b"x" * 64 if mode == "echo" else b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
resp = 64 if mode == "echo" else len(b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n"
                                     b"Content-Type: text/plain\r\n\r\nHello, World!")
def connect():
    for _ in range(600):
        try:
            return socket.create_connection(("127.0.0.1", port))
        except OSError:
            time.sleep(0.1)
    sys.exit("client: no server on port %d" % port)
socks = [connect() for _ in range(conns)]
for s in socks:
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
for _ in range(count // conns):
    for s in socks:
        s.sendall(req)
    for s in socks:
        got = 0
        while got < resp:
            b = s.recv(resp - got)
            if not b:
                sys.exit("client: server closed the connection")
            got += len(b)
for s in socks:
    s.close()
EOF
}

serve() { # serve NAME MODE CONNS COUNT CMD...: CMD under callgrind, COUNT requests, SIGTERM, wait
  local name=$1 mode=$2 conns=$3 count=$4 f
  shift 4
  f=$OUT/$name-$mode-c$conns.$count
  "${CG[@]}" --callgrind-out-file="$f.cg" "$@" "$mode" "$PORT" >"$f.log" 2>&1 &
  local pid=$!
  if ! client "$mode" "$PORT" "$count" "$conns"; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" || true
    echo "profile.sh: $name $mode: client failed" >&2
    exit 1
  fi
  sleep 0.5
  kill -TERM "$pid"
  wait "$pid" || true # srv_epoll dies of the signal; callgrind still writes its file
  [ -s "$f.cg" ] || { echo "profile.sh: no callgrind output for $name $mode, see $f.log" >&2; exit 1; }
}

EPOLL_BIN=
if [[ " $WANT " == *" echo "* || " $WANT " == *" http "* ]]; then
  if [ -f "$PEERS_SRC/c/srv_epoll.c" ]; then
    # A scratch copy of the harness (the shared one is read-only); srv_epoll built as run-all.sh
    # builds it.
    mkdir -p "$OUT/peers"
    cp -a "$PEERS_SRC/." "$OUT/peers/"
    chmod -R u+w "$OUT/peers"
    gcc -O2 -g -o "$OUT/srv_epoll" "$OUT/peers/c/srv_epoll.c"
    EPOLL_BIN=$OUT/srv_epoll
  else
    echo "== no harness at $PEERS_SRC: no C epoll rows (set WEFT_PEERS_SRC)" >&2
  fi
fi
for mode in echo http; do
  [[ " $WANT " == *" $mode "* ]] || continue
  for conns in 1 $CONNS; do
    for r in "$REQ1" "$REQ2"; do
      echo "== weft $mode, $conns connection(s), $r requests" >&2
      serve weft "$mode" "$conns" "$r" "$SERVER_BIN"
      if [ -n "$EPOLL_BIN" ]; then
        echo "== C epoll $mode, $conns connection(s), $r requests" >&2
        serve epoll "$mode" "$conns" "$r" "$EPOLL_BIN"
      fi
    done
    for name in weft epoll; do
      [ "$name" = weft ] || [ -n "$EPOLL_BIN" ] || continue
      label="weft-bench-server"
      [ "$name" = weft ] || label="C epoll srv_epoll"
      row "$mode request, $conns conn, $label" "$OUT/$name-$mode-c$conns.$REQ1.cg" "$REQ1" \
        "$OUT/$name-$mode-c$conns.$REQ2.cg" "$REQ2"
    done
  done
done

# ---- the table
COMMIT="$(git -C "$ROOT" rev-parse --short HEAD) (src/ and include/ last changed in $(git -C "$ROOT" log -1 --format=%h -- src include))"
git -C "$ROOT" diff --quiet HEAD -- src include || COMMIT="$COMMIT + uncommitted changes to src/ or include/"
echo "weft commit $COMMIT; callgrind $(valgrind --version | sed 's/valgrind-//'), $(${CC:-cc} --version | head -1)"
echo "ops: N = $N1 and $N2; servers: $REQ1 and $REQ2 requests"
python3 - "$RESULTS" <<'EOF'
import json, sys
rows = [l.rstrip("\n").split("\t", 1) for l in open(sys.argv[1])]
d = {name: json.loads(j) for name, j in rows}
print("\n| operation | instructions per op |\n|---|---:|")
for name, _ in rows:
    print(f"| {name} | {d[name]['per_op']:.1f} |")
if "timer" in d and "timer-arm" in d:
    print(f"| timer fire (timer - timer-arm) | {d['timer']['per_op'] - d['timer-arm']['per_op']:.1f} |")
print("\nwhere they go (per op; self = the function's own instructions, inlined helpers included;")
print("inclusive = with callees, for functions that do not span a context switch):")
for name, _ in rows:
    print(f"\n{name}:")
    print("  self:      " + ", ".join(f"{n} {c:.0f}" for n, c in d[name]["self"]))
    print("  inclusive: " + (", ".join(f"{n} {c:.0f}" for n, c in d[name]["inclusive"]) or "-"))
EOF

if perf stat -e instructions true >/dev/null 2>"$OUT/perf.log" &&
  ! grep -q "not supported" "$OUT/perf.log"; then
  echo
  echo "perf stat (cycles, instructions) of weft-bench-ops at N=$N2, whole program:"
  for op in $OPS_ALL; do
    [[ " $WANT " == *" $op "* ]] || continue
    perf stat -x, -e cycles,instructions "$OPS_BIN" "$op" "$N2" 2>&1 >/dev/null |
      awk -F, -v op="$op" '{printf "  %s %s %s\n", op, $3, $1}'
  done
else
  echo
  echo "perf stat: hardware counters not available here (perf stat -e instructions: not supported);"
  echo "callgrind counts only."
fi
