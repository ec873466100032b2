#!/usr/bin/env python3
"""The capacity benchmark's Python peer (issue 19): the SCGI spec author's
(Neil Schemenauer's) `scgi` package from PyPI, version 2.2 (the newest), as
its guide (doc/guide.html) shows it: a subclass of
`scgi.scgi_server.SCGIHandler` overriding `produce(env, bodysize, input,
output)`, served by `SCGIServer(handler_class=..., host=..., port=...,
max_children=...).serve()`.

    python3 bench/peer_scgi.py HOST:PORT | unix:PATH

(with the venv's python from `bench/peer-python.sh DIR`). Same answers as
the Rust peers (bench/peer-servers/src/lib.rs): a request without a body
gets "Hello for the {n}th time" with n counted from 1 across all the
children, one with a body gets it echoed back, a malformed one a 400.

Process model: the package's own, preforking. The parent accepts each
connection and passes its descriptor to an idle child over a Unix socket
pair; each child serves one connection at a time; the parent forks more
children on demand up to `max_children`, the package's default of 5
unless PEER_SCGI_MAX_CHILDREN says otherwise (on two cores, five
processes already keep the CPUs busy; more only queue in the kernel
instead of in the parent). The package listens with a backlog of 40
(hard-coded in `serve_on_socket`).

Unix sockets: `serve()` binds TCP (IPv4) only, but `serve_on_socket(sock)`,
which `serve()` calls, takes any listening socket, so `unix:PATH` binds one
here (after removing a stale file at PATH) and hands it to that.

SIGTERM or SIGINT stops the parent and its children: the parent sends
SIGTERM to each child it started, waits for them, removes the Unix socket
file, and exits.
"""

import multiprocessing
import os
import signal
import socket
import sys

from scgi.scgi_server import SCGIHandler, SCGIServer

BAD_REQUEST = b"Status: 400 Bad Request\r\nContent-Length: 0\r\n\r\n"

# The count of hellos, shared by the forked children (a word of shared
# memory and its lock, created before the first fork).
HELLOS = multiprocessing.Value("Q", 0)


def hello(n):
    """The answer to the nth request without a body, head and body."""
    body = b"Hello for the %dth time" % n
    head = b"Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
    return head % len(body) + body


def echo(body):
    """The answer to a request with a body: the body echoed back."""
    head = (
        b"Status: 200 OK\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Length: %d\r\n\r\n"
    )
    return head % len(body) + body


class PeerHandler(SCGIHandler):
    """The benchmark's handler, run in each child."""

    def __init__(self, parent_fd):
        # Made in the child just after its fork: the parent's SIGTERM ends
        # it at once (the parent's own handler is for the parent).
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        super().__init__(parent_fd)

    def produce(self, env, bodysize, input, output):
        if bodysize:
            body = input.read(bodysize)
            if len(body) < bodysize:
                return  # closed before the whole body
            answer = echo(body)
        else:
            with HELLOS.get_lock():
                HELLOS.value += 1
                n = HELLOS.value
            answer = hello(n)
        # Head and body in one write (`output` is buffered; closing it,
        # which the package does after produce(), sends it).
        output.write(answer)

    def handle_connection(self, conn):
        # The package's handle_connection raises on a malformed netstring
        # or CONTENT_LENGTH (ValueError, OSError), and on a connection
        # closed before its request (OSError); uncaught, that ends the
        # child with a traceback. Answer 400 (to a closed connection it
        # goes nowhere) and keep the child.
        try:
            super().handle_connection(conn)
        except (OSError, ValueError):
            try:
                conn.sendall(BAD_REQUEST)
            except OSError:
                pass


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: %s HOST:PORT | unix:PATH" % sys.argv[0])
    addr = sys.argv[1]
    max_children = int(os.environ.get("PEER_SCGI_MAX_CHILDREN", "5"))
    parent = os.getpid()
    unix_path = addr[len("unix:"):] if addr.startswith("unix:") else None

    if unix_path is not None:
        server = SCGIServer(handler_class=PeerHandler, max_children=max_children)
    else:
        host, sep, port = addr.rpartition(":")
        if not sep or not port.isdigit():
            sys.exit("%s: not HOST:PORT or unix:PATH: %r" % (sys.argv[0], addr))
        server = SCGIServer(
            handler_class=PeerHandler,
            host=host,
            port=int(port),
            max_children=max_children,
        )

    def stop(signum, frame):
        if os.getpid() != parent:
            # A child forked before it could reset its handlers.
            os._exit(0)
        for child in list(server.children):
            try:
                os.kill(child.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for child in list(server.children):
            try:
                os.waitpid(child.pid, 0)
            except ChildProcessError:
                pass
        if unix_path is not None:
            try:
                os.unlink(unix_path)
            except OSError:
                pass
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    if unix_path is None:
        server.serve()
    else:
        try:
            os.unlink(unix_path)
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(unix_path)
        server.serve_on_socket(sock)


if __name__ == "__main__":
    main()
