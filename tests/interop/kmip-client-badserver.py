#!/usr/bin/python3
"""A misbehaving KMIP server over mutual TLS, for tests/interop/kmip-client-badserver.sh.

Usage: kmip-client-badserver.py CERTDIR PORTFILE MODE
Listens on a free port on 127.0.0.1 (written to PORTFILE), then answers each request
according to MODE:
  ok         a proper answer (Create/Activate/Get Attributes/Discover Versions)
  garbage    HTTP text instead of TTLV
  huge       a TTLV header announcing a 2 GiB message
  wrongid    an answer whose Unique Batch Item ID matches no request
  silent     reads the request and never answers
  hangup     closes right after the TLS handshake, without a word
  keepalive  answers one request per connection, then closes it
  denied     Operation Failed / Permission Denied "nope"
Each accepted connection is logged to stdout as "conn N"."""
import socket
import ssl
import struct
import sys
import time

certdir, portfile, mode = sys.argv[1:4]

STRUCT, INTEGER, ENUM, BOOL, TEXT, BYTES, DATETIME = 1, 2, 5, 6, 7, 8, 9


def ttlv(tag, typ, value):
    if typ == STRUCT:
        body = b"".join(value)
        length = len(body)
    elif typ in (INTEGER, ENUM):
        body = struct.pack(">I", value & 0xFFFFFFFF) + b"\0" * 4
        length = 4
    elif typ in (TEXT, BYTES):
        raw = value.encode() if isinstance(value, str) else value
        length = len(raw)
        body = raw + b"\0" * (-len(raw) % 8)
    elif typ == DATETIME:
        body = struct.pack(">q", value)
        length = 8
    elif typ == BOOL:
        body = struct.pack(">Q", 1 if value else 0)
        length = 8
    else:
        raise ValueError(typ)
    return struct.pack(">I", tag)[1:] + bytes([typ]) + struct.pack(">I", length) + body


def walk(buf, want, out):
    """Collect (tag, value) of every item with a tag in want, depth first."""
    i = 0
    while i + 8 <= len(buf):
        tag = int.from_bytes(buf[i:i + 3], "big")
        typ = buf[i + 3]
        n = int.from_bytes(buf[i + 4:i + 8], "big")
        v = buf[i + 8:i + 8 + n]
        if tag in want:
            out.append((tag, v))
        if typ == STRUCT:
            walk(v, want, out)
        i += 8 + (n + 7) // 8 * 8
    return out


def read_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def answer(request, op_override_id=None):
    found = walk(request, {0x42005C, 0x420093, 0x42006A, 0x42006B}, [])
    op = next(int.from_bytes(v[:4], "big") for t, v in found if t == 0x42005C)
    bid = next((v for t, v in found if t == 0x420093), None)
    major = next(int.from_bytes(v[:4], "big") for t, v in found if t == 0x42006A)
    minor = next(int.from_bytes(v[:4], "big") for t, v in found if t == 0x42006B)
    if op_override_id is not None:
        bid = op_override_id
    header = ttlv(0x42007A, STRUCT, [
        ttlv(0x420069, STRUCT, [ttlv(0x42006A, INTEGER, major), ttlv(0x42006B, INTEGER, minor)]),
        ttlv(0x420092, DATETIME, int(time.time())),
        ttlv(0x42000D, INTEGER, 1)])
    item = [ttlv(0x42005C, ENUM, op)]
    if bid is not None:
        item.append(ttlv(0x420093, BYTES, bid))
    if mode == "denied":
        item += [ttlv(0x42007F, ENUM, 1), ttlv(0x42007E, ENUM, 0x0C), ttlv(0x42007D, TEXT, "nope")]
    else:
        item.append(ttlv(0x42007F, ENUM, 0))
        payload = [ttlv(0x420094, TEXT, "fake-1")]
        if op == 0x01:  # Create
            payload = [ttlv(0x420057, ENUM, 2)] + payload
        if op == 0x1E:  # Discover Versions
            payload = [ttlv(0x420069, STRUCT, [ttlv(0x42006A, INTEGER, 1), ttlv(0x42006B, INTEGER, 4)])]
        item.append(ttlv(0x42007C, STRUCT, payload))
    return ttlv(0x42007B, STRUCT, [header, ttlv(0x42000F, STRUCT, item)])


ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(f"{certdir}/server.crt", f"{certdir}/server.key")
ctx.load_verify_locations(f"{certdir}/ca.crt")
ctx.verify_mode = ssl.CERT_REQUIRED

lsock = socket.socket()
lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lsock.bind(("127.0.0.1", 0))
lsock.listen(8)
with open(portfile + ".tmp", "w") as f:
    f.write(str(lsock.getsockname()[1]))
import os
os.rename(portfile + ".tmp", portfile)

nconn = 0
while True:
    raw, _ = lsock.accept()
    nconn += 1
    print(f"conn {nconn}", flush=True)
    try:
        conn = ctx.wrap_socket(raw, server_side=True)
    except (ssl.SSLError, OSError):
        raw.close()
        continue
    if mode == "hangup":
        raw.close()
        conn.close()
        continue
    try:
        while True:
            hdr = read_exact(conn, 8)
            if hdr is None:
                break
            body = read_exact(conn, int.from_bytes(hdr[4:8], "big"))
            if body is None:
                break
            request = hdr + body
            for tag, value in walk(request, {0x420099, 0x4200A1}, []):
                print(("username " if tag == 0x420099 else "password ") + value.decode(), flush=True)
            if mode == "garbage":
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            elif mode == "huge":
                conn.sendall(bytes.fromhex("42007b01") + struct.pack(">I", 0x7FFFFFF8))
            elif mode == "wrongid":
                conn.sendall(answer(request, op_override_id=b"XXXX"))
            elif mode == "silent":
                time.sleep(30)
            else:
                conn.sendall(answer(request))
            if mode == "keepalive":
                break
    except (ssl.SSLError, OSError):
        pass
    try:
        conn.close()
    except OSError:
        pass
