#!/usr/bin/env bash
# Build weft (Release, in build/) and run the seed example, the asyncio tutorial's
# program written with weft. Installs only the build packages if they are missing.
#   scripts/seed.sh [ARGS...]     ARGS go to build/examples/seed
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
JOBS=${WEFT_JOBS:-2}
T0=$(date +%s.%N)

step() { echo "+ $*"; "$@"; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b - a}'; }

if [ "${WEFT_NO_DEPS:-0}" != 1 ]; then
  step scripts/deps.sh build
fi
step cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
step cmake --build build -j "$JOBS" --target seed seed_sync
echo "== built in $(since "$T0") s"

echo
T1=$(date +%s.%N)
step build/examples/seed "$@"
echo
echo "== seed ran in $(since "$T1") s (total $(since "$T0") s)"
echo "== its serial version (blocking sleeps, about twice as long) is built too: build/examples/seed_sync"
