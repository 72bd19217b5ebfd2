#!/usr/bin/env bash
# The HTTP module beside its peers, one short run: keep-alive GET of a 13-byte hello, a 1 KiB
# JSON response and a 64 KiB static file, wrk -t1 -c50 on loopback; each server pinned to CPU 0,
# wrk to CPU 1. For each: requests/s and the server's CPU (user + system, and user alone) per
# request, from /proc/PID/stat over the measured window.
#   bench/http/compare.sh            (DUR=3 seconds per run; BUILD=build-release)
# Peers (each skipped when missing): nginx (1 worker: `return 200` for hello, static files),
# h2o (Debian, 1 thread, static files), Go net/http, Node http, aiohttp, and the peer harness's
# hand-parsed epoll server (hello only, like Go and Node). Traffic stays on 127.0.0.1; every
# process started here is stopped by its pid.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build-release}
DUR=${DUR:-3}
PEERS=${WEFT_PEERS_SRC:-$ROOT/../shared/bench/peers}
TMP=$(mktemp -d /tmp/weft-http-bench.XXXXXX)
PORT=${PORT:-19600}
PIDS=()
cleanup() { for p in "${PIDS[@]-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT
TCK=$(getconf CLK_TCK)

# Documents.
head -c 65536 /dev/urandom > "$TMP/f64k"
printf 'Hello, World!' > "$TMP/hello"
python3 - "$TMP/json" <<'PY'
import json, sys
items, s = [], ""
i = 0
while True:
    items.append({"id": i, "ok": True}); i += 1
    s = json.dumps({"items": items}, separators=(",", ":"))
    if len(s) > 1000: break
s = s[:-2] + " " * (1024 - len(s)) + "]}"
open(sys.argv[1], "w").write(s[:1022] + "]}")
PY

[ -x "$BUILD/src/http/weft-bench-http" ] || {
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_TESTS=OFF >/dev/null
  cmake --build "$BUILD" -j2 --target weft-bench-http >/dev/null; }

# Peers' programs.
if [ -f "$PEERS/c/srv_epoll.c" ]; then gcc -O2 -o "$TMP/srv_epoll" "$PEERS/c/srv_epoll.c" 2>/dev/null || true; fi
if command -v go >/dev/null && [ -f "$PEERS/go/main.go" ]; then
  (cd "$PEERS/go" && GOFLAGS=-mod=mod go build -o "$TMP/peersgo" . 2>/dev/null) || true
fi
cat > "$TMP/aio.py" <<'PY'
import sys
from aiohttp import web
root = sys.argv[2]
json_body = open(root + "/json", "rb").read()
async def hello(r): return web.Response(body=b"Hello, World!", content_type="text/plain")
async def js(r): return web.Response(body=json_body, content_type="application/json")
async def f64k(r): return web.FileResponse(root + "/f64k")
app = web.Application()
app.add_routes([web.get("/", hello), web.get("/json", js), web.get("/f64k", f64k)])
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
PY
nginx_conf() {
  cat > "$TMP/nginx.conf" <<NG
worker_processes 1;
master_process off;
daemon off;
pid $TMP/nginx.pid;
error_log $TMP/nginx.err;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  sendfile on;
  client_body_temp_path $TMP; proxy_temp_path $TMP; fastcgi_temp_path $TMP;
  uwsgi_temp_path $TMP; scgi_temp_path $TMP;
  server {
    listen 127.0.0.1:$1;
    root $TMP;
    location = / { default_type text/plain; return 200 "Hello, World!"; }
    location = /json { default_type application/json; }
    location = /f64k { default_type application/octet-stream; }
  }
}
NG
}
h2o_conf() {
  cat > "$TMP/h2o.conf" <<H2
num-threads: 1
listen:
  host: 127.0.0.1
  port: $1
error-log: $TMP/h2o.err
pid-file: $TMP/h2o.pid
hosts:
  default:
    paths:
      "/":
        file.file: $TMP/hello
      "/json":
        file.file: $TMP/json
      "/f64k":
        file.file: $TMP/f64k
H2
}

cpu_of() { # utime stime of a pid, in ticks
  awk '{print $14, $15}' "/proc/$1/stat"
}

run() { # NAME PATH CMD...
  local name=$1 path=$2; shift 2
  PORT=$((PORT + 1))
  local cmd=("${@//@PORT@/$PORT}")
  taskset -c 0 "${cmd[@]}" >/dev/null 2>"$TMP/srv.err" &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 50); do ss -ltn | grep -q "127.0.0.1:$PORT " && break; sleep 0.1; done
  if ! ss -ltn | grep -q "127.0.0.1:$PORT "; then echo "$name: did not start"; kill "$pid" 2>/dev/null; return; fi
  taskset -c 1 wrk -t1 -c50 -d1s "http://127.0.0.1:$PORT$path" >/dev/null 2>&1 || true # warm-up
  read -r u0 s0 < <(cpu_of "$pid")
  taskset -c 1 wrk -t1 -c50 -d"${DUR}s" "http://127.0.0.1:$PORT$path" >"$TMP/wrk" 2>&1 || true
  read -r u1 s1 < <(cpu_of "$pid")
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  local rps reqs
  rps=$(awk '/Requests\/sec/ {print $2}' "$TMP/wrk")
  reqs=$(awk '/requests in/ {print $1}' "$TMP/wrk")
  if grep -q "Non-2xx" "$TMP/wrk"; then echo "$name $path: non-2xx answers"; fi
  awk -v n="$name" -v p="$path" -v rps="${rps:-0}" -v q="${reqs:-0}" -v du=$((u1 - u0)) \
      -v ds=$((s1 - s0)) -v t="$TCK" 'BEGIN {
    if (q == 0) { printf "%-22s %-6s failed\n", n, p; exit }
    printf "%-22s %-6s %9.0f req/s  cpu %6.2f us/req  user %6.2f us/req\n", n, p, rps,
           (du + ds) / t * 1e6 / q, du / t * 1e6 / q }'
}

for path in / /json /f64k; do
  run weft "$path" "$BUILD/src/http/weft-bench-http" @PORT@ "$TMP"
  if command -v nginx >/dev/null; then nginx_conf $((PORT + 1)); run "nginx (1 worker)" "$path" nginx -c "$TMP/nginx.conf" -p "$TMP"; fi
  if command -v h2o >/dev/null; then h2o_conf $((PORT + 1)); run "h2o (1 thread)" "$path" h2o -c "$TMP/h2o.conf"; fi
  if /usr/bin/python3 -c "import aiohttp" 2>/dev/null; then run aiohttp "$path" /usr/bin/python3 "$TMP/aio.py" @PORT@ "$TMP"; fi
  if [ "$path" = / ]; then
    [ -x "$TMP/srv_epoll" ] && run "epoll (hand-parsed)" / "$TMP/srv_epoll" http @PORT@
    [ -x "$TMP/peersgo" ] && run "go net/http" / env GOMAXPROCS=1 "$TMP/peersgo" http @PORT@
    command -v node >/dev/null && [ -f "$PEERS/node/servers.js" ] && run "node http" / node "$PEERS/node/servers.js" http @PORT@
  fi
done
