#!/usr/bin/env python3
"""HTTP/1.1 test server for weft-curl's tests (threaded, keep-alive). Binds 127.0.0.1 on a free
port, prints the port on stdout, and serves until killed or stdin closes.

  /bytes?n=N        N bytes ('x'), Content-Length, keep-alive
  /slow?ms=M&n=N    waits M ms, then as /bytes
  /stall            Content-Length 1000, sends 100 bytes, then nothing (until the client leaves)
  /forever          no Content-Length: streams zeros until the client leaves (an endless body)
  /huge             Content-Length 10 GiB, streams zeros until the client leaves
  /close            Content-Length 1000, sends 100 bytes and closes the connection
  /redirect?n=K     302 to /redirect?n=K-1; n=0 answers 200 "arrived"
  /loop             302 to itself
  /gzip             a 100,000-byte body sent gzip-compressed (Content-Encoding: gzip)
  /echo             answers the request body; X-Method, X-Got-Header echo the request
  /conns            the number of distinct client connections seen so far
"""
import gzip
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse

conns = set()
conns_lock = threading.Lock()
GZ = gzip.compress(b"weft " * 20000)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *a):
        pass

    def send_body(self, body, status=200, extra=()):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def stream_forever(self, length):
        self.send_response(200)
        if length is not None:
            self.send_header("Content-Length", str(length))
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        chunk = b"\0" * 65536
        try:
            while True:
                self.wfile.write(chunk)
        except OSError:
            pass
        self.close_connection = True

    def handle_any(self):
        with conns_lock:
            conns.add(self.client_address)
        u = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        n = int(q.get("n", "0"))
        body = b""
        if self.command in ("POST", "PUT", "PATCH"):
            if self.headers.get("Transfer-Encoding", "") == "chunked":
                while True:
                    size = int(self.rfile.readline().strip(), 16)
                    if size == 0:
                        self.rfile.readline()
                        break
                    body += self.rfile.read(size)
                    self.rfile.readline()
            else:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if u.path == "/bytes":
            self.send_body(b"x" * n)
        elif u.path == "/slow":
            time.sleep(int(q.get("ms", "0")) / 1000.0)
            self.send_body(b"x" * n)
        elif u.path in ("/stall", "/close"):
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"y" * 100)
            self.wfile.flush()
            if u.path == "/stall":
                # Hold the connection until the client goes away.
                try:
                    while self.rfile.read(1):
                        pass
                except OSError:
                    pass
            self.close_connection = True
        elif u.path == "/forever":
            self.stream_forever(None)
        elif u.path == "/huge":
            self.stream_forever(10 * 1024 ** 3)
        elif u.path == "/redirect":
            if n <= 0:
                self.send_body(b"arrived")
            else:
                self.send_body(b"", 302, [("Location", "/redirect?n=%d" % (n - 1))])
        elif u.path == "/loop":
            self.send_body(b"", 302, [("Location", "/loop")])
        elif u.path == "/gzip":
            self.send_body(GZ, 200, [("Content-Encoding", "gzip")])
        elif u.path == "/echo":
            self.send_body(body, 200, [("X-Method", self.command),
                                       ("X-Got-Header", self.headers.get("X-Test", "-"))])
        elif u.path == "/conns":
            with conns_lock:
                c = len(conns)
            self.send_body(str(c).encode())
        else:
            self.send_body(b"not found", 404)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "123")
        self.end_headers()


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients that leave mid-request are what the tests are about
    request_queue_size = 1024


def main():
    srv = Server(("127.0.0.1", 0), Handler)
    print(srv.server_address[1], flush=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    # Exit when the test closes our stdin (or dies).
    try:
        sys.stdin.read()
    except Exception:
        pass


if __name__ == "__main__":
    main()
