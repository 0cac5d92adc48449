#!/usr/bin/python3
"""Reads (or wipes) vmcrypt's metadata area in a LUKS1 header, independently of
vmcrypt's C code: docs/keys.md describes the format, this is a second reader.

  luks1-meta.py doc IMG     print the newest valid document (JSON); exit 3 if none
  luks1-meta.py copies IMG  print "seq valid" of each copy
  luks1-meta.py wipe IMG    zero the area (an image bound by an older vmcrypt)
"""
import hashlib
import struct
import sys

COPY = 8192
TAIL = 4096
RECORD = 104


def layout(img):
    with open(img, "rb") as f:
        hdr = f.read(592)
    if hdr[:6] != b"LUKS\xba\xbe" or struct.unpack(">H", hdr[6:8])[0] != 1:
        sys.exit("%s: not a LUKS1 header" % img)
    payload = struct.unpack(">I", hdr[104:108])[0] * 512
    uuid = hdr[168:208].rstrip(b"\0")
    return payload - TAIL - 2 * COPY, uuid


def copies(img):
    off, uuid = layout(img)
    with open(img, "rb") as f:
        f.seek(off)
        area = f.read(2 * COPY)
    out = []
    for i in range(2):
        c = area[i * COPY:(i + 1) * COPY]
        valid = False
        seq = None
        if len(c) == COPY and c[:8] == b"VMCRYPTM" and c[32:72].rstrip(b"\0") == uuid:
            ver, n, seq, self_off = struct.unpack(">IIQQ", c[8:32])
            z = c[:72] + b"\0" * 32 + c[104:]
            valid = (hashlib.sha256(z).digest() == c[72:104] and ver == 1 and n <= COPY - RECORD
                     and self_off == off + i * COPY)
            text = c[RECORD:RECORD + n] if valid else None
        else:
            text = None
        out.append((seq, valid, text))
    return off, out


def main():
    cmd, img = sys.argv[1], sys.argv[2]
    if cmd == "wipe":
        off, _ = layout(img)
        with open(img, "r+b") as f:
            f.seek(off)
            f.write(b"\0" * 2 * COPY)
        return
    off, cs = copies(img)
    if cmd == "copies":
        for seq, valid, _ in cs:
            print(seq, "valid" if valid else "invalid")
        return
    best = max((c for c in cs if c[1]), key=lambda c: c[0], default=None)
    if best is None:
        sys.exit(3)
    print(best[2].decode())


main()
