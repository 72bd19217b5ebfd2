"""psycopg 3 (async) client of bench/pg/run.py: QUERY SECONDS CONCURRENCY HOST(socket dir).
CONCURRENCY async connections, one per coroutine, running QUERY in a loop (psycopg prepares a
statement after it ran 5 times); 1 s warm-up."""
import asyncio, resource, sys, time


def cpu_now():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime
import psycopg

SQL = {
    "select1": "SELECT %s::int AS a, 'hello'::text AS b",
    "series": "SELECT i, 'row ' || i AS t FROM generate_series(1, 1000) AS i",
    "insert": "INSERT INTO bench_ins (a, b) VALUES (%s, %s)",
}

async def main(query, seconds, conc, host):
    dsn = f"host={host} port=5432 user=postgres dbname=postgres"
    conns = [await psycopg.AsyncConnection.connect(dsn, autocommit=True) for _ in range(conc)]
    sql = SQL[query]
    t_start = time.monotonic() + 1.0
    t_end = t_start + seconds
    cpu0 = [0.0]
    asyncio.get_running_loop().call_later(1.0, lambda: cpu0.__setitem__(0, cpu_now()))
    counted = 0
    total = 0

    async def worker(wid, c):
        nonlocal counted, total
        i = 0
        async with c.cursor() as cur:
            while True:
                now = time.monotonic()
                if now >= t_end:
                    return
                if query == "series":
                    await cur.execute(sql)
                    await cur.fetchall()
                elif query == "select1":
                    await cur.execute(sql, (i & 0xffff,))
                    await cur.fetchall()
                else:
                    await cur.execute(sql, (wid, "hello"))
                total += 1
                if now >= t_start:
                    counted += 1
                i += 1

    await asyncio.gather(*(worker(w, c) for w, c in enumerate(conns)))
    cpu = cpu_now() - cpu0[0]
    for c in conns:
        await c.close()
    print(f"queries {counted} seconds {seconds:.3f} total {total} cpu {cpu:.4f}")

asyncio.run(main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
