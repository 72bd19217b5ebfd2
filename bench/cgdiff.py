#!/usr/bin/env python3
"""Instructions per operation from two callgrind runs of the same program at two counts.

    bench/cgdiff.py [--top K] [--json] A.cg N_A B.cg N_B

Each figure is (cost in B - cost in A) / (N_B - N_A): start-up, set-up and shutdown cancel out.
Prints the total per operation, then the top K functions by self cost (helpers inlined into a
function are counted in that function, as callgrind_annotate shows them under the caller's
name) and by inclusive cost. Inclusive costs that span a context switch are meaningless
(callgrind sees the switch as a call that never returns, so a function that suspends gets the
cost of every task that ran meanwhile); such functions (inclusive above the total) are dropped,
and so are the callers every operation runs inside (inclusive >= 97 % of the total: main,
weft_run, weft_loop_run, ...), leaving the callees that say where the instructions go.
Used by bench/profile.sh.
"""
import argparse
import json
import re
import subprocess
import sys
from collections import defaultdict

LINE = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*?)\s*$")


def costs(path, inclusive):
    """{function: Ir} from callgrind_annotate, merged over files and recursion levels."""
    out = subprocess.run(
        ["callgrind_annotate", "--auto=no", "--threshold=100", "--inclusive=" + ("yes" if inclusive else "no"),
         path], check=True, capture_output=True, text=True).stdout
    total = None
    funcs = defaultdict(int)
    for line in out.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        ir = int(m.group(1).replace(",", ""))
        name = m.group(2)
        if name == "PROGRAM TOTALS":
            total = ir
            continue
        name = re.sub(r"\s+\[[^\]]*\]$", "", name)  # object file
        name = name.rsplit(":", 1)[-1]              # source file (may name an inlined header)
        name = re.sub(r"'\d+$", "", name)            # recursion level
        if inclusive:
            funcs[name] = max(funcs[name], ir)
        else:
            funcs[name] += ir
    if total is None:
        sys.exit("cgdiff: no PROGRAM TOTALS in " + path)
    return total, funcs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--top", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("a")
    ap.add_argument("na", type=int)
    ap.add_argument("b")
    ap.add_argument("nb", type=int)
    o = ap.parse_args()
    dn = o.nb - o.na
    if dn <= 0:
        sys.exit("cgdiff: N_B must be larger than N_A")
    ta, sa = costs(o.a, False)
    tb, sb = costs(o.b, False)
    per_op = (tb - ta) / dn
    self_ = sorted(((n, (sb.get(n, 0) - sa.get(n, 0)) / dn) for n in set(sa) | set(sb)),
                   key=lambda x: -x[1])
    self_ = [(n, c) for n, c in self_ if c >= 0.5][:o.top]
    _, ia = costs(o.a, True)
    _, ib = costs(o.b, True)
    incl = sorted(((n, (ib.get(n, 0) - ia.get(n, 0)) / dn) for n in set(ia) | set(ib)),
                  key=lambda x: -x[1])
    incl = [(n, c) for n, c in incl if 0.5 <= c < 0.97 * per_op][:o.top]
    if o.json:
        print(json.dumps({"per_op": per_op, "self": self_, "inclusive": incl}))
        return
    print(f"instructions per operation: {per_op:.1f}")
    print("self:      " + ", ".join(f"{n} {c:.0f}" for n, c in self_))
    print("inclusive: " + ", ".join(f"{n} {c:.0f}" for n, c in incl))


if __name__ == "__main__":
    main()
