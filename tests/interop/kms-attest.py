#!/usr/bin/python3
"""A client that cannot attest (PyKMIP) against vmcrypt-kms with attestation:
keys without x-vmcrypt-Require-Attestation work as ever; Decrypt and Get of a KEK
that requires it are refused with a reason.
Usage: kms-attest.py PKI_DIR CN PORT KEK_UID"""
import sys
import warnings

warnings.filterwarnings("ignore")
from kmip import enums  # noqa: E402
from kmip.pie.client import ProxyKmipClient  # noqa: E402

pki, cn, port, kek = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
c = ProxyKmipClient(hostname="127.0.0.1", port=port, cert="%s/client-%s.crt" % (pki, cn),
                    key="%s/client-%s.key" % (pki, cn), ca="%s/ca.crt" % pki, config_file="/dev/null")
with c:
    uid = c.create(enums.CryptographicAlgorithm.AES, 256)
    c.activate(uid)
    key = c.get(uid)
    assert len(key.value) == 32, "plain key not returned"
    ct, iv = c.encrypt(b"sixteen byte msg", uid=uid, cryptographic_parameters={
        "block_cipher_mode": enums.BlockCipherMode.CBC, "padding_method": enums.PaddingMethod.PKCS5,
        "cryptographic_algorithm": enums.CryptographicAlgorithm.AES}, iv_counter_nonce=b"\0" * 16)
    for what, call in (("Get", lambda: c.get(kek)),
                       ("Decrypt", lambda: c.decrypt(b"\0" * 32, uid=kek, cryptographic_parameters={
                           "block_cipher_mode": enums.BlockCipherMode.GCM,
                           "cryptographic_algorithm": enums.CryptographicAlgorithm.AES, "tag_length": 16},
                           iv_counter_nonce=b"\0" * 12))):
        try:
            call()
        except Exception as e:
            if "attest" not in str(e):
                sys.exit("FAIL: %s of the KEK refused without saying why: %s" % (what, e))
            continue
        sys.exit("FAIL: %s of a KEK that requires attestation succeeded for PyKMIP" % what)
print("ok")
