"""Real Python clients against examples/http_server: http.client (keep-alive, chunked upload,
HEAD, 100-continue by hand) and, when available, the aiohttp client (Debian python3-aiohttp).
Usage: py_clients.py PORT http.client|aiohttp. Prints OK on success, exits 77 when aiohttp is
missing, 1 on a failure (with the reason)."""
import http.client
import json
import socket
import sys

port = int(sys.argv[1])
mode = sys.argv[2]


def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)


def with_http_client():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    # Keep-alive: several requests on one connection (http.client reuses its socket).
    for i in range(3):
        c.request("GET", "/a.txt")
        r = c.getresponse()
        check(r.status == 200 and r.read() == b"hello\n", "GET a.txt")
        check(r.getheader("Content-Type").startswith("text/plain"), "content type")
    sock = c.sock
    c.request("HEAD", "/a.txt")
    r = c.getresponse()
    check(r.status == 200 and r.read() == b"" and r.getheader("Content-Length") == "6", "HEAD")
    check(c.sock is sock, "the connection was kept alive")
    # A chunked upload (encode_chunked) to the echo endpoint.
    c.request("POST", "/api/echo?q=1", body=iter([b"abc", b"defg"]),
              headers={"Transfer-Encoding": "chunked", "X-Rep": "1"}, encode_chunked=True)
    r = c.getresponse()
    j = json.loads(r.read())
    check(r.status == 200 and j["method"] == "POST" and j["query"] == "q=1", "echo")
    check(j["body_length"] == 7, "chunked body length")
    names = [h[0].lower() for h in j["headers"]]
    check("x-rep" in names and "transfer-encoding" in names, "echoed headers")
    c.request("GET", "/missing")
    r = c.getresponse()
    check(r.status == 404, "404")
    r.read()
    c.close()
    # 100-continue by hand: the interim answer comes before the body is sent.
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"POST /api/echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
              b"Content-Length: 5\r\n\r\n")
    got = s.recv(100)
    check(got.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), "100 Continue: %r" % got)
    s.sendall(b"hello")
    data = b""
    while b"body_length" not in data:
        d = s.recv(65536)
        check(d, "response after 100")
        data += d
    check(b"HTTP/1.1 200 OK" in data and b'"body_length":5' in data, "body after 100")
    s.close()


def with_aiohttp():
    try:
        import aiohttp
        import asyncio
    except ImportError:
        print("aiohttp is not installed")
        sys.exit(77)

    async def main():
        base = "http://127.0.0.1:%d" % port
        conn = aiohttp.TCPConnector(limit=4)
        async with aiohttp.ClientSession(connector=conn) as s:
            for _ in range(3):
                async with s.get(base + "/a.txt") as r:
                    check(r.status == 200 and await r.read() == b"hello\n", "aiohttp GET")
            async with s.head(base + "/a.txt") as r:
                check(r.status == 200 and r.headers["Content-Length"] == "6", "aiohttp HEAD")

            async def gen():
                for piece in (b"x" * 1000, b"y" * 2000):
                    yield piece
            async with s.post(base + "/api/echo?z", data=gen()) as r:
                j = await r.json()
                check(j["body_length"] == 3000 and j["query"] == "z", "aiohttp chunked post")
            async with s.post(base + "/api/echo", data=b"q" * 10,
                              expect100=True) as r:
                j = await r.json()
                check(j["body_length"] == 10, "aiohttp expect100")
            # 50 concurrent requests over at most 4 kept-alive connections.
            async def one(i):
                async with s.get(base + "/api/echo?i=%d" % i) as r:
                    return (await r.json())["query"]
            res = await asyncio.gather(*(one(i) for i in range(50)))
            check(res == ["i=%d" % i for i in range(50)], "aiohttp concurrent")
            async with s.delete(base + "/a.txt") as r:
                check(r.status == 405 and r.headers["Allow"] == "GET, HEAD", "aiohttp 405")
    asyncio.run(main())


if mode == "http.client":
    with_http_client()
else:
    with_aiohttp()
print("OK")
