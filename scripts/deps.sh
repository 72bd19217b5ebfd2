#!/usr/bin/env bash
# Install the Debian 12 packages weft's build, tests and benchmarks need.
# Only what is missing is installed (checked with dpkg-query, so a re-run is instant).
#   scripts/deps.sh [GROUP...]     groups: build test cross bench modules clang all (default: all)
#   scripts/deps.sh --list [GROUP...]   print the packages of the groups, install nothing
set -euo pipefail

usage() {
  sed -n '2,5s/^# \{0,1\}//p' "$0"
  echo "  build: build-essential cmake pkg-config"
  echo "  test:  valgrind python3 curl wrk  (the sanitizers come with gcc's libasan/libubsan)"
  echo "  cross: gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user"
  echo "  bench: wrk curl python3 libuv1-dev golang-go fio  (bench/files.sh: fio; its Node and Tokio peers need nodejs, cargo, librust-tokio-dev)"
  echo "  modules: $(pkgs_of modules)  (the modules' libraries and the servers their tests start)"
  echo "  clang: clang                      (optional, not part of 'all')"
  echo "  all:   build test cross bench"
}

pkgs_of() {
  case "$1" in
    build) echo build-essential cmake pkg-config ;;
    test)  echo valgrind python3 curl wrk ;;
    cross) echo gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user ;;
    bench) echo wrk curl python3 libuv1-dev golang-go fio ;;  # libuv, go: bench/spawn.sh's peers; fio: bench/files.sh
    # One line per module: its library's -dev package and what its tests need.
    modules)
      echo "libpq-dev postgresql openssl" # pg: libpq, the server its tests start, a certificate for its TLS test
      echo "libssl-dev openssl"   # tls: OpenSSL 3, and the openssl command (the tests' PKI)
      echo "libcurl4-openssl-dev nginx" # curl: libcurl, and nginx for its tests (+ openssl, python3)
      echo "curl wrk python3 python3-aiohttp libhttp-parser-dev clang" # http: test clients, libhttp-parser (differential test), clang (fuzzer)
      ;;
    clang) echo clang ;;
    all)   echo "$(pkgs_of build) $(pkgs_of test) $(pkgs_of cross) $(pkgs_of bench) $(pkgs_of modules)" ;;
  esac
}

list_only=0
groups=()
for a in "$@"; do
  case "$a" in
    -h|--help) usage; exit 0 ;;
    --list) list_only=1 ;;
    build|test|cross|bench|modules|clang|all) groups+=("$a") ;;
    *) echo "deps.sh: unknown group '$a'" >&2; usage >&2; exit 2 ;;
  esac
done
[ ${#groups[@]} -gt 0 ] || groups=(all)

# Collect the packages of every group, without duplicates, in order.
wanted=()
for g in "${groups[@]}"; do
  for p in $(pkgs_of "$g"); do
    [[ " ${wanted[*]-} " == *" $p "* ]] || wanted+=("$p")
  done
done

if [ "$list_only" = 1 ]; then
  echo "${wanted[*]}"
  exit 0
fi

missing=()
for p in "${wanted[@]}"; do
  st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$st" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps.sh: all present (${groups[*]}): ${wanted[*]}"
  exit 0
fi

if [ "$(id -u)" = 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "deps.sh: missing packages: ${missing[*]}" >&2
  echo "deps.sh: not root and no sudo; install them yourself with apt-get" >&2
  exit 1
fi

# --no-install-recommends: keeps valgrind from pulling gdb and qemu-user from pulling
# qemu-user-binfmt (we call qemu-aarch64 explicitly, binfmt_misc is not needed).
echo "deps.sh: installing: ${missing[*]}"
echo "+ ${SUDO[*]-} apt-get update"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
echo "+ ${SUDO[*]-} apt-get install -y --no-install-recommends ${missing[*]}"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "deps.sh: done"
