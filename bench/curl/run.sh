#!/usr/bin/env bash
# weft-curl's benchmark: N GETs (10,000) of a 1 KiB body from a local nginx, INFLIGHT (100) at a
# time, keep-alive, HTTP/1.1 on 127.0.0.1. The client runs pinned to CPU 0, nginx (one worker)
# to CPU 1. Clients: the floor (raw libcurl multi-socket over epoll, bench/curl/floor.c: the
# request weft sends, socket changes applied as libcurl asks) and its two variants (floor-park:
# idle pooled sockets stay registered, as weft does; floor-bare: no Accept-Encoding), weft-curl,
# Go net/http (GOMAXPROCS=1), Node fetch, Python aiohttp. Each prints the CPU time (user + sys)
# of its request phase; the table gives CPU us per request and the ratios to the floor and to
# floor-park (medians over the rounds).
#   bench/curl/run.sh                 ROUNDS=3 N=10000 INFLIGHT=100 bench/curl/run.sh
# Environment: WEFT_BUILD_DIR (build-release), ROUNDS (1: clients interleaved per round).
set -euo pipefail
ROOT=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)
BUILD=${WEFT_BUILD_DIR:-$ROOT/build-release}
N=${N:-10000}
INFLIGHT=${INFLIGHT:-100}
ROUNDS=${ROUNDS:-1}
HERE=$ROOT/bench/curl
TMP=$(mktemp -d /tmp/weft-curl-bench-XXXXXX)
NGINX=
trap '[ -z "$NGINX" ] || { kill "$NGINX" 2>/dev/null; wait "$NGINX" 2>/dev/null || true; }; rm -rf "$TMP"' EXIT

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j2 --target weft-bench-curl-weft weft-bench-curl-floor >/dev/null
(cd "$HERE" && GOCACHE=$TMP/gocache GOFLAGS=-mod=mod go build -o "$TMP/go-client" client.go)

# nginx: one worker on CPU 1, a 1 KiB file, keep-alive without a request cap.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$TMP/www"
head -c 1024 /dev/zero | tr '\0' k >"$TMP/www/1k"
cat >"$TMP/nginx.conf" <<CONF
daemon off; master_process off; worker_processes 1; pid $TMP/nginx.pid;
error_log $TMP/error.log warn;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 1000000; keepalive_timeout 60s;
  client_body_temp_path $TMP/t1; proxy_temp_path $TMP/t2; fastcgi_temp_path $TMP/t3;
  uwsgi_temp_path $TMP/t4; scgi_temp_path $TMP/t5;
  server { listen 127.0.0.1:$PORT; root $TMP/www; }
}
CONF
taskset -c 1 nginx -c "$TMP/nginx.conf" -p "$TMP" -e "$TMP/error.log" &
NGINX=$!
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/1k" && break; sleep 0.05; done
URL=http://127.0.0.1:$PORT/1k

run() { # run NAME CMD...
  local name=$1; shift
  local out
  out=$(taskset -c 0 "$@" "$URL" "$N" "$INFLIGHT" 2>&1) || { echo "$name: failed: $out" >&2; return 1; }
  echo "$out" | tee -a "$TMP/results"
}
echo "N=$N INFLIGHT=$INFLIGHT ROUNDS=$ROUNDS url=$URL $(nproc) CPUs, $(uname -r)"
for _ in $(seq "$ROUNDS"); do
  # A discarded run first: the first client of a round (after nginx's start, or after Node and
  # aiohttp) was often slower by a third, whichever it was.
  taskset -c 0 "$BUILD/bench/curl/weft-bench-curl-floor" "$URL" "$N" "$INFLIGHT" >/dev/null 2>&1 || true
  run floor "$BUILD/bench/curl/weft-bench-curl-floor"
  FLOOR_PARK=1 run floor-park "$BUILD/bench/curl/weft-bench-curl-floor"
  FLOOR_BARE=1 run floor-bare "$BUILD/bench/curl/weft-bench-curl-floor"
  run weft "$BUILD/bench/curl/weft-bench-curl-weft"
  GOMAXPROCS=1 run go "$TMP/go-client"
  run node node "$HERE/client.mjs"
  run aiohttp /usr/bin/python3 "$HERE/client.py"
done
# Medians per client, and the ratio to the floor.
python3 - "$TMP/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    kv = dict(x.split("=") for x in f[1:])
    rows.setdefault(f[0], []).append((float(kv["cpu_us_per_req"]), float(kv["wall_s"])))
floor = statistics.median(c for c, _ in rows["floor"])
park = statistics.median(c for c, _ in rows["floor-park"])
print("%-10s %14s %12s %10s %10s" % ("client", "cpu us/req", "wall s", "x floor", "x park"))
for name, v in rows.items():
    c = statistics.median(x for x, _ in v)
    w = statistics.median(y for _, y in v)
    print("%-10s %14.2f %12.3f %10.2f %10.2f" % (name, c, w, c / floor, c / park))
PY
