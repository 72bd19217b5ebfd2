"""A TLS peer in CPython's ssl module for the weft TLS tests (nobody here wrote its TLS).
  py_tls_peer.py client HOST PORT CAFILE   two connections (the second resumes the first's
      session): send lines, check the echo, close with unwrap() (close_notify both ways); prints
      "OK <version> <alpn> <reused>" per connection
  py_tls_peer.py server CERT KEY N         serves N connections on 127.0.0.1:0 (prints
      "PORT <n>" first): echoes lines until the peer's close_notify, then answers it; prints
      "clean" or "truncated" per connection
"""
import socket
import ssl
import sys


def client(host, port, cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    session = None
    for _ in range(2):
        raw = socket.create_connection((host, port), timeout=20)
        s = ctx.wrap_socket(raw, server_hostname="localhost", session=session)
        f = b""
        for line in (b"hello\n", b"x" * 20000 + b"\n", b"world\n"):
            s.sendall(line)
            got = b""
            while not got.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    raise SystemExit("early end")
                got += chunk
            if got != line:
                raise SystemExit("bad echo")
        reused = s.session_reused
        session = s.session
        print("OK", s.version(), s.selected_alpn_protocol(), reused, flush=True)
        s.unwrap()  # close_notify, and wait for the server's
        raw.close()


def server(cert, key, n):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])
    # CPython 3.10+ reads an unexpected EOF as a clean end by default: report it instead.
    ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)
    print("PORT", ls.getsockname()[1], flush=True)
    for _ in range(n):
        raw, _ = ls.accept()
        raw.settimeout(20)
        try:
            s = ctx.wrap_socket(raw, server_side=True, suppress_ragged_eofs=False)
        except (ssl.SSLError, OSError) as e:
            print("handshake-failed", type(e).__name__, flush=True)
            raw.close()
            continue
        buf = b""
        result = "clean"
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    s.sendall(line + b"\n")
            s.unwrap()
        except ssl.SSLEOFError:
            result = "truncated"
        except ssl.SSLError as e:
            truncated = "UNEXPECTED_EOF" in str(getattr(e, "reason", ""))
            result = "truncated" if truncated else "error-" + str(getattr(e, "reason", e))
        except OSError as e:
            result = "error-" + type(e).__name__
        print(result, flush=True)
        raw.close()


if __name__ == "__main__":
    if sys.argv[1] == "client":
        client(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        server(sys.argv[2], sys.argv[3], int(sys.argv[4]))
