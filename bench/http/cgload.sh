#!/usr/bin/env bash
# Per-request costs of an HTTP server under valgrind, load-independent: the server runs under
# callgrind (instructions) or cachegrind with the cache and branch simulators (misses), pinned to
# CPU 0, while `wrk -t1 -cCONNS` on CPU 1 sends keep-alive GETs of / and a Lua counter stops it
# after N1, then (a second server run) N2 responses; every event's (total(N2) - total(N1)) /
# (N2 - N1) is its cost per request (start-up, connection set-up and shutdown cancel out).
#   bench/http/cgload.sh NAME=CMD ...   (CMD is given "http PORT", as the harness's servers are)
# Environment: TOOL (callgrind | cachegrind, default callgrind), N1/N2 (5000/15000), CONNS (50),
# OUT (files kept there, default /tmp/weft-cgload), PORT (first port, 19700), TOP (functions
# listed per server by the first event, 12; 0 for none), CGOPTS (more cachegrind options, e.g.
# "--D1=1024,2,64": a D1 that holds nothing from one request to the next, so that its misses
# count the distinct lines a request touches).
# Prints, per server, each event per request, then the functions by that event (self cost).
set -euo pipefail
[ $# -ge 1 ] || { sed -n 2,13p "$0" >&2; exit 2; }
TOOL=${TOOL:-callgrind}
N1=${N1:-5000}
N2=${N2:-15000}
CONNS=${CONNS:-50}
OUT=${OUT:-/tmp/weft-cgload}
PORT=${PORT:-19700}
TOP=${TOP:-12}
CGOPTS=${CGOPTS:-}
command -v valgrind >/dev/null || { echo "cgload.sh: valgrind is not installed" >&2; exit 1; }
command -v wrk >/dev/null || { echo "cgload.sh: wrk is not installed" >&2; exit 1; }
mkdir -p "$OUT"
case $TOOL in
  callgrind) VG=(valgrind --trace-children=yes --tool=callgrind) ;;
  # shellcheck disable=SC2206
  cachegrind) VG=(valgrind --trace-children=yes --tool=cachegrind --cache-sim=yes
                  --branch-sim=yes $CGOPTS) ;;
  *) echo "cgload.sh: TOOL is callgrind or cachegrind" >&2; exit 2 ;;
esac
cat >"$OUT/stop.lua" <<'LUA'
local n, max, flag = 0, tonumber(os.getenv("WEFT_CG_N")), os.getenv("WEFT_CG_FLAG")
function response(status, headers, body)
  n = n + 1
  if n == max then
    wrk.thread:stop()
    io.open(flag, "w"):close()
  end
end
LUA
SERVER=
trap '[ -z "$SERVER" ] || kill "$SERVER" 2>/dev/null || true' EXIT

run() { # run NAME CMD N -> $OUT/NAME.N.TOOL
  local name=$1 cmd=$2 n=$3 spid
  PORT=$((PORT + 1))
  # shellcheck disable=SC2086
  taskset -c 0 "${VG[@]}" --"$TOOL"-out-file="$OUT/$name.$n.$TOOL" $cmd http "$PORT" \
    >"$OUT/$name.$n.log" 2>&1 &
  spid=$!
  SERVER=$spid
  for _ in $(seq 300); do ss -ltn | grep -q ":$PORT " && break; sleep 0.1; done
  # wrk waits out its duration after the thread stops: end it once the counter says so.
  rm -f "$OUT/stopped"
  WEFT_CG_N=$n WEFT_CG_FLAG=$OUT/stopped taskset -c 1 wrk -t1 -c"$CONNS" -d300s \
    -s "$OUT/stop.lua" "http://127.0.0.1:$PORT/" >"$OUT/$name.$n.wrk" 2>&1 &
  local wpid=$! i
  for i in $(seq 3000); do [ -e "$OUT/stopped" ] && break; kill -0 "$wpid" 2>/dev/null || break; sleep 0.1; done
  kill -INT "$wpid" 2>/dev/null || true
  wait "$wpid" 2>/dev/null || true
  kill -TERM "$spid" 2>/dev/null || true # (an & job ignores SIGINT)
  wait "$spid" 2>/dev/null || true
  SERVER=
}

for spec in "$@"; do
  name=${spec%%=*}
  cmd=${spec#*=}
  run "$name" "$cmd" "$N1"
  run "$name" "$cmd" "$N2"
  python3 - "$name" "$OUT/$name.$N1.$TOOL" "$N1" "$OUT/$name.$N2.$TOOL" "$N2" "$TOP" "$TOOL" <<'PY'
import re, subprocess, sys
from collections import defaultdict
name, a, na, b, nb, top, tool = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
def totals(p):
    ev, tot = None, None
    for line in open(p, errors="replace"):
        if line.startswith("events:"):
            ev = line.split()[1:]
        elif line.startswith("summary:") or line.startswith("totals:"):
            tot = [int(x) for x in line.split()[1:]]
    return ev, tot
ev, ta = totals(a)
_, tb = totals(b)
d = nb - na
print("%s: per request (%s, N %d -> %d)" % (name, tool, na, nb))
print("  " + "  ".join("%s %.1f" % (e, (y - x) / d) for e, x, y in zip(ev, ta, tb)))
if top > 0:
    ann = "callgrind_annotate" if tool == "callgrind" else "cg_annotate"
    def funcs(p):
        out = subprocess.run([ann, "--auto=no", "--threshold=100", p], capture_output=True, text=True).stdout
        f = defaultdict(lambda: [0] * len(ev))
        for line in out.splitlines():
            m = re.match(r"^\s*((?:[\d,]+\s+(?:\(\s*[\d.]+%\)\s+)?)+)(\S.*?)\s*$", line)
            if not m:
                continue
            nums = [int(x.replace(",", "")) for x in re.findall(r"[\d,]+(?=\s+(?:\(|\S))", m.group(1) + " x")]
            nm = m.group(2)
            if "PROGRAM TOTALS" in nm or len(nums) != len(ev):
                continue
            nm = re.sub(r"\s+\[[^\]]*\]$", "", nm).rsplit(":", 1)[-1]
            for i, v in enumerate(nums):
                f[nm][i] += v
        return f
    def cgfuncs(p):
        # cachegrind's own file: "fn=NAME" then "LINE COUNT..." lines (missing counts are 0)
        f = defaultdict(lambda: [0] * len(ev))
        fn = None
        for line in open(p, errors="replace"):
            if line.startswith("fn="):
                fn = line[3:].strip()
            elif fn is not None and line[:1].isdigit():
                for i, v in enumerate(line.split()[1:]):
                    f[fn][i] += int(v)
        return f
    if tool == "cachegrind":
        funcs = cgfuncs
    fa, fb = funcs(a), funcs(b)
    rows = []
    for k in set(fa) | set(fb):
        va, vb = fa.get(k, [0] * len(ev)), fb.get(k, [0] * len(ev))
        rows.append((k, [(y - x) / d for x, y in zip(va, vb)]))
    rows.sort(key=lambda r: -r[1][0])
    print("  functions: " + " ".join(ev))
    for k, v in rows[:top]:
        print("    %-28s %s" % (k[:28], " ".join("%.1f" % x for x in v)))
    if tool == "cachegrind":
        # where the data misses fall
        for col in ("D1mr", "D1mw", "Bcm", "Bim"):
            if col not in ev:
                continue
            c = ev.index(col)
            rs = sorted(rows, key=lambda r: -r[1][c])[:8]
            print("  %s by function: %s" % (col, ", ".join("%s %.1f" % (k, v[c]) for k, v in rs if v[c] >= 0.1)))
PY
done
