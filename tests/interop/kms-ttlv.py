"""Minimal TTLV writer/reader and TLS connection for the vmcrypt-kms interop tests
(a test tool: lets the tests send exactly the bytes a client such as vCenter sends,
including malformed ones). Load with importlib: kms-ttlv.py is not a module name."""
import socket
import ssl
import struct

STRUCT, INT, LONG, BIGINT, ENUM, BOOL, TEXT, BYTES, DATETIME, INTERVAL = range(1, 11)


def check(cond, what):
    """A test's assertion: print ok, or stop the test with FAIL and what failed."""
    if not cond:
        raise SystemExit("FAIL: " + what)
    print("ok: " + what)


def item(tag, typ, value):
    """Encode one item; value is a list of encoded children for structures."""
    if typ == STRUCT:
        body = b"".join(value)
    elif typ in (INT, ENUM, INTERVAL):
        body = struct.pack(">i" if typ == INT else ">I", value)
    elif typ in (LONG, DATETIME):
        body = struct.pack(">q", value)
    elif typ == BOOL:
        body = struct.pack(">Q", 1 if value else 0)
    elif typ == TEXT:
        body = value.encode()
    else:
        body = bytes(value)
    pad = (8 - len(body) % 8) % 8
    return struct.pack(">I", tag)[1:] + bytes([typ]) + struct.pack(">I", len(body)) + body + b"\0" * pad


def S(tag, *children):
    return item(tag, STRUCT, list(children))


def parse(buf, off=0, end=None):
    """Decode a sequence of items into a list of (tag, type, value) tuples."""
    end = len(buf) if end is None else end
    out = []
    while off < end:
        tag = int.from_bytes(buf[off:off + 3], "big")
        typ = buf[off + 3]
        n = int.from_bytes(buf[off + 4:off + 8], "big")
        body = buf[off + 8:off + 8 + n]
        if typ == STRUCT:
            v = parse(buf, off + 8, off + 8 + n)
        elif typ == INT:
            v = struct.unpack(">i", body)[0]
        elif typ in (ENUM, INTERVAL):
            v = struct.unpack(">I", body)[0]
        elif typ in (LONG, DATETIME):
            v = struct.unpack(">q", body)[0]
        elif typ == BOOL:
            v = struct.unpack(">Q", body)[0] != 0
        elif typ == TEXT:
            v = body.decode()
        else:
            v = bytes(body)
        out.append((tag, typ, v))
        off += 8 + n + ((8 - n % 8) % 8 if typ != STRUCT else 0)
    return out


def find(items, tag):
    return [v for (t, _, v) in items if t == tag]


def one(items, tag):
    vs = find(items, tag)
    assert len(vs) == 1, "expected one 0x%06x, got %d in %r" % (tag, len(vs), items)
    return vs[0]


# Tags used by the tests.
T = dict(
    REQUEST_MESSAGE=0x420078, REQUEST_HEADER=0x420077, RESPONSE_HEADER=0x42007A, PROTOCOL_VERSION=0x420069,
    MAJOR=0x42006A, MINOR=0x42006B, BATCH_COUNT=0x42000D, BATCH_ITEM=0x42000F, OPERATION=0x42005C,
    UNIQUE_BATCH_ITEM_ID=0x420093, REQUEST_PAYLOAD=0x420079, RESPONSE_PAYLOAD=0x42007C,
    RESULT_STATUS=0x42007F, RESULT_REASON=0x42007E, RESULT_MESSAGE=0x42007D, OBJECT_TYPE=0x420057,
    TEMPLATE_ATTRIBUTE=0x420091, ATTRIBUTE=0x420008, ATTRIBUTE_NAME=0x42000A, ATTRIBUTE_INDEX=0x420009,
    ATTRIBUTE_VALUE=0x42000B, UNIQUE_IDENTIFIER=0x420094, QUERY_FUNCTION=0x420074,
    VENDOR_IDENTIFICATION=0x42009D, SYMMETRIC_KEY=0x42008F, KEY_BLOCK=0x420040, KEY_FORMAT_TYPE=0x420042,
    KEY_VALUE=0x420045, KEY_MATERIAL=0x420043, BATCH_ERROR_CONTINUATION=0x42000E, TIME_STAMP=0x420092,
    DATA=0x4200C2, CRYPTOGRAPHIC_PARAMETERS=0x42002B, BLOCK_CIPHER_MODE=0x420011,
    KEY_WRAPPING_SPECIFICATION=0x420047, WRAPPING_METHOD=0x42009E, ENCRYPTION_KEY_INFORMATION=0x420036,
    KEY_WRAPPING_DATA=0x420046, IV=0x42003D, AE_TAG=0x4200FF,
)

OP = dict(CREATE=1, GET=0x0A, GET_ATTRIBUTES=0x0B, ADD_ATTRIBUTE=0x0D, ACTIVATE=0x12, REVOKE=0x13,
          DESTROY=0x14, QUERY=0x18, DISCOVER_VERSIONS=0x1E, ENCRYPT=0x1F, DECRYPT=0x20)


def attr(name, typ, value, index=None):
    parts = [item(T["ATTRIBUTE_NAME"], TEXT, name)]
    if index is not None:
        parts.append(item(T["ATTRIBUTE_INDEX"], INT, index))
    parts.append(item(T["ATTRIBUTE_VALUE"], typ, value))
    return S(T["ATTRIBUTE"], *parts)


def request(items, major=1, minor=1, extra_header=()):
    """items: list of (operation, payload children list, batch item id or None)."""
    hdr = S(T["REQUEST_HEADER"],
            S(T["PROTOCOL_VERSION"], item(T["MAJOR"], INT, major), item(T["MINOR"], INT, minor)),
            *extra_header, item(T["BATCH_COUNT"], INT, len(items)))
    bis = []
    for op, payload, bid in items:
        parts = [item(T["OPERATION"], ENUM, op)]
        if bid is not None:
            parts.append(item(T["UNIQUE_BATCH_ITEM_ID"], BYTES, bid))
        parts.append(S(T["REQUEST_PAYLOAD"], *payload))
        bis.append(S(T["BATCH_ITEM"], *parts))
    return S(T["REQUEST_MESSAGE"], hdr, *bis)


class Conn:
    def __init__(self, port, d, cn, ca=None, ciphers=None):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if ciphers:  # e.g. what vCenter 7 negotiated: TLS 1.2, AES128-SHA256
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_ciphers(ciphers)
        ctx.load_verify_locations("%s/ca.crt" % (ca or d))
        if cn:
            ctx.load_cert_chain("%s/client-%s.crt" % (d, cn), "%s/client-%s.key" % (d, cn))
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        self.cipher = self.s.cipher()

    def send_raw(self, data):
        self.s.sendall(data)

    def recv_msg(self):
        hdr = self._recv(8)
        if not hdr:
            return None
        n = int.from_bytes(hdr[4:8], "big")
        return hdr + self._recv(n)

    def _recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                return buf
            buf += chunk
        return buf

    def call(self, items, **kw):
        """Send a request; return (header items, [batch item children lists])."""
        self.send_raw(request(items, **kw))
        resp = self.recv_msg()
        top = parse(resp)
        assert top[0][0] == 0x42007B, "not a Response Message"
        body = top[0][2]
        return one(body, T["RESPONSE_HEADER"]), find(body, T["BATCH_ITEM"])

    def close(self):
        self.s.close()
