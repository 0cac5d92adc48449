#!/usr/bin/python3
"""Bad input to vmcrypt-kms: every malformed message gets an Invalid Message answer
or its connection closed, and a well-behaved client on another connection is served
throughout; a client that sends without reading answers is throttled, not buffered.
Usage: kms-badinput.py PORT DIR PID"""
import importlib.util
import os
import socket
import ssl
import struct
import sys
import time

spec = importlib.util.spec_from_file_location("kt", os.path.join(os.path.dirname(__file__), "kms-ttlv.py"))
kt = importlib.util.module_from_spec(spec)
spec.loader.exec_module(kt)
T, OP, item, S, attr, one, find = kt.T, kt.OP, kt.item, kt.S, kt.attr, kt.one, kt.find
port, d, pid = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
check = kt.check


good = kt.Conn(port, d, "good")
slow = kt.Conn(port, d, "bad")
slow.send_raw(b"\x42\x00\x78\x01")  # half a header, then nothing: must not block anyone


def good_still_served():
    _, b = good.call([(OP["QUERY"], [item(T["QUERY_FUNCTION"], kt.ENUM, 3)], None)])
    return one(b[0], T["RESULT_STATUS"]) == 0


def outcome(data, close_after=False):
    """'invalid' (Invalid Message answer), 'closed', or something unexpected."""
    c = kt.Conn(port, d, "bad")
    try:
        c.send_raw(data)
        if close_after:
            return "closed"  # the client vanishes mid-message; the server must cope
        resp = c.recv_msg()
    except (OSError, ConnectionError):
        return "closed"
    finally:
        c.close()
    if not resp:
        return "closed"
    if len(resp) < 8 or len(resp) != 8 + int.from_bytes(resp[4:8], "big"):
        return "partial answer %r" % resp
    top = kt.parse(resp)
    bis = find(top[0][2], T["BATCH_ITEM"])
    if len(bis) == 1 and one(bis[0], T["RESULT_STATUS"]) == 1 and one(bis[0], T["RESULT_REASON"]) == 4:
        return "invalid"
    return "answered %r" % (bis,)


valid = kt.request([(OP["QUERY"], [item(T["QUERY_FUNCTION"], kt.ENUM, 3)], None)])
cases = {
    "truncated message then EOF": (valid[:len(valid) // 2], True),
    "header announcing 2 GiB": (b"\x42\x00\x78\x01\x80\x00\x00\x00" + b"\0" * 64, False),
    "message over max-message-size": (b"\x42\x00\x78\x01\x00\x20\x00\x00" + b"\0" * 64, False),
    "top item not a structure": (item(T["REQUEST_MESSAGE"], kt.INT, 5), False),
    "HTTP instead of KMIP": (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", False),
    "response message sent as request": (S(0x42007B, *kt.parse(valid) and []), False),
    "inner length lying past the end": (valid[:8] + valid[8:12] + b"\x00\x00\xff\xff" + valid[16:], False),
    "wrong type for Protocol Version Major": (S(T["REQUEST_MESSAGE"], S(T["REQUEST_HEADER"],
        S(T["PROTOCOL_VERSION"], item(T["MAJOR"], kt.TEXT, "1"), item(T["MINOR"], kt.INT, 1)),
        item(T["BATCH_COUNT"], kt.INT, 1)), S(T["BATCH_ITEM"], item(T["OPERATION"], kt.ENUM, OP["QUERY"]),
        S(T["REQUEST_PAYLOAD"]))), False),
    "non-zero padding": (valid[:-1] + b"\x01", False),
    "batch count lying": (valid.replace(item(T["BATCH_COUNT"], kt.INT, 1), item(T["BATCH_COUNT"], kt.INT, 7)), False),
    "no batch items": (S(T["REQUEST_MESSAGE"], S(T["REQUEST_HEADER"],
        S(T["PROTOCOL_VERSION"], item(T["MAJOR"], kt.INT, 1), item(T["MINOR"], kt.INT, 1)),
        item(T["BATCH_COUNT"], kt.INT, 0))), False),
}
nested = item(T["QUERY_FUNCTION"], kt.ENUM, 3)
for _ in range(200):
    nested = S(T["REQUEST_PAYLOAD"], nested)
cases["200-deep nesting"] = (kt.request([(OP["QUERY"], [nested], None)]), False)
cases["2000 batch items"] = (kt.request([(OP["QUERY"], [], None)] * 2000), False)
bad_utf8 = b"\x42\x00\x94\x07\x00\x00\x00\x02\xff\xfe" + b"\0" * 6
cases["invalid UTF-8 text"] = (kt.request([(OP["GET"], [bad_utf8], None)]), False)

for name, (data, close_after) in cases.items():
    r = outcome(data, close_after)
    check(r in ("invalid", "closed"), "%s: %s" % (name, r))
    check(good_still_served(), "good client served after: " + name)

# The answer says what was wrong: nesting too deep is not a size problem.
c = kt.Conn(port, d, "bad")
c.send_raw(cases["200-deep nesting"][0])
bis = find(kt.parse(c.recv_msg())[0][2], T["BATCH_ITEM"])
c.close()
msg = find(bis[0], T["RESULT_MESSAGE"])
check(msg == ["Message structures nested too deeply"], "200-deep nesting answered 'nested too deeply': %r" % msg)

# Wrong types inside an otherwise fine request get an operation-level error.
_, b = good.call([(OP["GET"], [item(T["UNIQUE_IDENTIFIER"], kt.INT, 5)], None)])
check(one(b[0], T["RESULT_STATUS"]) == 1, "Unique Identifier as Integer: Operation Failed")
_, b = good.call([(OP["CREATE"], [item(T["OBJECT_TYPE"], kt.ENUM, 2), S(T["TEMPLATE_ATTRIBUTE"],
                 attr("Cryptographic Algorithm", kt.ENUM, 3), attr("Cryptographic Length", kt.INT, 100))], None)])
check(one(b[0], T["RESULT_STATUS"]) == 1 and one(b[0], T["RESULT_REASON"]) == 7, "AES-100: Invalid Field")
_, b = good.call([(OP["CREATE"], [item(T["OBJECT_TYPE"], kt.ENUM, 2), S(T["TEMPLATE_ATTRIBUTE"],
                 attr("State", kt.ENUM, 2))], None)])
check(one(b[0], T["RESULT_STATUS"]) == 1, "Create setting the server-only State: refused")

bad_key = S(T["SYMMETRIC_KEY"], S(T["KEY_BLOCK"], item(T["KEY_FORMAT_TYPE"], kt.ENUM, 1),
            S(T["KEY_VALUE"], item(T["KEY_MATERIAL"], kt.BYTES, b"\x01" * 17)), item(0x420028, kt.ENUM, 3),
            item(0x42002A, kt.INT, 136)))
_, b = good.call([(3, [item(T["OBJECT_TYPE"], kt.ENUM, 2), S(T["TEMPLATE_ATTRIBUTE"]), bad_key], None)])
check(one(b[0], T["RESULT_STATUS"]) == 1 and one(b[0], T["RESULT_REASON"]) == 7, "Register of a 17-byte AES key: Invalid Field")

# Pipelining: 200 requests in one write, 200 answers in order, each with its batch id.
burst = b"".join(kt.request([(OP["QUERY"], [item(T["QUERY_FUNCTION"], kt.ENUM, 3)], b"p%d" % i)]) for i in range(200))
good.send_raw(burst)
ids = []
for i in range(200):
    bi = one(kt.parse(good.recv_msg())[0][2], T["BATCH_ITEM"])
    ids.append(one(bi, T["UNIQUE_BATCH_ITEM_ID"]))
check(ids == [b"p%d" % i for i in range(200)], "200 pipelined requests answered in order")

# Maximum Response Size: an answer that would be larger is refused.
_, b = good.call([(OP["QUERY"], [item(T["QUERY_FUNCTION"], kt.ENUM, 1)], None)],
                 extra_header=[item(0x420050, kt.INT, 64)])
check(one(b[0], T["RESULT_STATUS"]) == 1 and one(b[0], T["RESULT_REASON"]) == 2, "Maximum Response Size 64: Response Too Large")

# A client that pipelines requests and never reads the answers: the server stops
# reading from it once its answers back up, so our sends stall; its memory stays small.
def rss_kib():
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])


hog = kt.Conn(port, d, "bad")
before = rss_kib()
hog.s.settimeout(1)
sent, outcome_ = 0, None
chunk = kt.request([(OP["QUERY"], [item(T["QUERY_FUNCTION"], kt.ENUM, 1)], None)]) * 100
try:
    while sent < (256 << 20):
        hog.s.sendall(chunk)
        sent += len(chunk)
except (socket.timeout, TimeoutError):
    outcome_ = "sends stall"
except (ssl.SSLError, ConnectionError):
    # Its answers went unread for idle-timeout seconds: the server dropped it.
    outcome_ = "dropped by the server"
grown = rss_kib() - before
check(outcome_ is not None, "non-reading client is throttled: %s after %d KiB" % (outcome_, sent >> 10))
# ASan keeps freed memory in quarantine (up to 256 MiB), so its RSS says little.
limit = int(os.environ.get("KMS_RSS_LIMIT_KIB", "32768"))
check(grown < limit, "server memory grew by %d KiB (limit %d KiB)" % (grown, limit))
good = kt.Conn(port, d, "good")  # the old one idled out (2 s) while we waited
check(good_still_served(), "good client served while the hog is stalled")
hog.close()

# The idle connection is closed by the idle timeout (2 s in this test's config).
time.sleep(3)
try:
    slow.send_raw(b"\x00" * 4)
    closed = slow.recv_msg() in (None, b"")
except OSError:
    closed = True
check(closed, "idle half-sent connection closed by the idle timeout")
print("ok: bad input")
