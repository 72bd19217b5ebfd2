#!/usr/bin/env bash
# The one command that builds weft and runs every test: stages debug, asan, valgrind, arm64,
# each in its own build directory, stopping at the first failure; last line "N passed, N failed".
#   scripts/test.sh          (CI=true: -Werror, no skipping)   WEFT_STAGES="debug asan" scripts/test.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# Stages (build dir, build type, what):
#   debug     build/        Debug    everything, ctest (-DWEFT_WERROR=ON under CI)
#   asan      build-asan/   Debug    -DWEFT_SANITIZE=ON (ASan+UBSan), ctest
#   tsan      build-tsan/   Debug    -fsanitize=thread, the tests that use threads (labels core, pool)
#   valgrind  build-vg/     Release  core tests, built with -g, each test under valgrind memcheck
#   arm64     build-arm64/  Release  core tests, built with -g, cross-built for aarch64, run under qemu-user
# The two Release stages make sure optimised code (inline asm clobbers, UB the optimiser exploits)
# is tested too. Knobs: WEFT_STAGES, WEFT_NO_DEPS=1 (skip scripts/deps.sh), WEFT_JOBS (2),
# WEFT_TEST_TIMEOUT (300 s, for tests without their own TIMEOUT), WEFT_CMAKE_ARGS (extra
# configure arguments for every stage). The valgrind and arm64 stages export WEFT_SKIP_SLOW=1:
# tests too slow under emulation (the million-task scale test) skip themselves there.
ALL_STAGES="debug asan tsan valgrind arm64"
STAGES=${WEFT_STAGES:-$ALL_STAGES}
JOBS=${WEFT_JOBS:-2}
TEST_TIMEOUT=${WEFT_TEST_TIMEOUT:-300}
read -r -a EXTRA_CMAKE <<< "${WEFT_CMAKE_ARGS:-}"
VALGRIND_WRAPPER="valgrind;--error-exitcode=99;--leak-check=full;--errors-for-leak-kinds=definite,indirect;--show-leak-kinds=definite,indirect"
TOOLCHAIN="$ROOT/cmake/aarch64-linux-gnu.cmake"

# CI=true (or any value but "", 0, false) means: warnings are errors, and no stage may be skipped.
case "${CI:-}" in ""|0|false|False|FALSE) IN_CI=0 ;; *) IN_CI=1 ;; esac

for s in $STAGES; do
  [[ " $ALL_STAGES " == *" $s "* ]] || { echo "test.sh: unknown stage '$s' (known: $ALL_STAGES)" >&2; exit 2; }
done

step() { echo "+ $*"; "$@"; }

configure_build_test() { # DIR CMAKE-ARGS... : configure, build everything, run ctest
  local dir=$1; shift
  step cmake -S "$ROOT" -B "$dir" "$@" ${EXTRA_CMAKE[@]+"${EXTRA_CMAKE[@]}"} &&
  step cmake --build "$dir" -j "$JOBS" &&
  step ctest --test-dir "$dir" --output-on-failure --no-tests=error -j "$JOBS" --timeout "$TEST_TIMEOUT"
}

stage_debug() {
  local werror=OFF
  if [ "$IN_CI" = 1 ]; then werror=ON; fi
  configure_build_test build -DCMAKE_BUILD_TYPE=Debug -DWEFT_WERROR="$werror"
}

stage_asan() {
  # Our defaults first; anything already in the environment comes later and wins.
  export ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:detect_leaks=1:strict_string_checks=1:check_initialization_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
  echo "ASAN_OPTIONS=$ASAN_OPTIONS"
  echo "UBSAN_OPTIONS=$UBSAN_OPTIONS"
  configure_build_test build-asan -DCMAKE_BUILD_TYPE=Debug -DWEFT_SANITIZE=ON
}

stage_valgrind() {
  command -v valgrind >/dev/null || { echo "valgrind not found (scripts/deps.sh test)"; return 1; }
  export WEFT_SKIP_SLOW=1 # tests too slow under emulation skip themselves (exit 77)
  configure_build_test build-vg -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS=-g \
    -DWEFT_CORE_TESTS_ONLY=ON "-DWEFT_TEST_WRAPPER=$VALGRIND_WRAPPER"
}

arm64_missing() { # prints what is missing for the arm64 stage, if anything
  local m=()
  command -v aarch64-linux-gnu-gcc >/dev/null || m+=(aarch64-linux-gnu-gcc)
  command -v qemu-aarch64 >/dev/null || m+=(qemu-aarch64)
  [ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || m+=(/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1)
  echo "${m[*]-}"
}

stage_tsan() {
  # The tests that use threads (the core's cross-thread calls, the thread pool) under TSan.
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
  step cmake -S "$ROOT" -B build-tsan -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_C_FLAGS=-fsanitize=thread -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread \
    -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread -DWEFT_BUILD_EXAMPLES=OFF -DWEFT_BUILD_BENCH=OFF \
    ${EXTRA_CMAKE[@]+"${EXTRA_CMAKE[@]}"} &&
  step cmake --build build-tsan -j "$JOBS" &&
  step ctest --test-dir build-tsan --output-on-failure --no-tests=error -j "$JOBS" \
    --timeout "$TEST_TIMEOUT" -L 'core|pool'
}

stage_arm64() {
  # The toolchain of an existing cache cannot be changed: start over if it is not ours.
  if [ -f build-arm64/CMakeCache.txt ] && ! grep -q 'aarch64-linux-gnu-gcc' build-arm64/CMakeCache.txt; then
    echo "build-arm64/ was configured without the aarch64 toolchain; removing it"
    rm -rf build-arm64
  fi
  export WEFT_SKIP_SLOW=1 # tests too slow under emulation skip themselves (exit 77)
  configure_build_test build-arm64 "-DCMAKE_TOOLCHAIN_FILE=$TOOLCHAIN" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS=-g -DWEFT_CORE_TESTS_ONLY=ON
}

banner() {
  echo
  echo "======================================================================"
  echo "== $*"
  echo "======================================================================"
}

T0=$SECONDS
if [ "${WEFT_NO_DEPS:-0}" != 1 ]; then
  banner "deps: scripts/deps.sh all"
  scripts/deps.sh all || echo "test.sh: WARNING: scripts/deps.sh failed; stages needing the missing packages will fail"
fi

passed=0 failed=0 failed_stage='' n=0 total=$(wc -w <<< "$STAGES")
notes=()
for s in $STAGES; do
  n=$((n + 1))
  if [ "$s" = arm64 ]; then
    miss=$(arm64_missing)
    if [ -n "$miss" ]; then
      if [ "$IN_CI" = 1 ]; then
        banner "stage $n/$total: arm64 -- FAILED: missing $miss (required under CI; scripts/deps.sh cross)"
        failed=$((failed + 1)); failed_stage=arm64; notes+=("arm64 FAILED (missing $miss)")
        break
      fi
      banner "stage $n/$total: arm64 -- SKIPPED: missing $miss (install with: scripts/deps.sh cross)"
      notes+=("arm64 SKIPPED (missing $miss)")
      continue
    fi
  fi
  banner "stage $n/$total: $s"
  t=$SECONDS
  if ( "stage_$s" ); then
    passed=$((passed + 1)); notes+=("$s ok ($((SECONDS - t)) s)")
    echo "== stage $s: PASSED in $((SECONDS - t)) s"
  else
    failed=$((failed + 1)); failed_stage=$s; notes+=("$s FAILED ($((SECONDS - t)) s)")
    echo "== stage $s: FAILED after $((SECONDS - t)) s"
    break
  fi
done

# Stages never reached because an earlier one failed.
if [ -n "$failed_stage" ]; then
  after=0
  for s in $STAGES; do
    if [ "$after" = 1 ]; then notes+=("$s not run"); fi
    if [ "$s" = "$failed_stage" ]; then after=1; fi
  done
fi

summary=$(printf '%s, ' "${notes[@]}"); summary=${summary%, }
banner "summary ($((SECONDS - T0)) s): $summary"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
