#!/usr/bin/python3
"""Revocation of keys and of client certificates in vmcrypt-kms (see kms-revoke.sh).
Usage: kms-revoke.py PORT DIR SERVER_PID SERVER_LOG OTHERCA_DIR"""
import datetime
import hashlib
import importlib.util
import os
import signal
import ssl
import sys
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

spec = importlib.util.spec_from_file_location("kt", os.path.join(os.path.dirname(__file__), "kms-ttlv.py"))
kt = importlib.util.module_from_spec(spec)
spec.loader.exec_module(kt)
T, OP, item, S, attr, one, find, check = kt.T, kt.OP, kt.item, kt.S, kt.attr, kt.one, kt.find, kt.check
port, d, pid, log, other = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
MODIFY, DELETE = 0x0E, 0x0F
PERMISSION_DENIED, ILLEGAL_OPERATION, NOT_EXTRACTABLE, WRONG_STATE = 0x0C, 0x0B, 0x17, 0x43


def uid_item(u):
    return item(T["UNIQUE_IDENTIFIER"], kt.TEXT, u)


def result(conn, op, payload, minor=1, major=1):
    _, b = conn.call([(op, payload, None)], major=major, minor=minor)
    st = one(b[0], T["RESULT_STATUS"])
    return (0, find(b[0], T["RESPONSE_PAYLOAD"])[0]) if st == 0 else (st, one(b[0], T["RESULT_REASON"]))


def create(conn, *extra, activate=True, minor=1):
    tmpl = S(T["TEMPLATE_ATTRIBUTE"], attr("Cryptographic Algorithm", kt.ENUM, 3),
             attr("Cryptographic Usage Mask", kt.INT, 12 | 0x10 | 0x20), attr("Cryptographic Length", kt.INT, 256),
             *extra)
    items = [(OP["CREATE"], [item(T["OBJECT_TYPE"], kt.ENUM, 2), tmpl], None)]
    if activate:
        items.append((OP["ACTIVATE"], [], None))
    _, b = conn.call(items, minor=minor)
    assert all(one(x, T["RESULT_STATUS"]) == 0 for x in b), b
    return one(find(b[0], T["RESPONSE_PAYLOAD"])[0], T["UNIQUE_IDENTIFIER"])


def get(conn, u, minor=1, major=1, wrap_with=None):
    payload = [uid_item(u)]
    if wrap_with:
        payload.append(S(T["KEY_WRAPPING_SPECIFICATION"], item(T["WRAPPING_METHOD"], kt.ENUM, 1),
                         S(T["ENCRYPTION_KEY_INFORMATION"], uid_item(wrap_with),
                           S(T["CRYPTOGRAPHIC_PARAMETERS"], item(T["BLOCK_CIPHER_MODE"], kt.ENUM, 0x0C)))))
    return result(conn, OP["GET"], payload, minor=minor, major=major)


def revoke(conn, u, code):
    reason = S(0x420081, item(0x420082, kt.ENUM, code))
    payload = [uid_item(u), reason]
    if code == 2:
        payload.append(item(0x420021, kt.DATETIME, int(time.time()) - 60))
    st, _ = result(conn, OP["REVOKE"], payload)
    assert st == 0


gcm = S(T["CRYPTOGRAPHIC_PARAMETERS"], item(T["BLOCK_CIPHER_MODE"], kt.ENUM, 9))
alice = kt.Conn(port, d, "alice")

# -- Keys that are not Active stay on the server, for their owner too.
k = create(alice)
check(get(alice, k)[0] == 0, "Get of an Active key works")
st, p = result(alice, OP["ENCRYPT"], [uid_item(k), gcm, item(T["DATA"], kt.BYTES, b"x" * 32)])
check(st == 0, "Encrypt with an Active key works")
ct = [item(T["DATA"], kt.BYTES, one(p, T["DATA"])), item(T["IV"], kt.BYTES, one(p, T["IV"])),
      item(T["AE_TAG"], kt.BYTES, one(p, T["AE_TAG"]))]
revoke(alice, k, 5)  # Cessation of Operation: Deactivated
check(get(alice, k) == (1, PERMISSION_DENIED), "owner's Get of a Deactivated key: Permission Denied (1.1)")
check(get(alice, k, major=2, minor=0) == (1, WRONG_STATE), "owner's Get of a Deactivated key: Wrong Key Lifecycle State (2.0)")
check(result(alice, OP["DECRYPT"], [uid_item(k), gcm] + ct)[0] == 1,
      "Decrypt with a Deactivated key refused (a revoked KEK opens no disk)")
check(result(alice, OP["ENCRYPT"], [uid_item(k), gcm, item(T["DATA"], kt.BYTES, b"x")])[0] == 1,
      "Encrypt with a Deactivated key refused")
k2 = create(alice)
revoke(alice, k2, 2)  # Key Compromise
check(get(alice, k2) == (1, PERMISSION_DENIED), "owner's Get of a Compromised key: Permission Denied (1.1)")
check(get(alice, k2, major=2, minor=0) == (1, WRONG_STATE), "owner's Get of a Compromised key: Wrong Key Lifecycle State (2.0)")
check(get(alice, k2, wrap_with=create(alice))[0] == 1, "nor wrapped under another key")
k3 = create(alice, activate=False)
check(get(alice, k3)[0] == 0, "Get of a Pre-Active key works (vCenter fetches new keys before Activate)")
check(result(alice, OP["ENCRYPT"], [uid_item(k3), gcm, item(T["DATA"], kt.BYTES, b"x")])[0] == 1,
      "Encrypt with a Pre-Active key refused")

# -- Extractable = false: never handed out, not even wrapped, not even to the owner.
k4 = create(alice, attr("Extractable", kt.BOOL, False), minor=4)
check(get(alice, k4, minor=4) == (1, NOT_EXTRACTABLE), "Get of a non-extractable key: Not Extractable (1.4)")
check(get(alice, k4) == (1, PERMISSION_DENIED), "Get of a non-extractable key: Permission Denied (1.1)")
check(get(alice, k4, wrap_with=create(alice))[0] == 1, "nor wrapped under another key")
check(result(alice, OP["ENCRYPT"], [uid_item(k4), gcm, item(T["DATA"], kt.BYTES, b"x")])[0] == 0,
      "a non-extractable key still encrypts on the server")
check(result(alice, MODIFY, [uid_item(k4), attr("Extractable", kt.BOOL, True)], minor=4) == (1, ILLEGAL_OPERATION),
      "Extractable cannot be set back to true")
check(result(alice, DELETE, [uid_item(k4), item(T["ATTRIBUTE_NAME"], kt.TEXT, "Extractable")], minor=4)
      == (1, ILLEGAL_OPERATION), "nor deleted")
k5 = create(alice, minor=4)
check(result(alice, OP["ADD_ATTRIBUTE"], [uid_item(k5), attr("Extractable", kt.BOOL, False)], minor=4)[0] == 0,
      "an extractable key can be made non-extractable")
check(get(alice, k5, minor=4) == (1, NOT_EXTRACTABLE), "and is refused from then on")
k6 = create(alice, attr("Sensitive", kt.BOOL, True), minor=4)
check(get(alice, k6, minor=4) == (1, PERMISSION_DENIED), "Get of a Sensitive key in the clear refused")
check(get(alice, k6, minor=4, wrap_with=create(alice))[0] == 0, "a Sensitive key is handed out wrapped")

# -- Client certificates: a deny-list of fingerprints and a CRL, re-read on SIGHUP.
def reloads():
    with open(log) as f:
        return f.read().count("SIGHUP:")


def sighup(line):
    n = reloads()
    with open(os.path.join(d, "kms.conf"), "a") as f:
        f.write(line + "\n")
    os.kill(pid, signal.SIGHUP)
    for _ in range(200):
        if reloads() > n:
            return
        time.sleep(0.05)
    raise SystemExit("FAIL: the server did not report the reload")


def works(cn):
    try:
        c = kt.Conn(port, d, cn)
        st, _ = result(c, OP["QUERY"], [item(T["QUERY_FUNCTION"], kt.ENUM, 3)])
        c.close()
        return st == 0
    except (ssl.SSLError, ConnectionError, OSError, AssertionError, TypeError, IndexError):
        return False


def dropped(c):
    try:
        result(c, OP["QUERY"], [item(T["QUERY_FUNCTION"], kt.ENUM, 3)])
    except (ssl.SSLError, ConnectionError, OSError, AssertionError, TypeError, IndexError):
        return True
    return False


def openssl_fingerprint(cn):
    with open("%s/client-%s.crt" % (d, cn)) as f:
        h = hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest().upper()
    return ":".join(h[i:i + 2] for i in range(0, 64, 2))


check(works("bob") and works("carol"), "bob and carol connect")
bob = kt.Conn(port, d, "bob")
check(result(bob, OP["QUERY"], [item(T["QUERY_FUNCTION"], kt.ENUM, 3)])[0] == 0, "bob's connection serves")
sighup("revoked-client = " + openssl_fingerprint("bob"))
check(not works("bob"), "bob's certificate, on the deny-list after SIGHUP, is refused at the handshake")
with open(log) as f:
    check("Refusing revoked client certificate" in f.read(), "refused in the TLS handshake (verify callback)")
check(dropped(bob), "bob's open connection is closed at its next request")
check(works("alice") and works("carol"), "the others still connect")


def load_pem(path, kind):
    with open(path, "rb") as f:
        data = f.read()
    return x509.load_pem_x509_certificate(data) if kind == "cert" else serialization.load_pem_private_key(data, None)


def write_crl(ca_dir, cn, out):
    ca, key = load_pem("%s/ca.crt" % ca_dir, "cert"), load_pem("%s/ca.key" % ca_dir, "key")
    victim = load_pem("%s/client-%s.crt" % (d, cn), "cert")
    now = datetime.datetime.utcnow()
    crl = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject).last_update(now)
           .next_update(now + datetime.timedelta(days=7))
           .add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(victim.serial_number)
                                    .revocation_date(now).build())
           .sign(key, hashes.SHA256()))
    with open(out, "wb") as f:
        f.write(crl.public_bytes(serialization.Encoding.PEM))


carol = kt.Conn(port, d, "carol")
write_crl(d, "carol", os.path.join(d, "crl.pem"))
sighup("crl = crl.pem")
check(not works("carol"), "carol's certificate, listed in the CRL after SIGHUP, is refused")
check(dropped(carol), "carol's open connection is closed at its next request")
check(works("alice"), "alice, not in the CRL, still connects")
write_crl(other, "carol", os.path.join(d, "bad-crl.pem"))
sighup("crl = bad-crl.pem")
with open(log) as f:
    check("not signed by a client CA" in f.read(), "a CRL signed by another CA is refused on reload")
check(not works("carol") and not works("bob") and works("alice"), "and the lists in force stay as they were")
print("ok: revocation")
