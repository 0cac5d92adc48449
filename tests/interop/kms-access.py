#!/usr/bin/python3
"""Access control of vmcrypt-kms: objects belong to their creator; another identity
gets Item Not Found for every use; a policy group gets exactly what it lists; an
identity that may Encrypt but not Decrypt cannot choose the IV (a chosen GCM IV, or
a chosen CBC IV, would make Encrypt a decryption oracle); clients with a certificate
from another CA, an expired one or none are refused.
Usage: kms-access.py PORT DIR OTHERCA_DIR"""
import importlib.util
import os
import secrets
import ssl
import sys

spec = importlib.util.spec_from_file_location("kt", os.path.join(os.path.dirname(__file__), "kms-ttlv.py"))
kt = importlib.util.module_from_spec(spec)
spec.loader.exec_module(kt)
T, OP, item, S, attr, one, find = kt.T, kt.OP, kt.item, kt.S, kt.attr, kt.one, kt.find
port, d, other = int(sys.argv[1]), sys.argv[2], sys.argv[3]
check = kt.check


def uid_item(u):
    return item(T["UNIQUE_IDENTIFIER"], kt.TEXT, u)


tmpl = S(T["TEMPLATE_ATTRIBUTE"], attr("Cryptographic Algorithm", kt.ENUM, 3),
         attr("Cryptographic Usage Mask", kt.INT, 12), attr("Cryptographic Length", kt.INT, 256),
         attr("Name", kt.STRUCT, [item(0x420055, kt.TEXT, "alice-key"), item(0x420054, kt.ENUM, 1)]))
alice = kt.Conn(port, d, "alice")
_, bis = alice.call([(OP["CREATE"], [item(T["OBJECT_TYPE"], kt.ENUM, 2), tmpl], None), (OP["ACTIVATE"], [], None)])
check(one(bis[0], T["RESULT_STATUS"]) == 0 and one(bis[1], T["RESULT_STATUS"]) == 0, "alice creates and activates a key")
uid = one(find(bis[0], T["RESPONSE_PAYLOAD"])[0], T["UNIQUE_IDENTIFIER"])


def reason(conn, op, payload):
    _, b = conn.call([(op, payload, None)])
    return one(b[0], T["RESULT_STATUS"]), find(b[0], T["RESULT_REASON"])


bob = kt.Conn(port, d, "bob")
gcm = S(T["CRYPTOGRAPHIC_PARAMETERS"], item(T["BLOCK_CIPHER_MODE"], kt.ENUM, 9))
for name, op, payload in [
        ("Get", OP["GET"], [uid_item(uid)]),
        ("GetAttributes", OP["GET_ATTRIBUTES"], [uid_item(uid)]),
        ("AddAttribute", OP["ADD_ATTRIBUTE"], [uid_item(uid), attr("x-Owner", kt.TEXT, "bob")]),
        ("Encrypt", OP["ENCRYPT"], [uid_item(uid), gcm, item(T["DATA"], kt.BYTES, b"x")]),
        ("Revoke", OP["REVOKE"], [uid_item(uid), S(0x420081, item(0x420082, kt.ENUM, 2))]),
        ("Destroy", OP["DESTROY"], [uid_item(uid)])]:
    check(reason(bob, op, payload) == (1, [1]), "bob's %s of alice's key: Item Not Found" % name)
_, b = bob.call([(0x08, [attr("Name", kt.STRUCT, [item(0x420055, kt.TEXT, "alice-key"), item(0x420054, kt.ENUM, 1)])], None)])
check(find(find(b[0], T["RESPONSE_PAYLOAD"])[0], T["UNIQUE_IDENTIFIER"]) == [], "bob's Locate does not see alice's key")
_, b = alice.call([(0x08, [attr("Name", kt.STRUCT, [item(0x420055, kt.TEXT, "alice-key"), item(0x420054, kt.ENUM, 1)])], None)])
check(find(find(b[0], T["RESPONSE_PAYLOAD"])[0], T["UNIQUE_IDENTIFIER"]) == [uid], "alice's Locate sees it")

carol = kt.Conn(port, d, "carol")  # group auditors: locate, get-attributes
check(reason(carol, OP["GET_ATTRIBUTES"], [uid_item(uid)])[0] == 0, "auditor carol may GetAttributes")
check(reason(carol, OP["GET"], [uid_item(uid)]) == (1, [1]), "auditor carol may not Get: Item Not Found")
check(reason(carol, OP["DESTROY"], [uid_item(uid)]) == (1, [1]), "auditor carol may not Destroy")
_, b = carol.call([(0x08, [], None)])
check(uid in find(find(b[0], T["RESPONSE_PAYLOAD"])[0], T["UNIQUE_IDENTIFIER"]), "auditor carol's Locate sees all keys")


# Encrypt with a caller-chosen IV. A GCM ciphertext is plaintext XOR a keystream
# that depends only on key and IV: Encrypt(zeros, IV of a wrapped secret) XOR the
# wrapped bytes would give the secret to whoever may only Encrypt. dave's group may
# Encrypt with alice's key, erin's may Encrypt and Decrypt.
IV, TAG, AAD, RANDOM_IV = T["IV"], T["AE_TAG"], 0x4200FE, 0x4200C5


def encrypt(conn, data, mode=9, iv=None, random_iv=False, aad=None):
    cp = [item(T["BLOCK_CIPHER_MODE"], kt.ENUM, mode)]
    if mode == 1:
        cp.append(item(0x42005F, kt.ENUM, 1))  # Padding Method None
    if random_iv:
        cp.append(item(RANDOM_IV, kt.BOOL, True))
    payload = [uid_item(uid), S(T["CRYPTOGRAPHIC_PARAMETERS"], *cp), item(T["DATA"], kt.BYTES, data)]
    if iv is not None:
        payload.append(item(IV, kt.BYTES, iv))
    if aad is not None:
        payload.append(item(AAD, kt.BYTES, aad))
    _, b = conn.call([(OP["ENCRYPT"], payload, None)])
    if one(b[0], T["RESULT_STATUS"]) != 0:
        return None, one(b[0], T["RESULT_REASON"])
    p = find(b[0], T["RESPONSE_PAYLOAD"])[0]
    return (one(p, T["DATA"]), (find(p, IV) or [None])[0], (find(p, TAG) or [None])[0]), 0


secret, aad = secrets.token_bytes(32), b"vmcrypt unlock secret v1"
wrapped, _ = encrypt(alice, secret, aad=aad)  # as vmcrypt wraps: no IV sent
check(wrapped and wrapped[1] and len(wrapped[1]) == 12 and len(wrapped[2]) == 16,
      "Encrypt without an IV: the server picks a 12-byte IV and returns it with the tag")
ct, token_iv, tag = wrapped
_, b = alice.call([(OP["DECRYPT"], [uid_item(uid), S(T["CRYPTOGRAPHIC_PARAMETERS"], item(T["BLOCK_CIPHER_MODE"], kt.ENUM, 9)),
                                    item(T["DATA"], kt.BYTES, ct), item(IV, kt.BYTES, token_iv), item(AAD, kt.BYTES, aad),
                                    item(TAG, kt.BYTES, tag)], None)])
check(one(find(b[0], T["RESPONSE_PAYLOAD"])[0], T["DATA"]) == secret, "the server's IV decrypts it")

dave = kt.Conn(port, d, "dave")
got, why = encrypt(dave, bytes(32), iv=token_iv)
check(got is None and why == 12, "encrypt-only dave's Encrypt with the wrapped secret's IV: Permission Denied")
got, why = encrypt(dave, bytes(16), mode=1, iv=bytes(16))
check(got is None and why == 12, "encrypt-only dave's CBC Encrypt with a chosen IV (raw AES): Permission Denied")
got, _ = encrypt(dave, bytes(32))
check(got is not None and got[1] != token_iv and len(got[1]) == 12, "dave without an IV: a fresh server IV")
check(bytes(x ^ y for x, y in zip(got[0], ct)) != secret, "the oracle attack no longer yields the secret")
got, _ = encrypt(dave, bytes(16), mode=1)
check(got is not None and len(got[1]) == 16, "dave's CBC Encrypt without an IV: a server IV")
got, _ = encrypt(dave, bytes(32), random_iv=True)
check(got is not None and len(got[1]) == 12, "dave with Random IV: a server IV")
got, why = encrypt(dave, bytes(32), iv=bytes(12), random_iv=True)
check(got is None and why == 7, "an IV together with Random IV: Invalid Field")
erin = kt.Conn(port, d, "erin")
got, _ = encrypt(erin, bytes(32), iv=token_iv)
check(got is not None and got[1] is None, "erin, who may Decrypt anyway, may choose the IV")
got, _ = encrypt(alice, bytes(32), iv=bytes(12))
check(got is not None, "the owner may choose the IV (tokens of older vmcrypt versions)")

# The key is untouched by all that.
_, b = alice.call([(OP["GET_ATTRIBUTES"], [uid_item(uid), item(T["ATTRIBUTE_NAME"], kt.TEXT, "State")], None)])
check(one(one(find(b[0], T["RESPONSE_PAYLOAD"])[0], T["ATTRIBUTE"]), T["ATTRIBUTE_VALUE"]) == 2, "alice's key still Active")


def refused(make, what):
    try:
        c = make()
        c.call([(OP["QUERY"], [item(T["QUERY_FUNCTION"], kt.ENUM, 3)], None)])
    except (ssl.SSLError, ConnectionError, OSError, AssertionError, TypeError, IndexError):
        print("ok: " + what)
        return
    raise SystemExit("FAIL: " + what)


refused(lambda: kt.Conn(port, other, "mallory", ca=d), "client certificate from another CA refused")
refused(lambda: kt.Conn(port, d, "expired"), "expired client certificate refused")
refused(lambda: kt.Conn(port, d, "future"), "not-yet-valid client certificate refused")
refused(lambda: kt.Conn(port, d, None), "connection without a client certificate refused")
check(reason(alice, OP["GET"], [uid_item(uid)])[0] == 0, "server still serves alice afterwards")
print("ok: access control")
