#!/usr/bin/env bash
# Benchmark weft against its peers with the shared harness (../shared/bench/peers): copy it to
# a scratch folder, build weft's bench programs (Release), add "weft" rows, run run-all.sh.
#   bench/compare.sh (~21 min)      QUICK=1 ONLY="spawn switch" PEERS='weft|tokio' bench/compare.sh
set -euo pipefail
# run-all.sh's knobs (QUICK ONLY PEERS RUNS DUR CONNS SIZES ... OUT) pass through the
# environment. Ours: WEFT_PEERS_DIR (scratch copy, default /tmp/weft-peers), WEFT_PEERS_SRC
# (harness to copy), WEFT_BUILD_DIR (default build-release), WEFT_NO_DEPS=1, WEFT_JOBS (2),
# WEFT_OWN_ROW=0 (no "weft own-stack" row: weft-bench-tasks with every task on a stack of its own).

ROOT=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)
SRC=${WEFT_PEERS_SRC:-$ROOT/../shared/bench/peers}
DEST=${WEFT_PEERS_DIR:-/tmp/weft-peers}
BUILD=${WEFT_BUILD_DIR:-$ROOT/build-release}
JOBS=${WEFT_JOBS:-2}
QUICK=${QUICK:-0}
ONLY=${ONLY:-"build floor fanout spawn switch echo http"}

step() { echo "+ $*"; "$@"; }
has() { [[ " $ONLY " == *" $1 "* ]]; }

[ -f "$SRC/run-all.sh" ] || { echo "compare.sh: no harness at $SRC (set WEFT_PEERS_SRC)" >&2; exit 1; }
SRC=$(cd "$SRC" && pwd)

if [ "${WEFT_NO_DEPS:-0}" != 1 ]; then
  step "$ROOT/scripts/deps.sh" build bench
fi

# ---- 1. scratch copy of the harness (the shared one is read-only and builds in place).
# Earlier results/ and built peers in DEST are kept; the sources are refreshed.
echo "== copying $SRC -> $DEST"
mkdir -p "$DEST"
cp -a "$SRC/." "$DEST/"
chmod -R u+w "$DEST"

# ---- 2. build weft's bench programs
echo "== building weft (Release) in $BUILD"
step cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release
targets=$(cmake --build "$BUILD" --target help 2>/dev/null || true)
want_targets=()
for t in weft-bench-tasks weft-bench-server; do
  if printf '%s\n' "$targets" | grep -qw -- "$t"; then want_targets+=("$t"); else echo "== target $t does not exist (yet); no weft rows for it"; fi
done
[ ${#want_targets[@]} -gt 0 ] || { echo "compare.sh: no weft bench target to build" >&2; exit 1; }
step cmake --build "$BUILD" -j "$JOBS" --target "${want_targets[@]}"

find_bin() { # find_bin NAME -> absolute path of the built program, or nothing
  if [ -x "$BUILD/bench/$1" ]; then echo "$BUILD/bench/$1"; return; fi
  find "$BUILD" -type f -name "$1" -perm -u+x 2>/dev/null | head -1
}
TASKS_BIN=$(find_bin weft-bench-tasks)
SERVER_BIN=$(find_bin weft-bench-server)

# ---- 3. the weft rows, sourced by peers.sh after its own table
{
  echo "# Written by weft's bench/compare.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ); rewritten on every run."
  echo "# weft commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (+ uncommitted changes)')"
  if [ -n "$TASKS_BIN" ]; then
    # weft's fanout sleepers are compact tasks; the second row states the default mode (stacks
    # of their own) beside it. WEFT_OWN_ROW=0 leaves it out.
    echo "TASK_PEERS+=(\"weft|$TASKS_BIN\")"
    if [ "${WEFT_OWN_ROW:-1}" != 0 ]; then echo "TASK_PEERS+=(\"weft own-stack|env WEFT_BENCH_STACK=own $TASKS_BIN\")"; fi
  fi
  if [ -n "$SERVER_BIN" ]; then
    echo "ECHO_PEERS+=(\"weft|$SERVER_BIN echo\")"
    echo "HTTP_PEERS+=(\"weft|$SERVER_BIN http\")"
  fi
} > "$DEST/peers.local.sh"
export PEERS_LOCAL="$DEST/peers.local.sh"
echo "== $PEERS_LOCAL:"
sed 's/^/   /' "$PEERS_LOCAL"

if [ -n "${PEERS:-}" ] && ! echo weft | grep -Eq -- "$PEERS"; then
  echo "== note: PEERS='$PEERS' does not match 'weft'; weft's rows will be filtered out"
fi

# run-all.sh builds its C helpers only in its 'build' step; without it they must exist.
if ! has build; then
  for f in runstat loadgen; do
    if [ ! -x "$DEST/c/bin/$f" ]; then
      mkdir -p "$DEST/c/bin"
      step gcc -O2 -Wall -Wextra -o "$DEST/c/bin/$f" "$DEST/c/$f.c"
    fi
  done
fi

# ---- 4. run the harness; OUT is fixed here so that we know where the report lands
# (run-all.sh moves results/latest only when QUICK is not 1).
if [ -z "${OUT:-}" ]; then
  if [ "$QUICK" = 1 ]; then OUT=results/quick-$(date +%Y%m%d-%H%M%S); else OUT=results/$(date +%Y%m%d-%H%M%S); fi
fi
export OUT
echo "== running $DEST/run-all.sh (QUICK=$QUICK ONLY='$ONLY' PEERS='${PEERS:-.}' OUT=$OUT)"
status=0
(cd "$DEST" && ./run-all.sh) || status=$?

case "$OUT" in /*) OUTDIR=$OUT ;; *) OUTDIR=$DEST/$OUT ;; esac
echo
if [ -f "$OUTDIR/report.md" ]; then
  echo "== weft vs peers (bench/ratios.py $OUTDIR/report.md):"
  python3 "$ROOT/bench/ratios.py" "$OUTDIR/report.md" || true
  echo
  echo "== report: $OUTDIR/report.md"
  if [ "$QUICK" != 1 ]; then echo "==         (also $DEST/results/latest/report.md)"; fi
  echo "== raw rows: $OUTDIR/*.tsv, logs: $OUTDIR/logs/"
else
  echo "== no report at $OUTDIR/report.md (run-all.sh exit $status); see $OUTDIR/run.log"
  [ "$status" != 0 ] || status=1
fi
exit "$status"
