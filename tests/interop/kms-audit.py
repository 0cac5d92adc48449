#!/usr/bin/python3
"""The audit log fails closed. 'full PORT DIR OTHER AFS': with the audit log's file
system (AFS) full, Create, Activate and Get are refused with General Failure and
change nothing; once there is room, all works again and nothing half-written is in
the log. Undo requests and refused handshakes (a certificate from another CA, OTHER;
none at all) are audited with the peer's address and the certificate's fingerprint.
'continue PORT DIR AFS': with audit-failure = continue, a full file system does not
stop Creates."""
import errno
import hashlib
import importlib.util
import json
import os
import ssl
import sqlite3
import sys
import time

spec = importlib.util.spec_from_file_location("kt", os.path.join(os.path.dirname(__file__), "kms-ttlv.py"))
kt = importlib.util.module_from_spec(spec)
spec.loader.exec_module(kt)
T, OP, item, S, attr, one, find, check = kt.T, kt.OP, kt.item, kt.S, kt.attr, kt.one, kt.find, kt.check
GENERAL_FAILURE, FEATURE_NOT_SUPPORTED = 0x100, 8

mode, port, d = sys.argv[1], int(sys.argv[2]), sys.argv[3]
tmpl = S(T["TEMPLATE_ATTRIBUTE"], attr("Cryptographic Algorithm", kt.ENUM, 3),
         attr("Cryptographic Length", kt.INT, 256))
CREATE = [(OP["CREATE"], [item(T["OBJECT_TYPE"], kt.ENUM, 2), tmpl], None)]


def objects():
    db = sqlite3.connect("file:%s/kms.db?mode=ro" % d, uri=True)
    n = db.execute("SELECT count(*) FROM objects").fetchone()[0]
    db.close()
    return n


def fill(afs):
    """Fill the file system: files that take every free block, then every byte."""
    for name, chunk in (("filler", 4096), ("filler2", 1)):
        fd = os.open(os.path.join(afs, name), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * chunk)
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
        os.close(fd)


def unfill(afs):
    for n in ("filler", "filler2"):
        os.unlink(os.path.join(afs, n))


def status(bi):
    return one(bi, T["RESULT_STATUS"]), (find(bi, T["RESULT_REASON"]) or [0])[0], \
        (find(bi, T["RESULT_MESSAGE"]) or [""])[0]


def audit_lines(afs):
    with open(os.path.join(afs, "audit.log"), "rb") as f:
        data = f.read()
    check(data.endswith(b"\n"), "the audit log ends with a whole line")
    return [json.loads(l) for l in data.decode().splitlines()]


def wait_line(afs, pred, what):
    for _ in range(40):
        hits = [l for l in audit_lines(afs) if pred(l)]
        if hits:
            return hits[-1]
        time.sleep(0.1)
    raise SystemExit("FAIL: no audit line for " + what)


if mode == "full":
    other, afs = sys.argv[4], sys.argv[5]
    c = kt.Conn(port, d, "alice")
    ids = []
    for _ in range(2):
        _, b = c.call(CREATE)
        check(status(b[0])[0] == 0, "Create succeeds while the audit log has room")
        ids.append(one(find(b[0], T["RESPONSE_PAYLOAD"])[0], T["UNIQUE_IDENTIFIER"]))
    fill(afs)
    # The log's last page may still take a few lines: ask until a read is refused.
    for i in range(64):
        _, b = c.call([(OP["QUERY"], [], None)])
        if status(b[0])[:2] == (1, GENERAL_FAILURE):
            break
    check(i > 0 and status(b[0])[:2] == (1, GENERAL_FAILURE),
          "a Query refused once the audit log's file system is full (after %d more lines)" % i)
    before = objects()
    lines_before = len(audit_lines(afs))

    _, b = c.call(CREATE)
    st, reason, msg = status(b[0])
    check(st == 1 and reason == GENERAL_FAILURE and "audit" in msg,
          "Create refused with General Failure while the audit log cannot be written (%s)" % msg)
    check(objects() == before, "no object created (%d before, %d after)" % (before, objects()))
    _, b = c.call([(OP["ACTIVATE"], [item(T["UNIQUE_IDENTIFIER"], kt.TEXT, ids[0])], None)])
    check(status(b[0])[:2] == (1, GENERAL_FAILURE), "Activate refused")
    _, b = c.call([(OP["GET"], [item(T["UNIQUE_IDENTIFIER"], kt.TEXT, ids[0])], None)])
    check(status(b[0])[:2] == (1, GENERAL_FAILURE) and not find(b[0], T["RESPONSE_PAYLOAD"]),
          "Get refused, no key material released")
    # A burst on fresh connections: all refused, none stored (the issue: 33 objects
    # created and 18 lines written, one cut, on a full file system).
    for _ in range(30):
        _, b = kt.Conn(port, d, "alice").call(CREATE)
        assert status(b[0])[:2] == (1, GENERAL_FAILURE), status(b[0])
    check(objects() == before, "30 more Creates refused, still %d objects" % before)
    lines = audit_lines(afs)
    check(len(lines) == lines_before, "no line (and no part of one) added while full (%d lines)" % len(lines))

    unfill(afs)
    _, b = c.call(CREATE)
    check(status(b[0])[0] == 0 and objects() == before + 1, "Create works again once there is room")
    _, b = c.call([(OP["GET_ATTRIBUTES"], [item(T["UNIQUE_IDENTIFIER"], kt.TEXT, ids[0])], None)])
    check(status(b[0])[0] == 0, "GetAttributes works again")
    state = [a for a in find(find(b[0], T["RESPONSE_PAYLOAD"])[0], T["ATTRIBUTE"])
             if one(a, T["ATTRIBUTE_NAME"]) == "State"]
    check(one(state[0], T["ATTRIBUTE_VALUE"]) == 1, "the refused Activate changed nothing (still Pre-Active)")

    _, b = c.call([(OP["QUERY"], [], None)], extra_header=[item(T["BATCH_ERROR_CONTINUATION"], kt.ENUM, 3)])
    check(status(b[0])[:2] == (1, FEATURE_NOT_SUPPORTED), "Undo refused")
    me = "127.0.0.1:%d" % c.s.getsockname()[1]
    line = wait_line(afs, lambda l: l["operation"] == "(batch undo)", "the Undo")
    check(line["peer"] == me and line["client"] == "alice" and line["result"] == "failed",
          "the refused Undo audited with the peer's address (%s)" % line["peer"])

    # Refused handshakes: a certificate from another CA, and none.
    pem = open("%s/client-mallory.crt" % other).read()
    fp = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()
    for who, ca in (("mallory", d), (None, None)):
        try:
            x = kt.Conn(port, other if who else d, who, ca=ca)
            x.send_raw(kt.request([(OP["QUERY"], [], None)]))
            x.recv_msg()
        except (OSError, ssl.SSLError):
            pass
    line = wait_line(afs, lambda l: l["operation"] == "(TLS handshake)" and l["client_sha256"] == fp,
                     "the other CA's certificate")
    check("certificate refused" in line.get("message", "") and line["peer"].startswith("127.0.0.1:"),
          "a certificate from another CA: refused handshake audited with its fingerprint and peer (%s)"
          % line["message"])
    line = wait_line(afs, lambda l: l["operation"] == "(TLS handshake)" and l["client_sha256"] == "",
                     "no certificate")
    check(line["peer"].startswith("127.0.0.1:"), "no certificate: refused handshake audited (%s)"
          % line.get("message"))
    check(all(len(l.get("mac", "")) == 64 for l in audit_lines(afs)), "every line carries its MAC")

elif mode == "continue":
    afs = sys.argv[4]
    c = kt.Conn(port, d, "alice")
    before = objects()
    fill(afs)
    _, b = c.call(CREATE)
    check(status(b[0])[0] == 0 and objects() == before + 1,
          "audit-failure = continue: Create served while the audit log cannot be written")
    unfill(afs)
