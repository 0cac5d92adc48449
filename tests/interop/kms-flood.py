#!/usr/bin/python3
"""A flood of unauthenticated connections: thousands of TCP connections that send a
few bytes (one in ten a whole ClientHello) and then nothing, from 30 source addresses
(127.0.0.2-31), while a real mTLS KMIP client on 127.0.0.1 keeps connecting and
asking. The client must be served throughout; the flood's connections must be
closed by the handshake deadline; a 31st address over its per-address limit is cut
off; and the server's memory must come back near where it started.
Usage: kms-flood.py PORT DIR PID N HANDSHAKE_TIMEOUT PER_ADDRESS"""
import importlib.util
import multiprocessing
import os
import resource
import socket
import ssl
import sys
import time

spec = importlib.util.spec_from_file_location("kt", os.path.join(os.path.dirname(__file__), "kms-ttlv.py"))
kt = importlib.util.module_from_spec(spec)
spec.loader.exec_module(kt)
check, T, OP, item, one = kt.check, kt.T, kt.OP, kt.item, kt.one
port, d, pid, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
deadline, per_address = float(sys.argv[5]), int(sys.argv[6])
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss_kib():
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])


def client_hello():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    i, o = ssl.MemoryBIO(), ssl.MemoryBIO()
    s = ctx.wrap_bio(i, o)
    try:
        s.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return o.read()


QUERY = kt.request([(OP["QUERY"], [item(T["QUERY_FUNCTION"], kt.ENUM, 3)], None)])


def ask(c):
    c.send_raw(QUERY)
    bi = one(kt.parse(c.recv_msg())[0][2], T["BATCH_ITEM"])
    return one(bi, T["RESULT_STATUS"]) == 0


# The real client: a connection made before the flood stays, and a new connection
# (whose handshake competes with the flood's) asks every 50 ms, from a process of its
# own (a thread would wait for the flooding loop's interpreter lock mid-handshake).
kept = kt.Conn(port, d, "real")
check(ask(kept), "real client served before the flood")


def real_client(stop, out):
    served, failures = 0, []
    while not stop.is_set():
        try:
            c = kt.Conn(port, d, "real")
            ok = ask(c)
            c.s.close()
            if ok:
                served += 1
            else:
                failures.append("answer not Success")
        except (OSError, ConnectionError, AssertionError, IndexError, TypeError) as e:
            failures.append("%s: %s" % (type(e).__name__, e))
        time.sleep(0.05)
    out.send((served, failures))


base = rss_kib()
stop = multiprocessing.Event()
result, result_w = multiprocessing.Pipe(False)
t = multiprocessing.Process(target=real_client, args=(stop, result_w))
t.start()
time.sleep(0.2)
# One address over its limit (before the flood, while the total is far from its
# cap): the surplus is closed at once.
over = []
for i in range(per_address + 50):
    s = socket.socket()
    s.bind(("127.0.0.40", 0))
    s.connect(("127.0.0.1", port))
    s.send(b"\x16\x03")
    over.append(s)
hello = client_hello()
flood = []
start = time.monotonic()
for i in range(n):
    s = socket.socket()
    s.bind(("127.0.0.%d" % (2 + i % 30), 0))
    try:
        s.connect(("127.0.0.1", port))
        # Most send 2 bytes of a record header, one in ten a whole ClientHello (the
        # server starts TLS for those: they cost it more, and are pushed out last;
        # more of them than max-unauthenticated could push out a real client in
        # its handshake), then nothing.
        s.send(hello if i % 10 == 0 else b"\x16\x03")
    except OSError:
        pass
    flood.append(s)
flood_s = time.monotonic() - start
peak = rss_kib()
print("flood of %d connections sent in %.1f s; server RSS %d -> %d KiB" % (n, flood_s, base, peak))

# The real client was served all along, and every flood connection is closed by the
# server by the deadline (or earlier, pushed out by newer ones): reading gives EOF or
# a reset, not a timeout.
time.sleep(deadline + 1.5)
stop.set()
served, failures = result.recv()
t.join()
check(not failures, "real client served throughout the flood: %d new connections served, %d failed %s"
      % (served, len(failures), failures[:3]))
check(served >= 10, "real client made %d connections during the flood" % served)
open_ = 0
for s in flood + over:
    s.settimeout(0.01)
    try:
        if s.recv(1 << 16) == b"":
            continue
        # A ClientHello got the server's answer: the close follows it.
        while s.recv(1 << 16):
            pass
    except (ConnectionResetError, BrokenPipeError):
        continue
    except (socket.timeout, BlockingIOError):
        open_ += 1
check(open_ == 0, "all %d flood connections closed by the server within handshake-timeout (%d still open)"
      % (len(flood) + len(over), open_))
for s in flood + over:
    s.close()
check(ask(kept), "the connection made before the flood still served")

# Memory back near its start once the flood has drained (heap trimmed).
time.sleep(1.5)
end = rss_kib()
limit = int(os.environ.get("KMS_FLOOD_RSS_SLACK_KIB", "8192"))
print("server RSS: start %d KiB, peak %d KiB, after the flood %d KiB" % (base, peak, end))
check(end - base <= limit, "server RSS back within %d KiB of its start (%+d KiB)" % (limit, end - base))
