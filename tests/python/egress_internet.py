"""Plays "the internet" for tests/tests/egress.rs, inside the test's own
network namespace: HTTP servers on several addresses (port 80, and 8080
for flows that do not go through the egress proxy), TLS servers (443,
a self-signed certificate made by the test), a slow download (/slow), and
a DNS server for the test's names. Every accepted connection is logged as
"ADDR:PORT" to DIR/conns.log. DIR/ready appears once all are listening.

usage: egress_internet.py DIR DNS_ADDR NAME=IP... -- HTTP_ADDR=TEXT...
"""
import http.server
import os
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time

DIR = sys.argv[1]
DNS_ADDR = sys.argv[2]
rest = sys.argv[3:]
sep = rest.index("--")
NAMES = dict(a.split("=", 1) for a in rest[:sep])
SITES = dict(a.split("=", 1) for a in rest[sep + 1:])
LOG_LOCK = threading.Lock()


def log_conn(addr, port):
    with LOG_LOCK, open(os.path.join(DIR, "conns.log"), "a") as f:
        f.write(f"{addr}:{port}\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *a):
        pass

    def do_GET(self):
        if self.path == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", str(1024 * 1000))
            self.end_headers()
            for _ in range(1000):
                self.wfile.write(b"x" * 1024)
                self.wfile.flush()
                time.sleep(0.03)
            return
        body = (self.server.text + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, port, text, tls):
        super().__init__((addr, port), Handler)
        self.text = text
        self.tls = tls

    def process_request(self, request, client_address):
        log_conn(*self.server_address)
        super().process_request(request, client_address)

    def finish_request(self, request, client_address):
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        self.RequestHandlerClass(request, client_address, self)


def dns():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((DNS_ADDR, 53))
    while True:
        q, peer = s.recvfrom(512)
        try:
            qid, _flags, qd = struct.unpack(">HHH", q[:6])
            i, labels = 12, []
            while q[i]:
                labels.append(q[i + 1 : i + 1 + q[i]].decode().lower())
                i += 1 + q[i]
            qtype = struct.unpack(">H", q[i + 1 : i + 3])[0]
            question = q[12 : i + 5]
        except (IndexError, struct.error, UnicodeDecodeError):
            continue
        name = ".".join(labels)
        ip = NAMES.get(name)
        answers = b""
        rcode = 0 if ip else 3
        if ip and qtype == 1:
            answers = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 5, 4) + socket.inet_aton(ip)
        hdr = struct.pack(">HHHHHH", qid, 0x8180 | rcode, 1, 1 if answers else 0, 0, 0)
        s.sendto(hdr + question + answers, peer)


def main():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # busybox's TLS client offers few suites: accept them all.
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    ctx.load_cert_chain(os.path.join(DIR, "cert.pem"), os.path.join(DIR, "key.pem"))
    servers = []
    for addr, text in SITES.items():
        servers.append(Server(addr, 80, text + "-http", None))
        servers.append(Server(addr, 8080, text + "-direct", None))
        servers.append(Server(addr, 443, text + "-https", ctx))
    for srv in servers:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    threading.Thread(target=dns, daemon=True).start()
    time.sleep(0.2)
    open(os.path.join(DIR, "ready"), "w").close()
    while True:
        time.sleep(3600)


main()
