#!/usr/bin/env bash
# The one command that builds weft and runs every test: stages debug, asan, tsan, valgrind, arm64,
# each in its own build directory. Every stage runs even when an earlier one failed; the last line
# is "N passed, N failed" and the exit status is non-zero when any stage failed.
#   scripts/test.sh          (CI=true: -Werror, every module required, no stage skipped)
#   WEFT_STAGES="debug asan" scripts/test.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# Stages (build dir, build type, what):
#   debug     build/        Debug    everything, ctest (-DWEFT_WERROR=ON under CI)
#   asan      build-asan/   Debug    -DWEFT_SANITIZE=ON (ASan+UBSan), ctest
#   tsan      build-tsan/   Debug    -fsanitize=thread, the tests that use threads (labels core,
#                                    pool, tsan)
#   valgrind  build-vg/     Release  built with -g, the tests labelled core or memcheck, each under
#                                    valgrind memcheck
#   arm64     build-arm64/  Release  core tests and the HTTP parser's (its portable scan path),
#                                    built with -g, cross-built for aarch64, run under qemu-user
#                                    (other module tests off: their dependencies are not cross-built)
#   fuzz      build-fuzz/   clang    the HTTP parser's libFuzzer target for WEFT_FUZZ_SECONDS (60)
#                                    on one core, from its seed corpus (scripts/fuzz-http.sh)
# The two Release stages make sure optimised code (inline asm clobbers, UB the optimiser exploits)
# is tested too. Each test has its own time limit (60 s unless its CMakeLists.txt says otherwise),
# sized for a loaded 2-core machine in the debug stage and scaled per stage by how much slower the
# stage runs code: asan 2x, tsan 4x, valgrind 8x, arm64 8x.
# A failed test is run a second time (ctest --repeat until-pass:2), as CPython's CI reruns its
# failed tests: one that then passes does not fail the stage, but the summary names it as FLAKY
# (with its first run's output above), so an intermittent failure is seen and fixed, not hidden.
# Knobs: WEFT_STAGES, WEFT_FUZZ_SECONDS (60), WEFT_NO_DEPS=1 (skip scripts/deps.sh), WEFT_JOBS (2), WEFT_TIMEOUT_SCALE
# (an extra factor on every limit, e.g. 2 on a slow machine), WEFT_CMAKE_ARGS (extra configure
# arguments for every stage). The valgrind and arm64 stages export WEFT_SKIP_SLOW=1: tests too
# slow under emulation (the million-task scale test) skip themselves there.
ALL_STAGES="debug asan tsan valgrind arm64 fuzz"
STAGES=${WEFT_STAGES:-$ALL_STAGES}
JOBS=${WEFT_JOBS:-2}
TIMEOUT_SCALE=${WEFT_TIMEOUT_SCALE:-1}
[[ "$TIMEOUT_SCALE" =~ ^[1-9][0-9]*$ ]] || { echo "test.sh: WEFT_TIMEOUT_SCALE must be a positive integer" >&2; exit 2; }
read -r -a EXTRA_CMAKE <<< "${WEFT_CMAKE_ARGS:-}"
VALGRIND_WRAPPER="valgrind;--error-exitcode=99;--leak-check=full;--errors-for-leak-kinds=definite,indirect;--show-leak-kinds=definite,indirect"
TOOLCHAIN="$ROOT/cmake/aarch64-linux-gnu.cmake"

# CI=true (or any value but "", 0, false) means: warnings are errors, and no stage may be skipped.
case "${CI:-}" in ""|0|false|False|FALSE) IN_CI=0 ;; *) IN_CI=1 ;; esac

for s in $STAGES; do
  [[ " $ALL_STAGES " == *" $s "* ]] || { echo "test.sh: unknown stage '$s' (known: $ALL_STAGES)" >&2; exit 2; }
done

step() { echo "+ $*"; "$@"; }

# The time-limit factor of a stage (see the top).
scale_of() {
  local f
  case "$1" in debug) f=1 ;; asan) f=2 ;; tsan) f=4 ;; valgrind|arm64) f=8 ;; esac
  echo $((f * TIMEOUT_SCALE))
}

# Modules are required under CI, except on arm64 (their dependencies are not cross-built).
modules_arg() {
  if [ "$IN_CI" = 1 ] && [ "$1" != arm64 ]; then echo -DWEFT_REQUIRE_MODULES=ON; else echo -DWEFT_REQUIRE_MODULES=OFF; fi
}

configure_build_test() { # STAGE DIR LABEL-REGEX CMAKE-ARGS... : configure, build, run ctest
  local stage=$1 dir=$2 labels=$3; shift 3
  local sel=()
  if [ -n "$labels" ]; then sel=(-L "$labels"); fi
  rm -f "$dir/Testing/Temporary/LastTestsFailed.log" # failed_tests must not read an older run's
  step cmake -S "$ROOT" -B "$dir" "$@" "$(modules_arg "$stage")" \
    "-DWEFT_TEST_TIMEOUT_MULTIPLIER=$(scale_of "$stage")" ${EXTRA_CMAKE[@]+"${EXTRA_CMAKE[@]}"} &&
  step cmake --build "$dir" -j "$JOBS" &&
  step ctest --test-dir "$dir" --output-on-failure --no-tests=error -j "$JOBS" \
    --repeat until-pass:2 ${sel[@]+"${sel[@]}"} 2>&1 | tee "$dir/ctest.log"
  local rc=${PIPESTATUS[0]}
  # A test that failed once and passed when run again is not hidden: the summary names it.
  local f
  for f in $(sed -n -E 's/^.*Test +#[0-9]+: ([A-Za-z0-9_.-]+) \.*\*\*\*(Failed|Timeout|Exception).*$/\1/p' \
      "$dir/ctest.log" | sort -u); do
    if ! grep -q -E "(^|:)$f\$" "$dir/Testing/Temporary/LastTestsFailed.log" 2>/dev/null; then
      echo "$stage: $f" >> "$FLAKY_LOG"
    fi
  done
  return "$rc"
}

stage_debug() {
  local werror=OFF
  if [ "$IN_CI" = 1 ]; then werror=ON; fi
  configure_build_test debug build '' -DCMAKE_BUILD_TYPE=Debug -DWEFT_WERROR="$werror"
}

stage_asan() {
  # Our defaults first; anything already in the environment comes later and wins.
  export ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:detect_leaks=1:strict_string_checks=1:check_initialization_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
  echo "ASAN_OPTIONS=$ASAN_OPTIONS"
  echo "UBSAN_OPTIONS=$UBSAN_OPTIONS"
  configure_build_test asan build-asan '' -DCMAKE_BUILD_TYPE=Debug -DWEFT_SANITIZE=ON
}

stage_valgrind() {
  command -v valgrind >/dev/null || { echo "valgrind not found (scripts/deps.sh test)"; return 1; }
  export WEFT_SKIP_SLOW=1 # tests too slow under emulation skip themselves (exit 77)
  configure_build_test valgrind build-vg '^core$|^memcheck$' -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_FLAGS=-g "-DWEFT_TEST_WRAPPER=$VALGRIND_WRAPPER" -DWEFT_CORE_TESTS_ONLY=OFF \
    -DWEFT_BUILD_EXAMPLES=OFF -DWEFT_BUILD_BENCH=OFF
}

arm64_missing() { # prints what is missing for the arm64 stage, if anything
  local m=()
  command -v aarch64-linux-gnu-gcc >/dev/null || m+=(aarch64-linux-gnu-gcc)
  command -v qemu-aarch64 >/dev/null || m+=(qemu-aarch64)
  [ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || m+=(/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1)
  echo "${m[*]-}"
}

stage_tsan() {
  # The tests that use threads (the core's cross-thread calls, the thread pool, modules' tests
  # labelled tsan) under TSan.
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
  configure_build_test tsan build-tsan '^core$|^pool$|^tsan$' -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_C_FLAGS=-fsanitize=thread -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread \
    -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread -DWEFT_BUILD_EXAMPLES=OFF -DWEFT_BUILD_BENCH=OFF
}

stage_arm64() {
  # The toolchain of an existing cache cannot be changed: start over if it is not ours.
  if [ -f build-arm64/CMakeCache.txt ] && ! grep -q 'aarch64-linux-gnu-gcc' build-arm64/CMakeCache.txt; then
    echo "build-arm64/ was configured without the aarch64 toolchain; removing it"
    rm -rf build-arm64
  fi
  export WEFT_SKIP_SLOW=1 # tests too slow under emulation skip themselves (exit 77)
  configure_build_test arm64 build-arm64 '' "-DCMAKE_TOOLCHAIN_FILE=$TOOLCHAIN" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS=-g -DWEFT_CORE_TESTS_ONLY=ON
}

stage_fuzz() {
  # About 65 s in all (build and the 60 s run issue 18 asks for). Longer runs by hand:
  # scripts/fuzz-http.sh 600. libFuzzer's progress lines go to build-fuzz/fuzz.log, so that a
  # failure in an earlier stage stays readable at the end of the log; the tail is shown here.
  mkdir -p build-fuzz
  local rc=0
  scripts/fuzz-http.sh "${WEFT_FUZZ_SECONDS:-60}" > build-fuzz/fuzz.log 2>&1 || rc=$?
  grep -v -E '^(#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)|"|###### )' build-fuzz/fuzz.log | tail -n 30
  echo "(the whole fuzz output: build-fuzz/fuzz.log)"
  return "$rc"
}

banner() {
  echo
  echo "======================================================================"
  echo "== $*"
  echo "======================================================================"
}

T0=$SECONDS
FLAKY_LOG=$(mktemp) # the tests that failed once and passed on their second run, by stage
trap 'rm -f "$FLAKY_LOG"' EXIT
if [ "${WEFT_NO_DEPS:-0}" != 1 ]; then
  banner "deps: scripts/deps.sh all"
  scripts/deps.sh all || echo "test.sh: WARNING: scripts/deps.sh failed; stages needing the missing packages will fail"
fi

# The tests ctest recorded as failed in a stage's build directory (or a hint when none).
failed_tests() {
  local dir
  case "$1" in debug) dir=build ;; asan) dir=build-asan ;; tsan) dir=build-tsan ;;
    valgrind) dir=build-vg ;; arm64) dir=build-arm64 ;; *) echo "see its output above"; return ;; esac
  local f=$dir/Testing/Temporary/LastTestsFailed.log
  if [ -s "$f" ]; then cut -d: -f2- "$f" | tr '\n' ' '; else echo "configure/build failed, see above"; fi
}

passed=0 failed=0 n=0 total=$(wc -w <<< "$STAGES")
notes=() failures=()
for s in $STAGES; do
  n=$((n + 1))
  if [ "$s" = fuzz ] && ! command -v clang >/dev/null; then
    if [ "$IN_CI" = 1 ]; then
      banner "stage $n/$total: fuzz -- FAILED: missing clang (required under CI; scripts/deps.sh modules)"
      failed=$((failed + 1)); notes+=("fuzz FAILED (missing clang)")
    else
      banner "stage $n/$total: fuzz -- SKIPPED: missing clang (install with: scripts/deps.sh modules)"
      notes+=("fuzz SKIPPED (missing clang)")
    fi
    continue
  fi
  if [ "$s" = arm64 ]; then
    miss=$(arm64_missing)
    if [ -n "$miss" ]; then
      if [ "$IN_CI" = 1 ]; then
        banner "stage $n/$total: arm64 -- FAILED: missing $miss (required under CI; scripts/deps.sh cross)"
        failed=$((failed + 1)); notes+=("arm64 FAILED (missing $miss)")
        continue
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
    failed=$((failed + 1)); notes+=("$s FAILED ($((SECONDS - t)) s)")
    echo "== stage $s: FAILED after $((SECONDS - t)) s"
    failures+=("$s: $(failed_tests "$s")")
  fi
done

summary=$(printf '%s, ' "${notes[@]}"); summary=${summary%, }
banner "summary ($((SECONDS - T0)) s): $summary"
for f in ${failures[@]+"${failures[@]}"}; do echo "failed in $f"; done
while read -r f; do echo "FLAKY (failed, then passed when run again) in $f"; done < "$FLAKY_LOG"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
