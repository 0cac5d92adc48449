#!/usr/bin/python3
"""Many concurrent connections: N TLS clients connect and stay connected; each then
gets an answer, and the server's memory stays bounded. With a 5th argument MAX, the
server's connection limit is MAX: exactly MAX of the N are served, the others refused,
and once they close a new client is served again.
Usage: kms-connections.py PORT DIR PID N [MAX]"""
import importlib.util
import os
import sys

spec = importlib.util.spec_from_file_location("kt", os.path.join(os.path.dirname(__file__), "kms-ttlv.py"))
kt = importlib.util.module_from_spec(spec)
spec.loader.exec_module(kt)
T, OP, item, one = kt.T, kt.OP, kt.item, kt.one
port, d, pid, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])


def rss_kib():
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])


if len(sys.argv) > 5:
    limit_ = int(sys.argv[5])
    req = kt.request([(OP["QUERY"], [item(T["QUERY_FUNCTION"], kt.ENUM, 3)], None)])
    conns, served = [], 0
    for _ in range(n):
        try:
            c = kt.Conn(port, d, "many")
            conns.append(c)
            c.send_raw(req)
            r = c.recv_msg()
            served += bool(r)
        except (OSError, ConnectionError):
            pass
    if served != limit_:
        raise SystemExit("FAIL: %d of %d connections served, expected the limit %d" % (served, n, limit_))
    for c in conns:
        c.close()
    import time
    time.sleep(0.5)
    c = kt.Conn(port, d, "many")
    c.send_raw(req)
    if not c.recv_msg():
        raise SystemExit("FAIL: not served again after the crowd left")
    print("ok: connection limit %d enforced (%d tried), served again afterwards" % (limit_, n))
    sys.exit(0)

base = rss_kib()
conns = [kt.Conn(port, d, "many") for _ in range(n)]
req = kt.request([(OP["QUERY"], [item(T["QUERY_FUNCTION"], kt.ENUM, 3)], None)])
for c in conns:      # all requests out first: the server has n in hand at once
    c.send_raw(req)
ok = 0
for c in conns:
    resp = kt.parse(c.recv_msg())
    bi = one(resp[0][2], T["BATCH_ITEM"])
    ok += one(bi, T["RESULT_STATUS"]) == 0
grown = rss_kib() - base
for c in conns:
    c.close()
if ok != n:
    raise SystemExit("FAIL: %d of %d connections answered" % (ok, n))
print("ok: %d concurrent TLS connections all answered; server RSS grew by %d KiB (%.1f KiB each)" % (n, grown, grown / n))
limit = int(os.environ.get("KMS_CONN_LIMIT_KIB", "256"))  # per connection
if grown / n > limit:
    raise SystemExit("FAIL: more than %d KiB per connection" % limit)
