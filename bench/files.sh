#!/bin/bash
# File benchmarks (docs/benchmarks.md, "Files"): weft's two file engines beside fio (psync with
# the pool's number of threads, io_uring at the same depth), Node's fs.promises and Tokio's
# tokio::fs, on one file in the page cache; then examples/wc over 10,000 small files beside
# coreutils wc.
#
#   bench/files.sh [BUILD_DIR]       (a Release build with bench/ and examples/; default build-rel)
#   SIZE_MB=1024 SECS=2 DIR=/var/tmp/weft-files bench/files.sh
#
# Needs fio (apt-get install fio), node, and cargo with librust-tokio-dev for the Tokio peer
# (built offline; skipped if that fails).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build-rel}" && pwd)
SIZE_MB=${SIZE_MB:-1024}
SECS=${SECS:-2}
DIR=${DIR:-/var/tmp/weft-files}
BENCH=$BUILD/bench/weft-bench-files
WC=$BUILD/examples/wc
NPROC=$(nproc)
POOL=$(( NPROC + 4 < 32 ? NPROC + 4 : 32 )) # the pool's size: fio psync gets as many threads
mkdir -p "$DIR"
F=$DIR/big-$SIZE_MB
[ -f "$F" ] && [ "$(stat -c %s "$F")" = $((SIZE_MB << 20)) ] || head -c "${SIZE_MB}M" /dev/urandom > "$F"
cat "$F" > /dev/null # into the page cache

TOKIO=""
if command -v cargo >/dev/null; then
  (cd "$ROOT/bench/files/tokio" && CARGO_TARGET_DIR=$BUILD/tokio timeout 600 cargo build --release --offline -q) \
    && TOKIO=$BUILD/tokio/release/files-tokio || echo "# Tokio peer: build failed, skipped"
fi

res() { sed -n 's/.*iops=\([0-9.]*\) mib_s=\([0-9.]*\).*/\1 \2/p'; }
fio_run() {
  fio --name=b --filename="$F" --readonly --invalidate=0 --time_based --runtime="$SECS" \
      --group_reporting --output-format=json "$@" 2>/dev/null |
    python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]["read"]; print("%.0f %.1f"%(j["iops"], j["bw_bytes"]/1048576))'
}
row() { printf '%-14s %-34s %10s %10s\n' "$1" "$2" "$3" "$4"; }

echo "# $(date -u +%FT%TZ) $(uname -r) cpus=$NPROC pool=$POOL file=${SIZE_MB}MiB secs=$SECS load=$(cut -d' ' -f1-3 /proc/loadavg)"
row case peer iops MiB/s
for c in "rand4k 1" "rand4k 64" "seq1m 1"; do
  set -- $c
  mode=$1 depth=$2
  if [ "$mode" = rand4k ]; then rw=randread bs=4k; else rw=read bs=1M; fi
  jobs=1; [ "$depth" -gt 1 ] && jobs=$POOL
  row "$mode qd$depth" "weft pool" $(WEFT_FILE_ENGINE=pool "$BENCH" "$mode" "$depth" "$SECS" "$F" | res)
  row "$mode qd$depth" "weft io_uring" $(WEFT_FILE_ENGINE=uring "$BENCH" "$mode" "$depth" "$SECS" "$F" | res)
  row "$mode qd$depth" "fio psync numjobs=$jobs" $(fio_run --rw=$rw --bs=$bs --ioengine=psync --numjobs=$jobs)
  row "$mode qd$depth" "fio io_uring iodepth=$depth" $(fio_run --rw=$rw --bs=$bs --ioengine=io_uring --iodepth=$depth)
  row "$mode qd$depth" "node fs.promises" $(node "$ROOT/bench/files/node.mjs" "$mode" "$depth" "$SECS" "$F" | res)
  [ -n "$TOKIO" ] && row "$mode qd$depth" "tokio::fs" $("$TOKIO" "$mode" "$depth" "$SECS" "$F" | res)
done

# wc over 10,000 small files (0.5-8 KiB of text each), best of 3 runs.
S=$DIR/small
if [ ! -f "$S/f9999" ]; then
  mkdir -p "$S"
  python3 - "$S" <<'PY'
import os, random, sys
random.seed(1)
words = [w.strip() for w in open("/usr/share/common-licenses/GPL-3").read().split()][:5000]
for i in range(10000):
    n = random.randint(100, 1600)
    with open(os.path.join(sys.argv[1], "f%d" % i), "w") as f:
        f.write(" ".join(random.choice(words) + ("\n" if random.random() < 0.1 else "") for _ in range(n)))
PY
fi
cat "$S"/* > /dev/null
best() { # best wall time of 3 runs, in ms
  local b=999999
  for _ in 1 2 3; do
    local t0=$(date +%s%N); "$@" > /dev/null; local t1=$(date +%s%N)
    local ms=$(( (t1 - t0) / 1000000 )); [ $ms -lt $b ] && b=$ms
  done
  echo $b
}
cd "$S"
files=$(ls | sort -V)
cmp <(wc $files) <("$WC" $files) >/dev/null && same=identical || same=DIFFERENT
echo "# wc over 10,000 files: output $same to coreutils"
row "wc 10k files" "coreutils wc" "$(best wc $files) ms" ""
row "wc 10k files" "weft wc (pool)" "$(WEFT_FILE_ENGINE=pool best "$WC" $files) ms" ""
row "wc 10k files" "weft wc (io_uring)" "$(WEFT_FILE_ENGINE=uring best "$WC" $files) ms" ""
