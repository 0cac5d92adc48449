#!/usr/bin/python3
"""Client identity from certificates that the trusted CA signed but whose subject CN is
unusual: BMPString CNs are converted to UTF-8 (two such clients do not share an
identity, and one name is one identity whatever its string type); a CN with a NUL or
a control character, two CNs, an empty CN or one too long to hold are refused before any request, and the
refusal is in the audit log with the certificate's fingerprint.
Usage: kms-identity.py PORT DIR (made by init, with client alice)"""
import datetime
import importlib.util
import json
import os
import ssl
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

spec = importlib.util.spec_from_file_location("kt", os.path.join(os.path.dirname(__file__), "kms-ttlv.py"))
kt = importlib.util.module_from_spec(spec)
spec.loader.exec_module(kt)
T, OP, item, S, attr, one, find, check = kt.T, kt.OP, kt.item, kt.S, kt.attr, kt.one, kt.find, kt.check
port, d = int(sys.argv[1]), sys.argv[2]

ca_cert = x509.load_pem_x509_certificate(open(os.path.join(d, "ca.crt"), "rb").read())
ca_key = serialization.load_pem_private_key(open(os.path.join(d, "ca.key"), "rb").read(), None)


def issue(name, cns):
    """client-NAME.crt/.key in d, signed by the server's CA, with these CN attributes
    ((value, ASN.1 string type or None) pairs, in this order); returns its SHA-256."""
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, v, t, _validate=False) if t else
             x509.NameAttribute(NameOID.COMMON_NAME, v, _validate=False) for v, t in cns]
    now = datetime.datetime.utcnow()
    cert = (x509.CertificateBuilder().subject_name(x509.Name(attrs)).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    with open(os.path.join(d, "client-%s.key" % name), "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(os.path.join(d, "client-%s.crt" % name), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return cert.fingerprint(hashes.SHA256()).hex()


def uid_item(u):
    return item(T["UNIQUE_IDENTIFIER"], kt.TEXT, u)


def create(conn):
    tmpl = S(T["TEMPLATE_ATTRIBUTE"], attr("Cryptographic Algorithm", kt.ENUM, 3),
             attr("Cryptographic Usage Mask", kt.INT, 12), attr("Cryptographic Length", kt.INT, 256))
    _, b = conn.call([(OP["CREATE"], [item(T["OBJECT_TYPE"], kt.ENUM, 2), tmpl], None)])
    check(one(b[0], T["RESULT_STATUS"]) == 0, "create")
    return one(find(b[0], T["RESPONSE_PAYLOAD"])[0], T["UNIQUE_IDENTIFIER"])


def get(conn, uid):
    """(status, reasons) of a Get."""
    _, b = conn.call([(OP["GET"], [uid_item(uid)], None)])
    return one(b[0], T["RESULT_STATUS"]), find(b[0], T["RESULT_REASON"])


BMP, UTF8 = _ASN1Type.BMPString, _ASN1Type.UTF8String
issue("bmp1", [("bmp-one", BMP)])
issue("bmp2", [("bmp-two", BMP)])
issue("juergen-utf8", [("j\u00fcrgen", UTF8)])
issue("juergen-bmp", [("j\u00fcrgen", BMP)])
refused_fps = {
    "nul": issue("nul", [("alice\0x", UTF8)]),
    "two": issue("two", [("alice", UTF8), ("bob", UTF8)]),
    "empty": issue("empty", [("", UTF8)]),
    "newline": issue("newline", [("alice\n", UTF8)]),
    "c1": issue("c1", [("alice\u0085", UTF8)]),
    "bmpnul": issue("bmpnul", [("alice\0", BMP)]),
    "long": issue("long", [("a" * 300, UTF8)]),
}

alice = kt.Conn(port, d, "alice")
alice_key = create(alice)

# Two BMPString CNs: each its own identity (their raw bytes both start with a zero
# byte; read as C strings both were "").
bmp1, bmp2 = kt.Conn(port, d, "bmp1"), kt.Conn(port, d, "bmp2")
k1 = create(bmp1)
check(get(bmp1, k1)[0] == 0, "BMPString CN bmp-one gets its own key")
check(get(bmp2, k1) == (1, [1]), "BMPString CN bmp-two gets Item Not Found for bmp-one's key")
check(get(bmp2, alice_key) == (1, [1]), "BMPString CN bmp-two gets Item Not Found for alice's key")
k2 = create(bmp2)
check(get(bmp1, k2) == (1, [1]), "BMPString CN bmp-one gets Item Not Found for bmp-two's key")

# One name, one identity, whatever the string type the CA encoded it in.
ju, jb = kt.Conn(port, d, "juergen-utf8"), kt.Conn(port, d, "juergen-bmp")
kj = create(ju)
check(get(jb, kj)[0] == 0, "CN j\u00fcrgen as BMPString is the same identity as in UTF8String")
check(get(jb, alice_key) == (1, [1]), "j\u00fcrgen gets Item Not Found for alice's key")


def refused(name, what):
    try:
        c = kt.Conn(port, d, name)
        status = get(c, alice_key)
    except (ssl.SSLError, ConnectionError, OSError, AssertionError, TypeError, IndexError):
        print("ok: refused: " + what)
        return
    raise SystemExit("FAIL: not refused: %s (Get of alice's key answered %r)" % (what, status))


refused("nul", "CN 'alice\\0x' (embedded NUL)")
refused("two", "two CNs, alice and bob")
refused("empty", "empty CN")
refused("newline", "CN 'alice\\n' (control character)")
refused("c1", "CN 'alice\\u0085' (C1 control character)")
refused("bmpnul", "BMPString CN 'alice\\0'")
refused("long", "CN of 300 characters (cut short, two such names could collide)")
check(get(alice, alice_key)[0] == 0, "alice still served, her key intact")

# Every refusal is audited, by the refused certificate's fingerprint.
lines = [json.loads(l) for l in open(os.path.join(d, "audit.log"))]
for name, fp in refused_fps.items():
    ls = [l for l in lines if l["client_sha256"] == fp]
    check(len(ls) == 1 and ls[0]["operation"].startswith("(certificate refused: ") and ls[0]["result"] == "failed"
          and ls[0]["client"] == "", "refusal of %s audited: %s" % (name, ls[0]["operation"] if ls else None))
print("ok: identities from certificates")
