"""Python aiohttp's side of weft-curl's benchmark: INFLIGHT workers share one ClientSession
(TCPConnector(limit=INFLIGHT), keep-alive) and make N GETs of URL in all.
    python3 client.py URL [N] [INFLIGHT]"""
import asyncio
import resource
import sys
import time

import aiohttp


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def main(url, n, inflight):
    st = {"next": 0, "done": 0, "bad": 0, "bytes": 0}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=inflight)) as s:
        async def worker():
            while st["next"] < n:
                st["next"] += 1
                try:
                    async with s.get(url) as r:
                        b = await r.read()
                        st["bytes"] += len(b)
                        st["bad"] += r.status != 200
                except Exception:
                    st["bad"] += 1
                st["done"] += 1

        c0, t0 = cpu(), time.monotonic()
        await asyncio.gather(*(worker() for _ in range(inflight)))
        wall, c = time.monotonic() - t0, cpu() - c0
    print("aiohttp requests=%d errors=%d bytes=%d wall_s=%.3f cpu_s=%.3f cpu_us_per_req=%.2f"
          % (st["done"], st["bad"], st["bytes"], wall, c, c * 1e6 / st["done"]))
    return st["bad"] != 0


if __name__ == "__main__":
    a = sys.argv[1:]
    sys.exit(asyncio.run(main(a[0], int(a[1]) if len(a) > 1 else 10000,
                              int(a[2]) if len(a) > 2 else 100)))
