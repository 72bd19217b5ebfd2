#!/usr/bin/env bash
# Build the HTTP parser's libFuzzer target with clang (-fsanitize=fuzzer,address,undefined) and
# run it for SECONDS (default 60) on one core from the seed corpus (the malformed/smuggling
# corpus of test/http/corpus.h and well-formed requests). A crash, a sanitizer report or a
# disagreement between the whole and the incremental parse fails the run; the input is left in
# build-fuzz/ (crash-*). Needs clang (scripts/deps.sh modules).
#   scripts/fuzz-http.sh [SECONDS]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECS=${1:-60}
OUT=$ROOT/build-fuzz
CC=${FUZZ_CC:-clang}
command -v "$CC" >/dev/null || { echo "fuzz-http.sh: $CC not found (scripts/deps.sh modules)" >&2; exit 1; }
mkdir -p "$OUT/corpus"
set -x
"$CC" -g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"$ROOT/include" "$ROOT/src/http/parse.c" "$ROOT/src/http/chunked.c" \
  "$ROOT/src/http/strings.c" "$ROOT/test/http/fuzz/fuzz_parser.c" \
  -o "$OUT/fuzz_http_parser"
"$CC" -O1 -I"$ROOT/include" "$ROOT/test/http/fuzz/seeds.c" -o "$OUT/fuzz_http_seeds"
"$OUT/fuzz_http_seeds" "$OUT/corpus"
cd "$OUT"
./fuzz_http_parser -max_total_time="$SECS" -max_len=4096 -timeout=10 -rss_limit_mb=1024 \
  -print_final_stats=1 corpus
