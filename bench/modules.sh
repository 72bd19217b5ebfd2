#!/bin/bash
# Every module benchmark, one after the other (docs/benchmarks.md, "Session 6"): the HTTP parser
# against libhttp-parser, the curl client, the HTTP server, TLS, PostgreSQL, files and spawn.
# Run it on a quiet machine: each writes its table to OUT (default /tmp/weft-modules-bench).
#   bench/modules.sh                 (about 10 minutes on 2 cores)
# Needs the peers of each script (scripts/deps.sh bench modules; Node, cargo for the Tokio peer).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-/tmp/weft-modules-bench}
cd "$ROOT"
mkdir -p "$OUT"
echo "start $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) commit $(git rev-parse --short HEAD)" > "$OUT/meta.txt"
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release >/dev/null &&
  cmake --build build-release -j2 >/dev/null 2>&1 || { echo "bench/modules.sh: build failed" >&2; exit 1; }
for _ in 1 2 3; do build-release/src/http/weft-bench-http-parse 0.5 2>&1 | tail -3; done > "$OUT/parse.txt"
ROUNDS=3 bench/curl/run.sh > "$OUT/curl.txt" 2>&1
bench/http/compare.sh > "$OUT/http.txt" 2>&1
DUR=4 bench/tls_compare.sh build-release > "$OUT/tls.txt" 2>&1
python3 bench/pg/run.py > "$OUT/pg.txt" 2>&1
bench/files.sh build-release > "$OUT/files.txt" 2>&1
ROUNDS=5 bench/spawn.sh > "$OUT/spawn.txt" 2>&1
echo "end $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/meta.txt"
echo "results in $OUT"
