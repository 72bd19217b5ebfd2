#!/usr/bin/env bash
# TLS servers side by side, on one core each (the server pinned to CPU 0, the load on CPU 1):
# echo with 64 B and 16 KiB messages over keep-alive connections, and full and resumed
# handshakes. Columns:
#   ops/s      what the load generator measured. For handshakes it is capped by the load
#              generator (a weft-tls client on one core does ~1,400 full handshakes/s, the
#              client's half of a handshake costs about what the server's does), so on a quiet
#              machine every server shows about the same rate: it does not rank the servers.
#   cpu us/op  the server's CPU (user + system, /proc/PID/stat) per operation over the measured
#              seconds: what the server spends, whatever the load generator's speed.
#   x floor    cpu us/op divided by the floor's (lower is better).
#   ops/core-s 1e6 / cpu us/op: the rate one server core sustains when the server is the
#              bottleneck (handshakes per second per core). Its ratio to the floor's is the
#              inverse of "x floor".
#   tls        what the handshakes negotiated, as the load saw it: version and the share of the
#              measured handshakes that resumed a session (hs_resume must show 1.3 and ~100 %
#              for every server, or the comparison is not like for like). OpenSSL clients use a
#              TLS 1.3 ticket once; Node sends a resumed connection's new ticket after its first
#              data, which the load has read and closed on, so Node shows ~60 %: its row mixes
#              in full handshakes (and so overstates its cost per resumption).
#   bench/tls_compare.sh [BUILD_DIR]        (default build-release; needs its bench targets)
# Servers: floor (bench/tls_floor.c: epoll + OpenSSL in C, weft-tls's OpenSSL settings), weft
# (bench/tls_server.c, an echo server: it reads until the client closes, answers its
# close_notify, then closes), weft-http (weft's HTTP server over TLS, bench/http/server.c:
# handshakes only, the same exchange as nginx's row: it answers the load's HTTP/1.0 request and
# closes first), go (crypto/tls, GOMAXPROCS=1), node (tls), nginx (1 process, http
# module: handshakes only; ssl_protocols TLSv1.2 TLSv1.3, as nginx >= 1.23.4 has by default:
# Debian 12's 1.22 defaults to TLS 1.0-1.2 and would otherwise be measured on TLS 1.2, whose
# resumption needs no key exchange). All OpenSSL-based servers use Debian's OpenSSL 3.0. A
# missing one is skipped. Environment: DUR (seconds measured, 4), CONNS (50), PORT (19700),
# WORKLOADS (default "echo64 echo16k hs_full hs_resume"), ROUNDS (3), SERVERS (default "floor weft
# weft-http go node nginx"), WEFT2 (a second weft server binary, e.g. another build's
# bench/weft-bench-tls_server, run as "weft2" after "weft": an A/B in one run).
# Every process is bounded in time and killed at the end; traffic stays on 127.0.0.1.
set -euo pipefail
B=${1:-build-release}/bench
DUR=${DUR:-4}
CONNS=${CONNS:-50}
PORT=${PORT:-19700}
SRC=$(cd "$(dirname "$0")/.." && pwd)
LOAD=$B/weft-bench-tls_load
[ -x "$LOAD" ] || { echo "tls_compare.sh: build $LOAD first (cmake --build $1)" >&2; exit 1; }
TMP=$(mktemp -d)
SERVER=
trap '[ -z "$SERVER" ] || kill "$SERVER" 2>/dev/null; rm -rf "$TMP"' EXIT
sh "$SRC/test/tls/mkcerts.sh" "$TMP" >/dev/null
CERT=$TMP/server.pem KEY=$TMP/server.key

declare -A CMD
CMD[floor]="$B/weft-bench-tls_floor"
CMD[weft]="$B/weft-bench-tls_server"
[ -z "${WEFT2:-}" ] || CMD[weft2]=$WEFT2
# weft's HTTP server over TLS: handshakes only, the same exchange as nginx's row (the load's
# HTTP/1.0 request, a response, the server closes).
WEFT_HTTP=${1:-build-release}/src/http/weft-bench-http
[ -x "$WEFT_HTTP" ] && CMD[weft-http]="weft_http_run"
weft_http_run() { # PORT CERT KEY
  exec "$WEFT_HTTP" "$1" "$TMP" "$2" "$3"
}
export -f weft_http_run
export WEFT_HTTP
if command -v go >/dev/null; then
  (cd "$SRC/bench/tls_peers" && GOCACHE=$TMP/gocache GOPATH=$TMP/gopath go build -o "$TMP/go_echo" echo.go) &&
    CMD[go]="env GOMAXPROCS=1 $TMP/go_echo"
fi
command -v node >/dev/null && CMD[node]="node $SRC/bench/tls_peers/echo.js"
if command -v nginx >/dev/null; then
  CMD[nginx]="nginx_run"
fi
nginx_run() { # PORT CERT KEY
  mkdir -p "$TMP/ngx"
  cat > "$TMP/ngx/nginx.conf" <<EOF
worker_processes 1; master_process off; daemon off; pid $TMP/ngx/pid; error_log $TMP/ngx/err;
events { worker_connections 8192; }
http {
  access_log off; client_body_temp_path $TMP/ngx; proxy_temp_path $TMP/ngx;
  fastcgi_temp_path $TMP/ngx; uwsgi_temp_path $TMP/ngx; scgi_temp_path $TMP/ngx;
  keepalive_requests 10000000;
  server { listen 127.0.0.1:$1 ssl; ssl_certificate $2; ssl_certificate_key $3;
           ssl_protocols TLSv1.2 TLSv1.3;
           location / { return 200 "ok\n"; } }
}
EOF
  exec nginx -p "$TMP/ngx" -c "$TMP/ngx/nginx.conf"
}
export -f nginx_run
export TMP

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

one() { # NAME WORKLOAD -> "NAME WORKLOAD rate cpu_us_per_op tls"
  local name=$1 wl=$2 spid out t0 t1 rate args
  PORT=$((PORT + 1))
  if [ "$name" = nginx ] || [ "$name" = weft-http ]; then
    taskset -c 0 bash -c "${CMD[$name]} $PORT $CERT $KEY" >/dev/null 2>&1 &
  else
    # shellcheck disable=SC2086
    taskset -c 0 ${CMD[$name]} "$PORT" "$CERT" "$KEY" >/dev/null 2>&1 &
  fi
  spid=$!
  SERVER=$spid
  for _ in $(seq 100); do ss -ltn | grep -q "127.0.0.1:$PORT " && break; sleep 0.1; done
  [ "$name" != nginx ] || spid=$(pgrep -P "$spid" nginx || echo "$spid")
  case $wl in
    echo64) args="echo $PORT $CONNS 64 $DUR" ;;
    echo16k) args="echo $PORT $CONNS 16384 $DUR" ;;
    hs_full) args="hs $PORT $CONNS $DUR full" ;;
    hs_resume) args="hs $PORT $CONNS $DUR resume" ;;
  esac
  # shellcheck disable=SC2086
  timeout $((DUR + 20)) taskset -c 1 "$LOAD" $args >"$TMP/out" 2>/dev/null &
  local lpid=$!
  sleep 1 # the load's warm-up second
  t0=$(cpu_ticks "$spid")
  sleep "$DUR"
  t1=$(cpu_ticks "$spid")
  wait "$lpid" || true
  kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; SERVER=
  [ "$name" != nginx ] || pkill -F "$TMP/ngx/pid" 2>/dev/null || true
  rate=$(grep -o '[0-9.]*' "$TMP/out" | head -1)
  local tls=-
  if grep -q tls13= "$TMP/out"; then # hs=R resumed=N tls13=N tls12=N
    tls=$(awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
                 n = v["tls13"] + v["tls12"]
                 if (n == 0) { print "-"; exit }
                 ver = v["tls12"] == 0 ? "1.3" : (v["tls13"] == 0 ? "1.2" : "mixed")
                 printf "%s/r%.0f%%\n", ver, 100 * v["resumed"] / n }' "$TMP/out")
  fi
  awk -v n="$name" -v w="$wl" -v r="${rate:-0}" -v c=$((t1 - t0)) -v d="$DUR" -v hz="$(getconf CLK_TCK)" \
    -v t="$tls" 'BEGIN { if (r <= 0) { print n, w, "NA NA", t; exit }
             printf "%s %s %.0f %.1f %s\n", n, w, r, c / hz * 1e6 / (r * d), t }'
}

# ROUNDS (default 3) rounds, each running every server once per workload in turn (floor first),
# so that a slow spell of the machine falls on all of them; each row is one run, and the summary
# gives per server and workload the median cpu us/op and the median of the per-round ratios to
# that round's floor.
ROUNDS=${ROUNDS:-3}
RES=$TMP/results
: > "$RES"
printf "%-6s %-10s %10s %10s %8s %11s %9s %5s\n" server workload "ops/s" "cpu us/op" "x floor" \
  "ops/core-s" tls round
for round in $(seq "$ROUNDS"); do
  for wl in ${WORKLOADS:-echo64 echo16k hs_full hs_resume}; do
    floor=
    for name in ${SERVERS:-floor weft weft2 weft-http go node nginx}; do
      [ -n "${CMD[$name]:-}" ] || continue
      case $name$wl in nginxecho* | weft-httpecho*) continue ;; esac
      read -r n w rate us tls < <(one "$name" "$wl")
      [ "$name" = floor ] && floor=$us
      read -r ratio core < <(awk -v a="$us" -v b="${floor:-NA}" 'BEGIN {
        r = (a == "NA" || b == "NA" || b == 0) ? "NA" : sprintf("%.2f", a / b)
        c = (a == "NA" || a == 0) ? "NA" : sprintf("%.0f", 1e6 / a)
        print r, c }')
      printf "%-6s %-10s %10s %10s %8s %11s %9s %5s\n" "$n" "$w" "$rate" "$us" "$ratio" "$core" "$tls" "$round"
      echo "$n $w $us $ratio" >> "$RES"
    done
  done
done
echo
echo "median over $ROUNDS rounds:"
printf "%-6s %-10s %10s %8s %11s\n" server workload "cpu us/op" "x floor" "ops/core-s"
awk '
  function median(str,   a, n, i, j, t) {
    n = split(str, a, " ")
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    if (n == 0) return "NA"
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  $3 != "NA" { k = $1 " " $2; if (!(k in us)) order[++m] = k; us[k] = us[k] " " $3
               if ($4 != "NA") rt[k] = rt[k] " " $4 }
  END { for (i = 1; i <= m; i++) { k = order[i]; split(k, nw, " ")
          u = median(us[k]); r = (k in rt) ? median(rt[k]) : "NA"
          printf "%-6s %-10s %10.1f %8s %11.0f\n", nw[1], nw[2], u, (r == "NA" ? r : sprintf("%.2f", r)), 1e6 / u } }
' "$RES"
