"""asyncpg client of bench/pg/run.py: QUERY SECONDS CONCURRENCY HOST(socket dir).
A pool of CONCURRENCY connections, as many coroutines running QUERY in a loop; 1 s warm-up."""
import asyncio, resource, sys, time


def cpu_now():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime
import asyncpg

SQL = {
    "select1": "SELECT $1::int AS a, 'hello'::text AS b",
    "series": "SELECT i, 'row ' || i AS t FROM generate_series(1, 1000) AS i",
    "insert": "INSERT INTO bench_ins (a, b) VALUES ($1, $2)",
}

async def main(query, seconds, conc, host):
    pool = await asyncpg.create_pool(host=host, port=5432, user="postgres", database="postgres",
                                     min_size=conc, max_size=conc)
    sql = SQL[query]
    t_start = time.monotonic() + 1.0
    t_end = t_start + seconds
    cpu0 = [0.0]
    asyncio.get_running_loop().call_later(1.0, lambda: cpu0.__setitem__(0, cpu_now()))
    counted = 0
    total = 0

    async def worker(wid):
        nonlocal counted, total
        i = 0
        while True:
            now = time.monotonic()
            if now >= t_end:
                return
            async with pool.acquire() as c:
                if query == "series":
                    rows = await c.fetch(sql)
                    for r in rows:
                        r[0], r[1]
                elif query == "select1":
                    rows = await c.fetch(sql, i & 0xffff)
                    for r in rows:
                        r[0], r[1]
                else:
                    await c.execute(sql, wid, "hello")
            total += 1
            if now >= t_start:
                counted += 1
            i += 1

    await asyncio.gather(*(worker(w) for w in range(conc)))
    cpu = cpu_now() - cpu0[0]
    await pool.close()
    print(f"queries {counted} seconds {seconds:.3f} total {total} cpu {cpu:.4f}")

asyncio.run(main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
