"""crawlserver: a Gemini server for gemwatch's crawl tests (Python, ssl).

Serves the directory tree DOCROOT on loopback with the key and certificate
given, prints its port on the first line of stdout, and appends each
request's path to LOG, one a line, so a test can tell what was requested.
A directory serves its index.gmi; .gmi is text/gemini, .txt text/plain,
anything else application/octet-stream; what does not exist is 51. A few
paths misbehave on purpose:

  /cut/...          the file, then the connection closed without close_notify
  /chain/N          31 to /chain/N-1; /chain/0 is a page
  /loop/a, /loop/b  31 to each other
  /endless/N        a page linking to /endless/2N+1 and /endless/2N+2
  /big              a body of BIG bytes

usage: crawlserver.py DOCROOT KEY CERT LOG [BIG]
"""
import os
import socket
import ssl
import sys
import threading
import urllib.parse

root, key, cert, logpath = sys.argv[1:5]
big = int(sys.argv[5]) if len(sys.argv) > 5 else 5 * 1024 * 1024
log_lock = threading.Lock()


def mime(path):
    if path.endswith(".gmi"):
        return "text/gemini"
    if path.endswith(".txt"):
        return "text/plain"
    return "application/octet-stream"


def answer(path):
    """(header, body, close_notify) for a request path."""
    if path.startswith("/chain/"):
        n = int(path[7:] or 0)
        if n > 0:
            return "31 /chain/%d" % (n - 1), b"", True
        return "20 text/gemini", b"# end of the chain\n", True
    if path == "/loop/a":
        return "31 /loop/b", b"", True
    if path == "/loop/b":
        return "31 gemini://127.0.0.1:%d/loop/a" % PORT, b"", True
    if path.startswith("/endless/"):
        n = int(path[9:] or 0)
        body = "# page %d\n=> /endless/%d\n=> /endless/%d\n" % (
            n, 2 * n + 1, 2 * n + 2)
        return "20 text/gemini", body.encode(), True
    if path == "/big":
        return "20 application/octet-stream", b"x" * big, True
    cut = path.startswith("/cut/")
    if cut:
        path = path[4:]
    fs = os.path.normpath(os.path.join(root, path.lstrip("/")))
    if not fs.startswith(os.path.normpath(root)):
        return "51 Not found", b"", True
    if os.path.isdir(fs):
        fs = os.path.join(fs, "index.gmi")
    try:
        with open(fs, "rb") as f:
            body = f.read()
    except OSError:
        return "51 Not found", b"", True
    return "20 " + mime(fs), body, not cut


def serve(conn):
    try:
        s = ctx.wrap_socket(conn, server_side=True)
        req = b""
        while not req.endswith(b"\r\n") and len(req) < 1100:
            chunk = s.recv(1100)
            if not chunk:
                return
            req += chunk
        url = req.decode("utf-8", "replace").strip()
        rest = url.split("://", 1)[-1]
        path = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
        path = urllib.parse.unquote(path)
        with log_lock, open(logpath, "a") as f:
            f.write(path + "\n")
        header, body, close_notify = answer(path.split("?", 1)[0])
        s.sendall(header.encode() + b"\r\n" + body)
        if close_notify:
            try:
                s.unwrap()
            except (OSError, ssl.SSLError):
                pass
        s.close()
    except (OSError, ssl.SSLError, ValueError):
        pass
    finally:
        conn.close()


ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
lsock = socket.socket()
lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lsock.bind(("127.0.0.1", 0))
lsock.listen(64)
PORT = lsock.getsockname()[1]
print(PORT, flush=True)
while True:
    c, _ = lsock.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
