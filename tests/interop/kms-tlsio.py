#!/usr/bin/python3
"""vmcrypt-kms's own TLS I/O (src/kms/conn-io.c) at its edges: handshakes and
requests cut into 1-byte TCP segments or 1-byte TLS records, requests and answers of
many records to a client that reads nothing for a while, more answers than
max-message-size pipelined to such a client, a peer that half-closes after its request or vanishes while
its request is with a worker or the committer, and a SIGTERM while an answer is still
on its way out. Every answer must arrive whole, in order, and the server live on.
The client side is OpenSSL on memory BIOs over a raw socket, so the test decides how
the bytes are cut.
Usage: kms-tlsio.py PORT DIR PID"""
import importlib.util
import os
import select
import signal
import socket
import ssl
import sys
import time

spec = importlib.util.spec_from_file_location("kt", os.path.join(os.path.dirname(__file__), "kms-ttlv.py"))
kt = importlib.util.module_from_spec(spec)
spec.loader.exec_module(kt)
T, OP, item, S, attr, one, find = kt.T, kt.OP, kt.item, kt.S, kt.attr, kt.one, kt.find
port, d, pid = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
check = kt.check


class BioConn:
    """A TLS client whose ciphertext goes through our hands: split, paced, or
    interleaved with slow reads in one thread."""

    def __init__(self, segment=None):
        self.raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.raw.settimeout(30)
        self.raw.connect(("127.0.0.1", port))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations("%s/ca.crt" % d)
        ctx.load_cert_chain("%s/client-io.crt" % d, "%s/client-io.key" % d)
        self.inc, self.outb = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.inc, self.outb, server_hostname="127.0.0.1")
        self.plain = b""
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.send_pending(segment)
                self.recv_some()
        self.send_pending(segment)

    def send_pending(self, segment=None, delay=0.001):
        data = self.outb.read()
        if not segment:
            self.raw.sendall(data)
            return
        for i in range(0, len(data), segment):
            self.raw.sendall(data[i:i + segment])
            time.sleep(delay)  # one TCP segment each: the server sees partial records

    def recv_some(self, n=65536):
        data = self.raw.recv(n)
        if not data:
            raise ConnectionError("server closed the connection")
        self.inc.write(data)

    def decrypt(self):
        try:
            while True:
                chunk = self.tls.read(65536)
                if not chunk:
                    return False  # close_notify
                self.plain += chunk
        except ssl.SSLWantReadError:
            return True

    def message(self):
        """A whole message from what was decrypted so far, or None."""
        if len(self.plain) < 8:
            return None
        n = 8 + int.from_bytes(self.plain[4:8], "big")
        if len(self.plain) < n:
            return None
        m, self.plain = self.plain[:n], self.plain[n:]
        return m

    def recv_msg(self):
        while True:
            m = self.message()
            if m:
                return m
            self.recv_some()
            self.decrypt()


def batch_items(msg):
    return find(kt.parse(msg)[0][2], T["BATCH_ITEM"])


def ok(bi, what):
    if one(bi, T["RESULT_STATUS"]) != 0:
        raise SystemExit("FAIL: %s: %r" % (what, bi))
    return one(bi, T["RESPONSE_PAYLOAD"])


query = kt.request([(OP["QUERY"], [item(T["QUERY_FUNCTION"], kt.ENUM, 3)], b"q")])


def answered(msg, bid=b"q"):
    bi = batch_items(msg)
    return len(bi) == 1 and one(bi[0], T["RESULT_STATUS"]) == 0 and one(bi[0], T["UNIQUE_BATCH_ITEM_ID"]) == bid


# A handshake and a request whose every byte is its own TCP segment: the server's
# read-ahead sees nothing but partial records.
c = BioConn(segment=1)
c.tls.write(query)
c.send_pending(segment=1)
check(answered(c.recv_msg()), "handshake and request in 1-byte TCP segments: answered")

# Two pipelined requests, each byte its own TLS record.
two = query + kt.request([(OP["QUERY"], [item(T["QUERY_FUNCTION"], kt.ENUM, 3)], b"r")])
for i in range(len(two)):
    c.tls.write(two[i:i + 1])
c.send_pending()
check(answered(c.recv_msg()) and answered(c.recv_msg(), b"r"), "2 requests in %d 1-byte TLS records: both answered, in order" % len(two))

# A key to encrypt with (Create and Activate in one batch: a worker answers it).
tmpl = S(T["TEMPLATE_ATTRIBUTE"], attr("Cryptographic Algorithm", kt.ENUM, 3),
         attr("Cryptographic Usage Mask", kt.INT, 12), attr("Cryptographic Length", kt.INT, 256))
c.tls.write(kt.request([(OP["CREATE"], [item(T["OBJECT_TYPE"], kt.ENUM, 2), tmpl], None), (OP["ACTIVATE"], [], None)]))
c.send_pending()
bis = batch_items(c.recv_msg())
uid = one(ok(bis[0], "Create"), T["UNIQUE_IDENTIFIER"])
ok(bis[1], "Activate")
gcm = S(T["CRYPTOGRAPHIC_PARAMETERS"], item(T["BLOCK_CIPHER_MODE"], kt.ENUM, 9))


def encrypt(data, bid):
    return kt.request([(OP["ENCRYPT"], [item(T["UNIQUE_IDENTIFIER"], kt.TEXT, uid), gcm, item(T["DATA"], kt.BYTES, data)], bid)])


def decrypts_to(conn, p, data):
    ct, iv, tag = one(p, T["DATA"]), one(p, T["IV"]), one(p, T["AE_TAG"])
    conn.tls.write(kt.request([(OP["DECRYPT"], [item(T["UNIQUE_IDENTIFIER"], kt.TEXT, uid), gcm, item(T["DATA"], kt.BYTES, ct),
                                                item(T["IV"], kt.BYTES, iv), item(T["AE_TAG"], kt.BYTES, tag)], b"d")]))
    conn.send_pending()
    return one(ok(batch_items(conn.recv_msg())[0], "Decrypt"), T["DATA"]) == data


def slow_exchange(conn, out, n_answers, stall=1.0, chunk=65536, pause=0.0005, deadline=60):
    """Send out while reading answers as a slow client would: nothing for stall
    seconds (so the server's socket fills up and the rest waits in the server),
    then chunk bytes at a time with a pause between. Returns the answers."""
    conn.raw.setblocking(False)
    pending, answers = memoryview(out), []
    start = time.time()
    while len(answers) < n_answers:
        if time.time() > start + deadline:
            raise SystemExit("FAIL: %d of %d answers after %d s (%d bytes unsent)" % (len(answers), n_answers, deadline, len(pending)))
        reading = time.time() > start + stall
        r, w, _ = select.select([conn.raw] if reading else [], [conn.raw] if pending else [], [], 0.1)
        if w:
            try:
                pending = pending[conn.raw.send(pending[:65536]):]
            except BlockingIOError:
                pass
        if r:
            data = conn.raw.recv(chunk)
            if not data:
                raise SystemExit("FAIL: server closed after %d of %d answers" % (len(answers), n_answers))
            conn.inc.write(data)
            conn.decrypt()
            time.sleep(pause)
        while True:
            m = conn.message()
            if not m:
                break
            answers.append(m)
    conn.raw.setblocking(True)
    return answers


# The server's socket takes about 4 MiB (loopback, autotuned) before it says EAGAIN:
# answers larger than that are what a slow reader leaves in the server.
big = os.urandom(6 << 20)

# One request and one answer of 6 MiB (hundreds of records each way) to a client that
# reads nothing for a second: the answer's tail waits for the write event, written
# as the client takes it, and arrives whole.
slow = BioConn()
slow.tls.write(encrypt(big, b"big"))
(m,) = slow_exchange(slow, slow.outb.read(), 1)
p = ok(batch_items(m)[0], "Encrypt 6 MiB")
check(len(one(p, T["DATA"])) == len(big), "6 MiB answer to a slow reader arrives whole")
check(decrypts_to(slow, p, big), "and decrypts to the data")

# More answers than max-message-size (8 MiB here) wait in the server while the client
# keeps sending and reads nothing: the server takes no request while they back up,
# stops reading once its buffer is full, and resumes (with records left in OpenSSL's
# buffer, which epoll cannot report) as they drain. Every answer comes, in order.
n = 24
burst = b"".join(encrypt(big[:1 << 20], b"b%d" % i) for i in range(n))
slow.tls.write(burst)
answers = slow_exchange(slow, slow.outb.read(), n)
ids = [one(batch_items(a)[0], T["UNIQUE_BATCH_ITEM_ID"]) for a in answers]
check(ids == [b"b%d" % i for i in range(n)], "%d pipelined 1 MiB Encrypts to a slow reader: all answered in order" % n)
check(all(len(one(ok(batch_items(a)[0], "Encrypt"), T["DATA"])) == 1 << 20 for a in answers), "every answer whole")

# The peer half-closes (no close_notify) right after its request: the answer still
# goes out, then the server closes.
h = BioConn()
h.tls.write(query)
h.send_pending()
h.raw.shutdown(socket.SHUT_WR)
check(answered(h.recv_msg()), "request then half-close: answered")
try:
    while True:
        h.recv_some()
except (ConnectionError, OSError):
    pass
h.raw.close()

# Peers that vanish while their request is with a worker (Activate) or waits for
# the committer (a lone Create): the job comes back to a connection marked closing,
# which is freed then, not before.
for i in range(40):
    g = kt.Conn(port, d, "io")
    if i % 2:
        g.send_raw(kt.request([(OP["ACTIVATE"], [item(T["UNIQUE_IDENTIFIER"], kt.TEXT, uid)], None)]))
    else:
        g.send_raw(kt.request([(OP["CREATE"], [item(T["OBJECT_TYPE"], kt.ENUM, 2), tmpl], None)]))
    time.sleep((i % 4) * 0.0005)  # before, while and after the server takes it
    g.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")  # RST, at once
    g.s.close()
time.sleep(0.5)
c.tls.write(query)
c.send_pending()
check(answered(c.recv_msg()), "served after 40 peers vanished mid-request")

# SIGTERM while most of a 6 MiB answer waits in the server for a slow reader: the
# server finishes sending it before it stops (the shell script checks the exit).
last = BioConn()
last.tls.write(encrypt(big, b"last"))
last.send_pending()
time.sleep(0.5)  # the answer is built and the socket full; the rest waits in the server
os.kill(pid, signal.SIGTERM)
(m,) = slow_exchange(last, b"", 1, stall=0.5)
check(len(one(ok(batch_items(m)[0], "Encrypt at SIGTERM"), T["DATA"])) == len(big), "answer in flight at SIGTERM arrives whole")
print("ok: TLS I/O")
