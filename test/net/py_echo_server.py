"""An asyncio echo server for weft's interop test.

usage: py_echo_server.py
Listens on 127.0.0.1, port chosen by the system, and prints the port on stdout. Echoes lines;
a line "QUIT" stops the server (exit 0). Gives up after 20 s (exit 1).
"""
import asyncio
import sys


async def main():
    done = asyncio.get_running_loop().create_future()

    async def handle(reader, writer):
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                if line == b"QUIT\n":
                    if not done.done():
                        done.set_result(None)
                    break
                writer.write(line)
                await writer.drain()
        except asyncio.CancelledError:
            pass  # the server is shutting down: connections still open are dropped quietly
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await asyncio.wait_for(done, 20)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except Exception as e:  # noqa: BLE001
        print(f"py_echo_server: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    sys.exit(0)
