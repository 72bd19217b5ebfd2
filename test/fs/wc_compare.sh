#!/bin/sh
# examples/wc prints exactly what coreutils' wc prints: text, binary, UTF-8 (no-break spaces,
# invalid bytes), empty files, a directory, a missing file, one count or several, stdin, in the
# C and C.UTF-8 locales. Usage: wc_compare.sh PATH_TO_WEFT_WC
set -u
W=$1
command -v wc >/dev/null || exit 77
D=$(mktemp -d "${TMPDIR:-/tmp}/weft-wc-XXXXXX") || exit 1
trap 'rm -rf "$D"' EXIT
cd "$D" || exit 1
printf 'hello world\nfoo\n' > a
printf '\001\001 a\n\351\351 x\na\302\240b\n\342\200\203z q' > b
head -c 200000 /dev/urandom > c
: > empty
# characters across the 128 KiB read boundary: complete, and cut by a space (invalid)
head -c 131071 /dev/zero | tr '\000' x > s1; printf '\303\251 word\n' >> s1
head -c 131071 /dev/zero | tr '\000' x > s2; printf '\303 y\n' >> s2
head -c 131070 /dev/zero | tr '\000' x > s3; printf '\342\200\203z\302\240q\n' >> s3
mkdir dir
printf 'no newline at the end' > e
i=0
while [ $i -lt 300 ]; do printf 'f%d line %d\n' $i $i > "f$i"; i=$((i + 1)); done
fail=0
check() {
  exp=$(LC_ALL=$L wc "$@" < b 2>&1; echo "rc=$?")
  got=$(LC_ALL=$L "$W" "$@" < b 2>&1; echo "rc=$?")
  if [ "$exp" != "$got" ]; then
    echo "DIFFERENT (LC_ALL=$L): wc $*"; echo "coreutils:"; echo "$exp"; echo "weft:"; echo "$got"
    fail=1
  fi
}
for L in C C.UTF-8; do
  check a
  check a b c empty e
  check -l a
  check -w b
  check -c c
  check -lc a b
  check s1 s2 s3
  check a dir e missing
  check
  check -
  check f*
done
exit $fail
