"""Clients that misbehave against vmcrypt-manager, for fleet-limits.sh.

idle ADDR PORT SRC N: N TCP connections from source address SRC that send
nothing; prints how many the manager closed within 1 s, then how many within
another handshake-timeout + 2 s.

slow ADDR PORT CA CERT KEY OUT: a TLS event follower that asks for the stream
and then does not read (a small receive buffer); when told on stdin (a line),
reads what is there until the end and writes the number of events it got to OUT.

flood ADDR PORT CA CERT KEY N: N refused requests (each an access-denied event)
over one keep-alive connection."""
import socket
import ssl
import sys
import time


def closed(sock):
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def idle(addr, port, src, n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind((src, 0))
        s.connect((addr, int(port)))
        socks.append(s)
    time.sleep(1)
    print(sum(closed(s) for s in socks))
    sys.stdout.flush()
    time.sleep(float(sys.argv[6]) + 2)
    print(sum(closed(s) for s in socks))


def context(ca, cert, key):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    ctx.load_cert_chain(cert, key)
    return ctx


def slow(addr, port, ca, cert, key, out):
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect((addr, int(port)))
    s = context(ca, cert, key).wrap_socket(raw)
    s.sendall(b"GET /events?follow=1 HTTP/1.1\r\nHost: m\r\n\r\n")
    sys.stdin.readline()
    s.settimeout(10)
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except (OSError, ssl.SSLError):
        pass
    with open(out, "w") as f:
        f.write("%d\n" % data.count(b'"kind":'))


def flood(addr, port, ca, cert, key, n):
    import http.client
    c = http.client.HTTPSConnection(addr, int(port), context=context(ca, cert, key))
    for _ in range(int(n)):
        c.request("POST", "/vms/" + "x" * 100 + "/encrypt", body="{}")
        r = c.getresponse()
        r.read()
        if r.status != 403:
            sys.exit("expected 403, got %d" % r.status)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "idle":
        idle(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif cmd == "slow":
        slow(*sys.argv[2:8])
    elif cmd == "flood":
        flood(*sys.argv[2:8])
