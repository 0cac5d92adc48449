#!/usr/bin/python3
"""Durability of vmcrypt-kms. 'stream PORT DIR PID OUT [SIGNAL]': 4 connections
Create+Get and Register keys while the server gets SIGNAL (default KILL) after a moment; every acknowledged object
(and its bytes, when known) is written to OUT. 'verify PORT DIR OUT': each one must be
there with the same bytes. 'failcommit PORT DIR': the store's commit of the client's
new objects fails (an SQLite trigger); Create and Register must answer failure, never
success, store nothing and audit the failure; once commits work again, so do they."""
import importlib.util
import json
import os
import signal
import sqlite3
import sys
import threading
import time

spec = importlib.util.spec_from_file_location("kt", os.path.join(os.path.dirname(__file__), "kms-ttlv.py"))
kt = importlib.util.module_from_spec(spec)
spec.loader.exec_module(kt)
T, OP, item, S, attr, one, find = kt.T, kt.OP, kt.item, kt.S, kt.attr, kt.one, kt.find

mode, port, d = sys.argv[1], int(sys.argv[2]), sys.argv[3]
tmpl = S(T["TEMPLATE_ATTRIBUTE"], attr("Cryptographic Algorithm", kt.ENUM, 3),
         attr("Cryptographic Length", kt.INT, 256))


def payload(bi):
    assert one(bi, T["RESULT_STATUS"]) == 0, "operation failed: %r" % (bi,)
    return find(bi, T["RESPONSE_PAYLOAD"])[0]


def key_of(p):
    kb = one(one(p, T["SYMMETRIC_KEY"]), T["KEY_BLOCK"])
    return one(one(kb, T["KEY_VALUE"]), T["KEY_MATERIAL"])


if mode == "stream":
    pid, out = int(sys.argv[4]), sys.argv[5]
    sig = getattr(signal, "SIG" + (sys.argv[6] if len(sys.argv) > 6 else "KILL"))
    acked, lock, stop = [], threading.Lock(), threading.Event()

    def worker(n):
        try:
            c = kt.Conn(port, d, "writer")
            i = 0
            while not stop.is_set():
                i += 1
                if i % 2:
                    _, b = c.call([(OP["CREATE"], [item(T["OBJECT_TYPE"], kt.ENUM, 2), tmpl], None)])
                    uid = one(payload(b[0]), T["UNIQUE_IDENTIFIER"])
                    with lock:
                        acked.append({"uid": uid})
                    _, b = c.call([(OP["GET"], [item(T["UNIQUE_IDENTIFIER"], kt.TEXT, uid)], None)])
                    with lock:
                        acked.append({"uid": uid, "key": key_of(payload(b[0])).hex()})
                else:
                    k = os.urandom(32)
                    obj = S(T["SYMMETRIC_KEY"], S(T["KEY_BLOCK"], item(T["KEY_FORMAT_TYPE"], kt.ENUM, 1),
                                                  S(T["KEY_VALUE"], item(T["KEY_MATERIAL"], kt.BYTES, k)),
                                                  item(0x420028, kt.ENUM, 3), item(0x42002A, kt.INT, 256)))
                    _, b = c.call([(3, [item(T["OBJECT_TYPE"], kt.ENUM, 2), S(T["TEMPLATE_ATTRIBUTE"]), obj], None)])
                    uid = one(payload(b[0]), T["UNIQUE_IDENTIFIER"])
                    with lock:
                        acked.append({"uid": uid, "key": k.hex()})
        except Exception:
            pass  # the server died under us: expected

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    os.kill(pid, sig)
    stop.set()
    for t in threads:
        t.join()
    with open(out, "w") as f:
        json.dump(acked, f)
    n = len({a["uid"] for a in acked})
    if n < 50:
        raise SystemExit("FAIL: only %d objects acknowledged before the kill; the test proves nothing" % n)
    print("ok: %d objects acknowledged before the signal" % n)
elif mode == "failcommit":
    db = sqlite3.connect(os.path.join(d, "kms.db"), timeout=10)
    n_before = db.execute("SELECT count(*) FROM objects").fetchone()[0]
    db.execute("CREATE TRIGGER test_fail BEFORE INSERT ON objects WHEN NEW.owner = 'writer' "
               "BEGIN SELECT RAISE(ABORT, 'injected commit failure'); END")
    db.commit()
    c = kt.Conn(port, d, "writer")
    create = [(OP["CREATE"], [item(T["OBJECT_TYPE"], kt.ENUM, 2), tmpl], None)]
    obj = S(T["SYMMETRIC_KEY"], S(T["KEY_BLOCK"], item(T["KEY_FORMAT_TYPE"], kt.ENUM, 1),
                                  S(T["KEY_VALUE"], item(T["KEY_MATERIAL"], kt.BYTES, os.urandom(32))),
                                  item(0x420028, kt.ENUM, 3), item(0x42002A, kt.INT, 256)))
    register = [(3, [item(T["OBJECT_TYPE"], kt.ENUM, 2), S(T["TEMPLATE_ATTRIBUTE"]), obj], None)]
    for name, req in (("Create", create), ("Register", register)):
        _, b = c.call(req)
        if one(b[0], T["RESULT_STATUS"]) == 0:
            raise SystemExit("FAIL: %s answered success although its commit failed" % name)
        msg = one(b[0], T["RESULT_MESSAGE"])
        if "durabl" not in msg:
            raise SystemExit("FAIL: %s failure does not say the object could not be stored: %r" % (name, msg))
    n_failed = db.execute("SELECT count(*) FROM objects").fetchone()[0]
    if n_failed != n_before:
        raise SystemExit("FAIL: %d objects stored by failed commits" % (n_failed - n_before))
    audit = [json.loads(line) for line in open(os.path.join(d, "audit.log"))]
    # A change is audited before its commit (result success, what it would answer);
    # a commit that then fails adds a line "failed" for the same object: the last
    # line of each object says how it ended.
    for name in ("Create", "Register"):
        lines = [a for a in audit if a["operation"] == name]
        last = {}
        for a in lines[-4:]:
            last[a.get("object")] = a["result"]
        if not lines or any(r != "failed" for r in last.values()):
            raise SystemExit("FAIL: the audit log does not record the failed %s: %r" % (name, lines[-4:]))
    db.execute("DROP TRIGGER test_fail")
    db.commit()
    _, b = c.call(create)
    uid = one(payload(b[0]), T["UNIQUE_IDENTIFIER"])
    _, b = c.call([(OP["GET"], [item(T["UNIQUE_IDENTIFIER"], kt.TEXT, uid)], None)])
    key_of(payload(b[0]))
    print("ok: failed commits answered as failures, nothing stored, audited; commits work again")
else:
    acked = json.load(open(sys.argv[4]))
    c = kt.Conn(port, d, "writer")
    uids = {}
    for a in acked:
        if a.get("key"):
            uids[a["uid"]] = a["key"]
        else:
            uids.setdefault(a["uid"], None)
    for uid, k in uids.items():
        _, b = c.call([(OP["GET"], [item(T["UNIQUE_IDENTIFIER"], kt.TEXT, uid)], None)])
        if one(b[0], T["RESULT_STATUS"]) != 0:
            raise SystemExit("FAIL: acknowledged object %s lost" % uid)
        got = key_of(payload(b[0])).hex()
        if k is not None and got != k:
            raise SystemExit("FAIL: object %s changed" % uid)
    print("ok: all %d acknowledged objects present and intact after the restart" % len(uids))
