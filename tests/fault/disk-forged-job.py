#!/usr/bin/python3
"""Writes what a hostile guest writes into its own raw disk before the host encrypts
it: a job area at the end (in vmcrypt's older unkeyed format, and in today's format
sealed under a key the guest made up), a job marker or a disguised LUKS header at the
start. Usage: disk-forged-job.py KIND IMAGE [ORIG_SIZE]. Only bytes inside the image
change; its size never does (a guest cannot change the size of its disk)."""
import hashlib
import hmac
import os
import struct
import sys

BLOCK = 4096
RECORD = 512


def fields(size, orig_size, preparing):
    # op layout format sector detached data_size src dst hdr_region final jstart jsize
    # old_off old_len new_off new_len head_off head_len hash0 hash1 hash_len ckpt0 ckpt1
    # hotzone orig_size preparing: a "preparing" encrypt job shaped as vmcrypt's own,
    # whose area fills the last 16 MiB + 4 KiB of the disk.
    h = 16 << 20
    jsize = h + (1 << 20) + 3 * BLOCK
    jstart = size - jsize
    n = orig_size
    return [1, 1, 1, 512, 0, n, 0, h, h, n + h, jstart, jsize, 0, 0, 0, h, h, 1 << 20,
            h + (1 << 20), h + (1 << 20), 0, h + (1 << 20), h + (1 << 20) + BLOCK, 0,
            orig_size, preparing]


def v1_block(size, orig_size):
    body = b"VMCRYPT-JOBAREA\0" + struct.pack("<Q", 1)
    body += b"".join(struct.pack("<Q", f) for f in fields(size, orig_size, 1))
    body = body.ljust(BLOCK - 32, b"\0")
    return body + hashlib.sha256(body).digest()


def v2_record(size, orig_size):
    body = b"VMCRYPT-JOBAREA\0" + struct.pack("<Q", 2)
    body += b"".join(struct.pack("<Q", f) for f in fields(size, orig_size, 1))
    body += os.urandom(16)
    body = body.ljust(RECORD - 32, b"\0")
    return body + hmac.new(os.urandom(32), body, hashlib.sha256).digest()


def main():
    kind, path = sys.argv[1], sys.argv[2]
    size = os.path.getsize(path)
    orig = int(sys.argv[3]) if len(sys.argv) > 3 else size // 2
    with open(path, "r+b") as f:
        if kind == "v1":
            f.seek(size - BLOCK)
            f.write(v1_block(size, orig))
        elif kind == "v2":
            f.seek(size - RECORD)
            f.write(v2_record(size, orig))
        elif kind == "marker":
            f.write(b"VMCRYPT-IN-PLACE-JOB\nThis disk is in the middle of a vmcrypt in-place job\n")
        elif kind == "disguised":
            # A LUKS2 header the guest made itself, magics disguised as vmcrypt's.
            src = sys.argv[4]
            with open(src, "rb") as s:
                hdr = bytearray(s.read(16 << 20))
            hdr[0:6] = b"VMCJe\0"
            hdr[16384:16390] = b"VMCKe\0"
            f.write(hdr)
        else:
            sys.exit("unknown kind " + kind)
        f.flush()
        os.fsync(f.fileno())


main()
