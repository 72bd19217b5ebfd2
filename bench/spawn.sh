#!/usr/bin/env bash
# Spawn + wait of /bin/true: weft (its asynchronous exec, and `weft-vfork`: the same binary forced
# onto its posix_spawnp fallback) beside the raw posix_spawn+waitpid floor, libuv's uv_spawn,
# Go's os/exec and Python's asyncio, one after the other (seq) and 64 at a time (par), with a
# parent heap of 0 and of 1 GiB (touched). Each run reports wall time and CPU time (user + system
# of the program and its reaped children) per spawn; the CPU figure is what a spawn costs, the
# wall figure also measures how long the machine's scheduler makes each step wait (a loaded
# machine). Prints one line per run and tables of medians with each figure's ratio to the floor
# of the same column.
#   bench/spawn.sh                 N=300 (spawns per run) ROUNDS=3 HEAPS="0 1024" PEERS="..."
# Needs: cc, libuv1-dev, golang-go, python3 (scripts/deps.sh bench).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${WEFT_BUILD_DIR:-$ROOT/build-release}
OUT=${OUT:-/tmp/weft-spawn-bench}
N=${N:-300}
ROUNDS=${ROUNDS:-3}
HEAPS=${HEAPS:-"0 1024"}
PEERS=${PEERS:-"floor weft weft-vfork libuv go asyncio"}
PY=${PYTHON:-python3}
mkdir -p "$OUT"

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j2 --target weft-bench-spawn >/dev/null
cc -O2 -o "$OUT/floor" "$ROOT/bench/spawn/floor.c"
if [[ " $PEERS " == *" libuv "* ]]; then cc -O2 -o "$OUT/uv" "$ROOT/bench/spawn/uv.c" -luv; fi
if [[ " $PEERS " == *" go "* ]]; then
  (cd "$ROOT/bench/spawn" && GOCACHE=$OUT/gocache go build -o "$OUT/spawn-go" spawn.go)
fi

cmd_of() {
  case "$1" in
    floor) echo "$OUT/floor" ;;
    weft) echo "$BUILD/bench/weft-bench-spawn" ;;
    weft-vfork) echo "env WEFT_SPAWN=posix_spawn $BUILD/bench/weft-bench-spawn" ;; # the fallback
    libuv) echo "$OUT/uv" ;;
    go) echo "$OUT/spawn-go" ;;
    asyncio) echo "$PY $ROOT/bench/spawn/spawn.py" ;;
  esac
}

echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg)," \
  "weft $(git -C "$ROOT" rev-parse --short HEAD), $($PY --version 2>&1), $(go version | cut -d' ' -f3)"
results=$OUT/results.txt
: >"$results"
for r in $(seq "$ROUNDS"); do
  for heap in $HEAPS; do
    for mode in seq par; do
      for p in $PEERS; do # interleaved, so that a change in the machine's load hits every peer
        line=$($(cmd_of "$p") "$mode" "$N" "$heap")
        echo "$line"
        echo "$p $mode $heap $(echo "$line" | awk '{print $6, $8}')" >>"$results"
      done
    done
  done
done

python3 - "$results" "$HEAPS" "$PEERS" <<'PYEOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
heaps, peers = sys.argv[2].split(), sys.argv[3].split()
cols = [(m, h) for h in heaps for m in ("seq", "par")]
for k, what in ((3, "wall"), (4, "cpu")):
    med = {}
    for r in rows:
        med.setdefault((r[0], r[1], r[2]), []).append(float(r[k]))
    med = {key: statistics.median(v) for key, v in med.items()}
    print(f"\nmedian {what} us per spawn+wait (ratio to the floor of the column)")
    print("| peer | " + " | ".join(f"{m} heap {h} MiB" for m, h in cols) + " |")
    print("|---|" + "---|" * len(cols))
    for p in peers:
        cells = []
        for m, h in cols:
            v, f = med.get((p, m, h)), med.get(("floor", m, h))
            cells.append("-" if v is None else f"{v:.0f} ({v / f:.2f}x)" if f else f"{v:.0f}")
        print(f"| {p} | " + " | ".join(cells) + " |")
    if "weft" in peers and len(heaps) > 1:
        for m in ("seq", "par"):
            a, b = med.get(("weft", m, heaps[0])), med.get(("weft", m, heaps[-1]))
            if a and b:
                print(f"weft {what} {m}: heap {heaps[-1]} MiB / heap {heaps[0]} MiB = {b / a:.2f}x")
PYEOF
