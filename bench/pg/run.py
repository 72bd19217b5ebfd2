#!/usr/bin/env python3
"""The PostgreSQL client benchmark: MagicStack/pgbench's workload shape (concurrency 10, a pool of
10 connections) over three queries - a 1-row select, a 1,000-row select of generate_series, an
insert - for weft beside asyncpg, psycopg 3 (async), Go pgx v4, node-postgres and `pgbench -M
prepared` (C over libpq: the floor), then 10,000 inserts in weft's pipeline mode against one by one.

It starts its own PostgreSQL 15 (initdb into a temporary directory, Unix socket only, fsync off;
as the `postgres` user when run as root) pinned to CPU 1 and runs each client pinned to CPU 0, one
after the other, measuring each client's CPU time (user + system) per query: over the counted
window, as each client reports it (its start-up and warm-up left out), and for pgbench (C, its
start-up is negligible) over its whole run, from wait4.
Prints a markdown table.

  bench/pg/run.py [--seconds 3] [--peers weft,weft-nap,asyncpg,psycopg,pgx,node,pgbench]
                  [--queries select1,series,insert] [--weft PATH] [--rounds N]

`weft-nap` is the same weft client with naps (weft_loop_opts.nap_ns, --nap-ns, default 50 us):
out of work, its loop sleeps for the nap without being woken by the sockets, then takes what came
in one poll, so the server's backends rarely have to wake a sleeping client (which costs them
CPU: a wake-up of a thread on another core, an inter-processor interrupt, dear in a VM), at the
price of up to a nap of latency per answer.

With --rounds N every client runs N times, interleaved, and the table gives medians. The last
column is how busy the server's core was during the client's run (server CPU seconds per
second): near 100 % the server is the bottleneck and the clients are compared by how much
server work their traffic costs; well below, by how quickly they answer.

Needs: the weft-bench-pg program (cmake -DCMAKE_BUILD_TYPE=Release; build-release/bench/), and
for the peers the Debian packages python3-asyncpg python3-psycopg golang-go
golang-github-jackc-pgx-v4-dev postgresql, and npm (node-postgres is installed with `npm install
pg` into the scratch directory). A peer whose tools are missing is reported and skipped.
"""
import argparse, os, pwd, re, shutil, signal, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BINDIR = os.environ.get("WEFT_PG_BINDIR", "/usr/lib/postgresql/15/bin")
PY = "/usr/bin/python3"  # Debian's, where python3-asyncpg and python3-psycopg live
CONC = 10


def demote():
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)


def pin(cpu):
    def f():
        os.sched_setaffinity(0, {cpu})
    return f


def server_cpu(pid):
    """CPU seconds (user + system) the server has used so far: the postmaster, the backends and
    workers it has reaped (cutime/cstime) and those still alive."""
    tck = os.sysconf("SC_CLK_TCK")

    def fields(p):
        with open(f"/proc/{p}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()

    f = fields(pid)
    total = sum(int(x) for x in f[11:15])  # utime stime cutime cstime
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                c = fields(d)
            except OSError:
                continue
            if int(c[1]) == pid:
                total += int(c[11]) + int(c[12])
    return total / tck


def run_client(argv, env=None):
    """Run a client on CPU 0; return (its stdout, cpu seconds)."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                         preexec_fn=pin(0))
    out, err = b"", b""
    # wait4 for the child's own rusage; read the pipes first (outputs are small).
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({p.returncode}): {err.decode()[-500:]}")
    return out.decode(), ru.ru_utime + ru.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--peers", default="weft,weft-nap,asyncpg,psycopg,pgx,node,pgbench")
    ap.add_argument("--nap-ns", type=int, default=50000)
    ap.add_argument("--queries", default="select1,series,insert")
    ap.add_argument("--weft", default=os.path.join(ROOT, "build-release", "bench", "weft-bench-pg"))
    ap.add_argument("--pipeline", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=1,
                    help="run every client this many times, interleaved; report medians")
    a = ap.parse_args()
    peers = a.peers.split(",")
    queries = a.queries.split(",")

    tmp = tempfile.mkdtemp(prefix="weft-pgbench-")
    os.chmod(tmp, 0o755)
    data = os.path.join(tmp, "data")
    sock = os.path.join(tmp, "sock")
    os.mkdir(sock)
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(sock, pw.pw_uid, pw.pw_gid)
        os.mkdir(data)
        os.chown(data, pw.pw_uid, pw.pw_gid)
    log = open(os.path.join(tmp, "server.log"), "w")
    subprocess.run([f"{BINDIR}/initdb", "-D", data, "-U", "postgres", "-A", "trust",
                    "--no-sync", "-E", "UTF8", "--locale=C"], check=True, stdout=log,
                   stderr=log, preexec_fn=demote)
    server = subprocess.Popen(
        [f"{BINDIR}/postgres", "-D", data, "-c", "listen_addresses=", "-c",
         f"unix_socket_directories={sock}", "-c", "fsync=off", "-c", "synchronous_commit=off",
         "-c", "port=5432", "-c", "max_connections=100"],
        stdout=log, stderr=log, preexec_fn=lambda: (demote(), pin(1)()))
    conninfo = f"host={sock} port=5432 user=postgres dbname=postgres"
    psql = [f"{BINDIR}/psql", "-X", "-q", "-h", sock, "-p", "5432", "-U", "postgres", "postgres"]
    try:
        for _ in range(500):
            if subprocess.run([f"{BINDIR}/pg_isready", "-q", "-h", sock, "-p", "5432"]).returncode == 0:
                break
            time.sleep(0.02)
        subprocess.run(psql + ["-c", "CREATE TABLE bench_ins (a int, b text)"], check=True)

        # Build or find each peer.
        cmds = {}
        if "weft" in peers:
            if os.access(a.weft, os.X_OK):
                cmds["weft"] = lambda q: [a.weft, q, str(a.seconds), str(CONC), conninfo]
            else:
                print(f"weft: {a.weft} not built (cmake -DCMAKE_BUILD_TYPE=Release -B build-release)")
        if "weft-nap" in peers and os.access(a.weft, os.X_OK):
            cmds["weft-nap"] = lambda q: [a.weft, q, str(a.seconds), str(CONC), conninfo]
        if "asyncpg" in peers:
            cmds["asyncpg"] = lambda q: [PY, os.path.join(HERE, "asyncpg_bench.py"), q,
                                         str(a.seconds), str(CONC), sock]
        if "psycopg" in peers:
            cmds["psycopg"] = lambda q: [PY, os.path.join(HERE, "psycopg_bench.py"), q,
                                         str(a.seconds), str(CONC), sock]
        goenv = dict(os.environ, GO111MODULE="off", GOPATH="/usr/share/gocode",
                     GOCACHE=os.path.join(tmp, "gocache"), GOMAXPROCS="1")
        if "pgx" in peers:
            exe = os.path.join(tmp, "pgx_bench")
            r = subprocess.run(["go", "build", "-o", exe, os.path.join(HERE, "pgx_bench.go")],
                               env=goenv, capture_output=True, text=True)
            if r.returncode == 0:
                cmds["pgx"] = lambda q: [exe, q, str(a.seconds), str(CONC), sock]
            else:
                print("pgx: build failed:", r.stderr[-400:])
        if "node" in peers:
            nd = os.path.join(tmp, "node")
            os.makedirs(nd)
            shutil.copy(os.path.join(HERE, "node_bench.js"), nd)
            r = subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "pg"],
                               cwd=nd, capture_output=True, text=True)
            if r.returncode == 0:
                cmds["node"] = lambda q: ["node", os.path.join(nd, "node_bench.js"), q,
                                          str(a.seconds), str(CONC), sock]
            else:
                print("node: npm install pg failed:", r.stderr[-400:])
        if "pgbench" in peers:
            cmds["pgbench"] = lambda q: [f"{BINDIR}/pgbench", "-n", "-M", "prepared", "-c",
                                         str(CONC), "-j", "1", "-T", str(int(a.seconds)), "-f",
                                         os.path.join(HERE, q + ".sql"), "-h", sock, "-p", "5432",
                                         "-U", "postgres", "postgres"]

        rows = []
        for q in queries:
            runs = {}
            for rnd in range(a.rounds):
                for peer, cmd in cmds.items():
                    subprocess.run(psql + ["-c", "TRUNCATE bench_ins"], check=True)
                    env = goenv if peer == "pgx" else None
                    if peer == "weft-nap":
                        env = dict(os.environ, WEFT_BENCH_NAP_NS=str(a.nap_ns))
                    s0, w0 = server_cpu(server.pid), time.monotonic()
                    out, cpu = run_client(cmd(q), env)
                    time.sleep(0.3)  # the backends exit and are reaped
                    busy = (server_cpu(server.pid) - s0) / (time.monotonic() - w0 - 0.3)
                    if peer == "pgbench":
                        n = int(re.search(r"number of transactions actually processed: (\d+)", out).group(1))
                        qps = float(re.search(r"tps = ([\d.]+)", out).group(1))
                        total = n
                    else:
                        m = re.search(r"queries (\d+) seconds ([\d.]+) total (\d+) cpu ([\d.]+)", out)
                        n, secs = int(m.group(1)), float(m.group(2))
                        cpu, total = float(m.group(4)), n  # CPU of the counted window only
                        qps = n / secs
                    us = cpu / max(total, 1) * 1e6
                    runs.setdefault(peer, []).append((qps, us, busy))
                    print(f"  {q:8} {peer:8} {qps:10.0f} q/s  {us:7.1f} us CPU/query  "
                          f"server core {busy * 100:3.0f} % busy", file=sys.stderr)
            for peer, rs in runs.items():
                med = lambda xs: sorted(xs)[len(xs) // 2]
                rows.append((q, peer, med([r[0] for r in rs]), med([r[1] for r in rs]),
                             med([r[2] for r in rs])))

        if a.rounds > 1:
            print(f"(medians of {a.rounds} interleaved rounds)")
        print("| query | client | queries/s | client CPU µs/query | weft q/s ÷ this | this CPU ÷ pgbench CPU | server core busy | server CPU µs/query |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        for q in queries:
            byp = {p: (qps, cpu, busy) for (qq, p, qps, cpu, busy) in rows if qq == q}
            for p, (qps, cpu, busy) in byp.items():
                w = byp.get("weft", (None, None, None))[0]
                fl = byp.get("pgbench", (None, None, None))[1]
                r1 = f"{w / qps:.2f}" if w else "-"
                r2 = f"{cpu / fl:.2f}" if fl else "-"
                print(f"| {q} | {p} | {qps:,.0f} | {cpu:.1f} | {r1} | {r2} | {busy * 100:.0f} % | {busy / qps * 1e6:.1f} |")

        if "weft" in cmds and a.pipeline > 0:
            subprocess.run(psql + ["-c", "TRUNCATE bench_ins"], check=True)
            out, _ = run_client([a.weft, "pipeline", str(a.pipeline), conninfo])
            print()
            print(out.strip())
    finally:
        server.send_signal(signal.SIGINT)
        server.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
