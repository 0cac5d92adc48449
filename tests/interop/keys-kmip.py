#!/usr/bin/python3
"""KMS-side helper for the key provider tests, through PyKMIP's client (works with
PyKMIP's server and vmcrypt-kms alike).
Usage: keys-kmip.py PKI_DIR CN PORT revoke|destroy|state|attrs|get-refused UID
       keys-kmip.py PKI_DIR CN PORT scan DIR [--exclude FILE]... UID...   (unlock secrets on stdin)
get-refused fails unless the server refuses to Get UID because it is not extractable.
scan fails (exit 1) when an unlock secret (stdin, one per line) or the key material
of a KEK UID appears in any file under DIR, raw, as hex or as base64; the secrets
never leave this process. A KEK the server will not hand out (not extractable) never
left it: there is nothing of it to look for."""
import base64
import datetime
import os
import sys
import warnings

warnings.filterwarnings("ignore")
from kmip import enums  # noqa: E402
from kmip.pie.client import ProxyKmipClient  # noqa: E402

pki, cn, port, action = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]


def client():
    c = ProxyKmipClient(hostname="127.0.0.1", port=port, cert="%s/client-%s.crt" % (pki, cn),
                        key="%s/client-%s.key" % (pki, cn), ca="%s/ca.crt" % pki,
                        config_file="/dev/null")
    return c


def get_or_none(c, u):
    """The key material of u, or None when the server refuses it as not extractable."""
    try:
        return c.get(u).value
    except Exception as e:
        if "not extractable" in str(e):
            return None
        raise


def forms(b):
    out = [b, b.hex().encode(), b.hex().upper().encode(), base64.b64encode(b)]
    return [f for f in out if len(f) >= 16]


if action == "revoke":
    with client() as c:
        c.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, sys.argv[5])
elif action == "destroy":
    with client() as c:
        try:
            c.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, sys.argv[5])
        except Exception:
            pass
        c.destroy(sys.argv[5])
elif action == "state":
    with client() as c:
        a = c.get_attributes(sys.argv[5], ["State"])
        print(a[1][0].attribute_value.value.name)
elif action == "attrs":
    with client() as c:
        for at in c.get_attributes(sys.argv[5])[1]:
            v = at.attribute_value
            print("%s=%s" % (at.attribute_name.value, getattr(v, "value", v)))
elif action == "get-refused":
    with client() as c:
        if get_or_none(c, sys.argv[5]) is not None:
            raise SystemExit("FAIL: Get of KEK %s handed out its key material" % sys.argv[5])
    print("ok: Get of KEK %s refused: not extractable" % sys.argv[5])
elif action == "scan":
    top, rest, excluded = sys.argv[5], sys.argv[6:], set()
    while rest[:1] == ["--exclude"]:
        excluded.add(os.path.realpath(rest[1]))
        rest = rest[2:]
    uids = rest
    needles = []
    for line in sys.stdin.read().split():
        needles += forms(line.encode())      # the secret as it is used (hex text)
        try:
            needles += forms(bytes.fromhex(line))
        except ValueError:
            pass
    if uids and uids != ["-"]:
        with client() as c:
            for u in uids:
                key = get_or_none(c, u)
                if key is None:
                    print("note: KEK %s is not extractable: it never left the KMS" % u)
                else:
                    needles += forms(key)
    if not needles:
        raise SystemExit("FAIL: scan was given nothing to look for")
    n = 0
    for root, _, files in os.walk(top):
        for f in files:
            p = os.path.join(root, f)
            if os.path.islink(p) or not os.path.isfile(p) or os.path.realpath(p) in excluded:
                continue
            with open(p, "rb") as fh:
                data = fh.read()
            n += 1
            for k in needles:
                if k in data:
                    raise SystemExit("FAIL: key material found in %s" % p)
    print("ok: %d files scanned for %d secret forms, none found" % (n, len(needles)))
else:
    raise SystemExit("unknown action " + action)
