#!/usr/bin/python3
"""Helpers of kms-passphrase.sh.
'put PORT DIR OUT': client alice creates a key; its id and bytes go to OUT.
'check PORT DIR OUT': alice gets that key back, same bytes.
'typed KMS CONF PASSPHRASE DIR OUT': serve CONF with --passphrase-prompt on a
  pseudo-terminal, type PASSPHRASE and Enter at the prompt, then 'check'; stop it.
'legacy-key PASSPHRASE SALTHEX OUT': the 32-byte master key that vmcrypt-kms derived
  from a passphrase before its scrypt cost was raised (N=2^15, r=8, p=1), into OUT."""
import hashlib
import importlib.util
import json
import os
import pty
import re
import select
import signal
import sys
import time

spec = importlib.util.spec_from_file_location("kt", os.path.join(os.path.dirname(__file__), "kms-ttlv.py"))
kt = importlib.util.module_from_spec(spec)
spec.loader.exec_module(kt)
T, OP, item, S, attr, one, find, check = kt.T, kt.OP, kt.item, kt.S, kt.attr, kt.one, kt.find, kt.check


def key_bytes(bi):
    check(one(bi, T["RESULT_STATUS"]) == 0, "Get succeeds")
    return find_material(find(bi, T["RESPONSE_PAYLOAD"])[0])


def find_material(items):
    """The Key Material anywhere in a payload (Symmetric Key / Key Block / Key Value)."""
    for t, typ, v in items:
        if t == T["KEY_MATERIAL"]:
            return v
        if typ == kt.STRUCT:
            m = find_material(v)
            if m is not None:
                return m
    return None


def put(port, d, out):
    c = kt.Conn(port, d, "alice")
    tmpl = S(T["TEMPLATE_ATTRIBUTE"], attr("Cryptographic Algorithm", kt.ENUM, 3),
             attr("Cryptographic Length", kt.INT, 256))
    _, b = c.call([(OP["CREATE"], [item(T["OBJECT_TYPE"], kt.ENUM, 2), tmpl], None)])
    check(one(b[0], T["RESULT_STATUS"]) == 0, "alice creates a key")
    uid = one(find(b[0], T["RESPONSE_PAYLOAD"])[0], T["UNIQUE_IDENTIFIER"])
    _, b = c.call([(OP["GET"], [item(T["UNIQUE_IDENTIFIER"], kt.TEXT, uid)], None)])
    json.dump({"id": uid, "key": key_bytes(b[0]).hex()}, open(out, "w"))


def check_key(port, d, out):
    k = json.load(open(out))
    c = kt.Conn(port, d, "alice")
    _, b = c.call([(OP["GET"], [item(T["UNIQUE_IDENTIFIER"], kt.TEXT, k["id"])], None)])
    check(key_bytes(b[0]).hex() == k["key"], "alice's key intact")


def typed(kms, conf, passphrase, d, out):
    pid, fd = pty.fork()
    if pid == 0:  # the pseudo-terminal is the child's controlling terminal
        os.execv(kms, [kms, "serve", "--config", conf, "--listen", "127.0.0.1:0", "--passphrase-prompt"])
    buf, port, typed_it, deadline = b"", None, False, time.time() + 30
    while port is None and time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 0.5)
        if not r:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        buf += chunk
        if not typed_it and b"Master passphrase: " in buf:
            os.write(fd, passphrase.encode() + b"\n")  # Enter, as a person types it
            typed_it = True
        m = re.search(rb"listening on (\d+)", buf)
        if m:
            port = int(m.group(1))
    if port is None:
        os.kill(pid, signal.SIGKILL)
        raise SystemExit("FAIL: serve with a typed passphrase did not start: %r" % buf)
    check(typed_it, "serve asked for the passphrase on the terminal and started with the typed one")
    check_key(port, d, out)
    os.kill(pid, signal.SIGTERM)
    _, status = os.waitpid(pid, 0)
    check(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, "serve stopped cleanly")


mode = sys.argv[1]
if mode == "put":
    put(int(sys.argv[2]), sys.argv[3], sys.argv[4])
elif mode == "check":
    check_key(int(sys.argv[2]), sys.argv[3], sys.argv[4])
elif mode == "typed":
    typed(*sys.argv[2:7])
elif mode == "legacy-key":
    k = hashlib.scrypt(sys.argv[2].encode(), salt=bytes.fromhex(sys.argv[3]), n=1 << 15, r=8, p=1,
                       maxmem=64 << 20, dklen=32)
    fd = os.open(sys.argv[4], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, k)
    os.close(fd)
else:
    raise SystemExit("FAIL: unknown mode " + mode)
