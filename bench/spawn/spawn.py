"""asyncio: create_subprocess_exec('/bin/true') + wait(); `seq` one at a time, `par` 64 tasks.
Usage as weft-bench-spawn: python3 spawn.py seq|par COUNT HEAP_MIB"""
import asyncio
import resource
import sys
import time


async def worker(left):
    while left[0] > 0:
        left[0] -= 1
        p = await asyncio.create_subprocess_exec("/bin/true")
        if await p.wait() != 0:
            raise SystemExit("child failed")


async def main(mode, n):
    left = [n]
    await asyncio.gather(*(worker(left) for _ in range(64 if mode == "par" else 1)))


mode, n, heap = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
mem = bytearray(heap << 20)
if heap:
    mem[::4096] = b"\x01" * len(range(0, len(mem), 4096))  # touch every page


def cpu_seconds():
    """CPU time used so far by this process and its reaped children (user + system)."""
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


cpu0 = cpu_seconds()
t0 = time.perf_counter()
asyncio.run(main(mode, n))
us = (time.perf_counter() - t0) * 1e6 / n
cpu = (cpu_seconds() - cpu0) * 1e6 / n
print(f"asyncio {mode} heap={heap} n={n} wall {us:.1f} cpu {cpu:.1f} us/spawn")
