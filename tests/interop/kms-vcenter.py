#!/usr/bin/python3
"""Replays the request sequence of vCenter 7.0.3 (Standard Key Provider, KMIP 1.1)
against vmcrypt-kms and checks every answer is what vCenter needs; then protocol
edge cases: version mismatch, batch Undo, ID placeholders, key wrapping.
Usage: kms-vcenter.py PORT DIR CLIENT [CIPHERS]"""
import importlib.util
import os
import sys

spec = importlib.util.spec_from_file_location("kt", os.path.join(os.path.dirname(__file__), "kms-ttlv.py"))
kt = importlib.util.module_from_spec(spec)
spec.loader.exec_module(kt)
T, OP, item, S, attr, one, find = kt.T, kt.OP, kt.item, kt.S, kt.attr, kt.one, kt.find

port, d, cn = int(sys.argv[1]), sys.argv[2], sys.argv[3]
check = kt.check


def ok(bi, what):
    st = one(bi, T["RESULT_STATUS"])
    if st != 0:
        raise SystemExit("FAIL: %s: status %d reason %r message %r" % (
            what, st, find(bi, T["RESULT_REASON"]), find(bi, T["RESULT_MESSAGE"])))
    return find(bi, T["RESPONSE_PAYLOAD"])[0] if find(bi, T["RESPONSE_PAYLOAD"]) else []


ciphers = sys.argv[4] if len(sys.argv) > 4 else None
c = kt.Conn(port, d, cn, ciphers=ciphers)
if ciphers:
    check(c.cipher[0] == ciphers and c.cipher[1] == "TLSv1.2", "TLS 1.2 with %s, as vCenter 7.0.3 negotiated" % ciphers)

# 1. DiscoverVersions, empty payload: all our versions, 1.1 among them.
hdr, bis = c.call([(OP["DISCOVER_VERSIONS"], [], None)])
pv = one(hdr, T["PROTOCOL_VERSION"])
check((one(pv, T["MAJOR"]), one(pv, T["MINOR"])) == (1, 1), "response header speaks the client's 1.1")
check(len(find(hdr, T["TIME_STAMP"])) == 1, "response header has a Time Stamp")
p = ok(bis[0], "DiscoverVersions")
vers = [(one(v, T["MAJOR"]), one(v, T["MINOR"])) for v in find(p, T["PROTOCOL_VERSION"])]
check((1, 1) in vers and (2, 0) in vers and vers[0] == (2, 0), "DiscoverVersions lists 2.0 first and 1.1 (%r)" % vers)
hdr, bis = c.call([(OP["DISCOVER_VERSIONS"], [S(T["PROTOCOL_VERSION"], item(T["MAJOR"], 2, 1), item(T["MINOR"], 2, 1))], None)])
p = ok(bis[0], "DiscoverVersions(1.1)")
check([(one(v, T["MAJOR"]), one(v, T["MINOR"])) for v in find(p, T["PROTOCOL_VERSION"])] == [(1, 1)],
      "DiscoverVersions with 1.1 offered answers exactly 1.1")

# 2. Query Server Information.
hdr, bis = c.call([(OP["QUERY"], [item(T["QUERY_FUNCTION"], kt.ENUM, 3)], None)])
p = ok(bis[0], "Query")
check(find(p, T["VENDOR_IDENTIFICATION"]) == ["vmcrypt"], "Query names the vendor")

# 3. Create: AES, usage mask 12, length 256.
tmpl = S(T["TEMPLATE_ATTRIBUTE"], attr("Cryptographic Algorithm", kt.ENUM, 3),
         attr("Cryptographic Usage Mask", kt.INT, 12), attr("Cryptographic Length", kt.INT, 256))
hdr, bis = c.call([(OP["CREATE"], [item(T["OBJECT_TYPE"], kt.ENUM, 2), tmpl], None)])
p = ok(bis[0], "Create")
uid = one(p, T["UNIQUE_IDENTIFIER"])
check(one(p, T["OBJECT_TYPE"]) == 2 and len(uid) == 36, "Create returns a symmetric key UUID")

# 4. GetAttributes of absent x- attributes: Success with only the UID.
for n in ("x-Product_Version", "x-Vendor", "x-Product"):
    hdr, bis = c.call([(OP["GET_ATTRIBUTES"], [item(T["UNIQUE_IDENTIFIER"], kt.TEXT, uid),
                                               item(T["ATTRIBUTE_NAME"], kt.TEXT, n)], None)])
    p = ok(bis[0], "GetAttributes " + n)
    check(p == [(T["UNIQUE_IDENTIFIER"], kt.TEXT, uid)], "GetAttributes(%s) absent: only the UID" % n)

# 5. AddAttribute batch of 3 with Unique Batch Item IDs QLKC...
vals = [("x-Product_Version", "7.0.3 build-19480866"), ("x-Vendor", "VMware, Inc."), ("x-Product", "VMware vSphere")]
items = [(OP["ADD_ATTRIBUTE"], [item(T["UNIQUE_IDENTIFIER"], kt.TEXT, uid), attr(n, kt.TEXT, v)],
          b"QLKC%d" % (i + 1)) for i, (n, v) in enumerate(vals)]
hdr, bis = c.call(items)
check(len(bis) == 3, "three batch items answered")
for i, bi in enumerate(bis):
    p = ok(bi, "AddAttribute %d" % i)
    check(one(bi, T["UNIQUE_BATCH_ITEM_ID"]) == b"QLKC%d" % (i + 1), "batch item id QLKC%d echoed" % (i + 1))
    check(one(bi, T["OPERATION"]) == OP["ADD_ATTRIBUTE"], "operation echoed")
    a = one(p, T["ATTRIBUTE"])
    check(one(a, T["ATTRIBUTE_NAME"]) == vals[i][0] and one(a, T["ATTRIBUTE_VALUE"]) == vals[i][1],
          "AddAttribute answers the attribute " + vals[i][0])
hdr, bis = c.call([(OP["GET_ATTRIBUTES"], [item(T["UNIQUE_IDENTIFIER"], kt.TEXT, uid),
                                           item(T["ATTRIBUTE_NAME"], kt.TEXT, "x-Vendor")], None)])
p = ok(bis[0], "GetAttributes x-Vendor")
check(one(one(p, T["ATTRIBUTE"]), T["ATTRIBUTE_VALUE"]) == "VMware, Inc.", "x-Vendor reads back")

# 6. Get without Key Format Type: Raw, 32 bytes.
hdr, bis = c.call([(OP["GET"], [item(T["UNIQUE_IDENTIFIER"], kt.TEXT, uid)], None)])
p = ok(bis[0], "Get")
kb = one(one(p, T["SYMMETRIC_KEY"]), T["KEY_BLOCK"])
check(one(kb, T["KEY_FORMAT_TYPE"]) == 1, "Get answers Raw")
key = one(one(kb, T["KEY_VALUE"]), T["KEY_MATERIAL"])
check(len(key) == 32, "the key is 32 bytes")

# Transparent Symmetric Key format: Key Material is a structure holding Key.
_, bis = c.call([(OP["GET"], [item(T["UNIQUE_IDENTIFIER"], kt.TEXT, uid), item(T["KEY_FORMAT_TYPE"], kt.ENUM, 7)], None)])
kb7 = one(one(ok(bis[0], "Get Transparent"), T["SYMMETRIC_KEY"]), T["KEY_BLOCK"])
check(one(kb7, T["KEY_FORMAT_TYPE"]) == 7, "Get answers Transparent Symmetric Key when asked")
check(one(one(one(kb7, T["KEY_VALUE"]), T["KEY_MATERIAL"]), 0x42003F) == key, "transparent Key is the same 32 bytes")
_, bis = c.call([(OP["GET"], [item(T["UNIQUE_IDENTIFIER"], kt.TEXT, uid), item(T["KEY_FORMAT_TYPE"], kt.ENUM, 3)], None)])
check(one(bis[0], T["RESULT_STATUS"]) == 1, "Get in PKCS#1 format for an AES key: refused")

# 7. GetAttributes State: Pre-Active -> Activate -> Active.
def state():
    _, b = c.call([(OP["GET_ATTRIBUTES"], [item(T["UNIQUE_IDENTIFIER"], kt.TEXT, uid),
                                           item(T["ATTRIBUTE_NAME"], kt.TEXT, "State")], None)])
    return one(one(ok(b[0], "GetAttributes State"), T["ATTRIBUTE"]), T["ATTRIBUTE_VALUE"])


check(state() == 1, "new key is Pre-Active")
_, bis = c.call([(OP["ACTIVATE"], [item(T["UNIQUE_IDENTIFIER"], kt.TEXT, uid)], None)])
ok(bis[0], "Activate")
check(state() == 2, "activated key is Active")

# --- protocol edge cases ---
# Major version mismatch: Invalid Message.
_, bis = c.call([(OP["QUERY"], [item(T["QUERY_FUNCTION"], kt.ENUM, 3)], None)], major=3, minor=0)
check(len(bis) == 1 and one(bis[0], T["RESULT_STATUS"]) == 1 and one(bis[0], T["RESULT_REASON"]) == 4,
      "KMIP 3.0 request: Operation Failed / Invalid Message")
# Newer minor of a known major: answered in our newest 1.x.
hdr, bis = c.call([(OP["QUERY"], [item(T["QUERY_FUNCTION"], kt.ENUM, 3)], None)], major=1, minor=9)
check(one(one(hdr, T["PROTOCOL_VERSION"]), T["MINOR"]) == 4, "KMIP 1.9 request answered as 1.4")
# Batch Error Continuation Undo: refused.
_, bis = c.call([(OP["QUERY"], [], None)], extra_header=[item(T["BATCH_ERROR_CONTINUATION"], kt.ENUM, 3)])
check(one(bis[0], T["RESULT_STATUS"]) == 1 and one(bis[0], T["RESULT_REASON"]) == 8, "Undo: Feature Not Supported")
# Stop (default): processing stops at the first failure.
_, bis = c.call([(OP["GET"], [item(T["UNIQUE_IDENTIFIER"], kt.TEXT, "nope")], b"a"), (OP["QUERY"], [], b"b")])
check(len(bis) == 1 and one(bis[0], T["RESULT_REASON"]) == 1, "Stop: one failed item (Item Not Found), rest skipped")
# Continue: every item runs.
_, bis = c.call([(OP["GET"], [item(T["UNIQUE_IDENTIFIER"], kt.TEXT, "nope")], b"a"), (OP["QUERY"], [], b"b")],
                extra_header=[item(T["BATCH_ERROR_CONTINUATION"], kt.ENUM, 1)])
check(len(bis) == 2 and one(bis[1], T["RESULT_STATUS"]) == 0, "Continue: the second item still runs")
# ID Placeholder: Create then Activate without a UID in one batch.
_, bis = c.call([(OP["CREATE"], [item(T["OBJECT_TYPE"], kt.ENUM, 2), tmpl], b"1"), (OP["ACTIVATE"], [], b"2")])
p = ok(bis[1], "Activate with the ID Placeholder")
check(one(p, T["UNIQUE_IDENTIFIER"]) == one(ok(bis[0], "Create"), T["UNIQUE_IDENTIFIER"]), "placeholder is the new key")
# Unknown operation: Operation Not Supported.
_, bis = c.call([(0x25, [], None)])
check(one(bis[0], T["RESULT_REASON"]) == 5, "RNG Retrieve: Operation Not Supported")

# --- server-side key wrapping: a DEK secret wrapped by a KEK that never leaves ---
tmplw = S(T["TEMPLATE_ATTRIBUTE"], attr("Cryptographic Algorithm", kt.ENUM, 3),
          attr("Cryptographic Usage Mask", kt.INT, 12 | 16 | 32), attr("Cryptographic Length", kt.INT, 256))
_, bis = c.call([(OP["CREATE"], [item(T["OBJECT_TYPE"], kt.ENUM, 2), tmplw], None), (OP["ACTIVATE"], [], None)])
kek = one(ok(bis[0], "Create KEK"), T["UNIQUE_IDENTIFIER"])
ok(bis[1], "Activate KEK")
secret = os.urandom(32)
kwp = S(T["CRYPTOGRAPHIC_PARAMETERS"], item(T["BLOCK_CIPHER_MODE"], kt.ENUM, 0x0C))
_, bis = c.call([(OP["ENCRYPT"], [item(T["UNIQUE_IDENTIFIER"], kt.TEXT, kek), kwp, item(T["DATA"], kt.BYTES, secret)], None)])
wrapped = one(ok(bis[0], "Encrypt (AES-KWP)"), T["DATA"])
check(len(wrapped) == 40 and wrapped[:32] != secret, "32-byte secret wraps to 40 bytes")
_, bis = c.call([(OP["DECRYPT"], [item(T["UNIQUE_IDENTIFIER"], kt.TEXT, kek), kwp, item(T["DATA"], kt.BYTES, wrapped)], None)])
check(one(ok(bis[0], "Decrypt (AES-KWP)"), T["DATA"]) == secret, "unwrap returns the secret")
bad = bytes([wrapped[0] ^ 1]) + wrapped[1:]
_, bis = c.call([(OP["DECRYPT"], [item(T["UNIQUE_IDENTIFIER"], kt.TEXT, kek), kwp, item(T["DATA"], kt.BYTES, bad)], None)])
check(one(bis[0], T["RESULT_REASON"]) == 0x0A, "tampered wrapped secret: Cryptographic Failure")
# The same wrap is what RFC 5649 gives with the KEK's bytes.
_, bis = c.call([(OP["GET"], [item(T["UNIQUE_IDENTIFIER"], kt.TEXT, kek)], None)])
kekbytes = one(one(one(one(ok(bis[0], "Get KEK"), T["SYMMETRIC_KEY"]), T["KEY_BLOCK"]), T["KEY_VALUE"]), T["KEY_MATERIAL"])
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap_with_padding, aes_key_wrap_with_padding
check(aes_key_unwrap_with_padding(kekbytes, wrapped) == secret, "wrapped secret opens with RFC 5649 (cryptography)")
# GCM round trip with AAD.
gcm = S(T["CRYPTOGRAPHIC_PARAMETERS"], item(T["BLOCK_CIPHER_MODE"], kt.ENUM, 9))
_, bis = c.call([(OP["ENCRYPT"], [item(T["UNIQUE_IDENTIFIER"], kt.TEXT, kek), gcm, item(T["DATA"], kt.BYTES, b"hello gcm"),
                                  item(0x4200FE, kt.BYTES, b"aad")], None)])
p = ok(bis[0], "Encrypt GCM")
ct, iv, tag = one(p, T["DATA"]), one(p, T["IV"]), one(p, T["AE_TAG"])
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
check(AESGCM(kekbytes).decrypt(iv, ct + tag, b"aad") == b"hello gcm", "GCM ciphertext opens with cryptography")
_, bis = c.call([(OP["DECRYPT"], [item(T["UNIQUE_IDENTIFIER"], kt.TEXT, kek), gcm, item(T["DATA"], kt.BYTES, ct),
                                  item(T["IV"], kt.BYTES, iv), item(0x4200FE, kt.BYTES, b"aad"), item(T["AE_TAG"], kt.BYTES, tag)], None)])
check(one(ok(bis[0], "Decrypt GCM"), T["DATA"]) == b"hello gcm", "GCM decrypt on the server")
# Get of the DEK wrapped under the KEK (Key Wrapping Specification, AES-KWP).
spec_ = S(T["KEY_WRAPPING_SPECIFICATION"], item(T["WRAPPING_METHOD"], kt.ENUM, 1),
          S(T["ENCRYPTION_KEY_INFORMATION"], item(T["UNIQUE_IDENTIFIER"], kt.TEXT, kek), kwp))
_, bis = c.call([(OP["GET"], [item(T["UNIQUE_IDENTIFIER"], kt.TEXT, uid), spec_], None)])
kb = one(one(ok(bis[0], "Get wrapped"), T["SYMMETRIC_KEY"]), T["KEY_BLOCK"])
check(len(find(kb, T["KEY_WRAPPING_DATA"])) == 1, "wrapped Get carries Key Wrapping Data")
check(aes_key_unwrap_with_padding(kekbytes, one(kb, T["KEY_VALUE"])) == key, "wrapped key unwraps to the key")
c.close()
print("ok: vCenter replay")
