"""An asyncio client for weft's interop test: talks to an echo server and checks every byte.

usage: py_echo_client.py HOST PORT | py_echo_client.py unix PATH
Exits 0 when everything came back as sent, 1 otherwise; gives up after 20 s.
"""
import asyncio
import sys


async def exchange(reader, writer):
    # Lines, one at a time.
    for i in range(100):
        line = f"line {i} from asyncio\n".encode()
        writer.write(line)
        await writer.drain()
        got = await reader.readline()
        assert got == line, (got, line)
    # A large payload in one write while we read concurrently (backpressure both ways).
    big = bytes(range(256)) * 8192  # 2 MiB
    async def send():
        writer.write(big)
        await writer.drain()
    sender = asyncio.create_task(send())
    got = await reader.readexactly(len(big))
    await sender
    assert got == big, "payload corrupted"
    # Half-close: the server sees EOF, finishes and closes; we then see EOF too.
    writer.write(b"last words")
    writer.write_eof()
    rest = await reader.read()
    assert rest == b"last words", rest
    writer.close()
    await writer.wait_closed()


async def main():
    if sys.argv[1] == "unix":
        reader, writer = await asyncio.open_unix_connection(sys.argv[2])
    else:
        reader, writer = await asyncio.open_connection(sys.argv[1], int(sys.argv[2]))
    await exchange(reader, writer)


if __name__ == "__main__":
    try:
        asyncio.run(asyncio.wait_for(main(), 20))
    except Exception as e:  # noqa: BLE001 - report anything as a failure
        print(f"py_echo_client: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    sys.exit(0)
