#!/usr/bin/python3
"""PyKMIP's ProxyKmipClient against vmcrypt-kms: the symmetric-key lifecycle and
Encrypt/Decrypt at one KMIP version. Usage: kms-pykmip.py PORT DIR CLIENT VERSION"""
import sys

from kmip.core import enums
from kmip.pie import client as pie_client
from kmip.pie import objects
from kmip.pie.exceptions import KmipOperationFailure

port, d, cn, ver = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
versions = {"1.1": enums.KMIPVersion.KMIP_1_1, "1.2": enums.KMIPVersion.KMIP_1_2,
            "1.4": enums.KMIPVersion.KMIP_1_4, "2.0": enums.KMIPVersion.KMIP_2_0}


def check(cond, what):
    if not cond:
        raise SystemExit("FAIL (%s): %s" % (ver, what))


c = pie_client.ProxyKmipClient(hostname="127.0.0.1", port=port,
                               cert="%s/client-%s.crt" % (d, cn), key="%s/client-%s.key" % (d, cn),
                               ca="%s/ca.crt" % d, kmip_version=versions[ver])
with c:
    name = "pykmip-%s" % ver
    uid = c.create(enums.CryptographicAlgorithm.AES, 256, name=name,
                   cryptographic_usage_mask=[enums.CryptographicUsageMask.ENCRYPT,
                                             enums.CryptographicUsageMask.DECRYPT])
    check(isinstance(uid, str) and len(uid) == 36, "create returns a UUID")
    key = c.get(uid)
    check(isinstance(key, objects.SymmetricKey), "get returns a symmetric key")
    check(len(key.value) == 32, "key is 32 bytes")
    check(key.cryptographic_algorithm == enums.CryptographicAlgorithm.AES, "algorithm AES")
    check(c.get(uid).value == key.value, "second get returns the same bytes")

    attrs = c.get_attributes(uid, ["State", "Cryptographic Length", "Name"])
    got = {a.attribute_name.value: a.attribute_value for a in attrs[1]}
    check(attrs[0] == uid, "get_attributes echoes the uid")
    check(got["State"].value == enums.State.PRE_ACTIVE, "new key is Pre-Active")
    check(got["Cryptographic Length"].value == 256, "length 256")

    c.activate(uid)
    attrs = c.get_attributes(uid, ["State"])
    check(attrs[1][0].attribute_value.value == enums.State.ACTIVE, "activate makes it Active")

    found = c.locate(attributes=[
        objects.ObjectFactory if False else
        __import__("kmip.core.factories.attributes", fromlist=["AttributeFactory"]).AttributeFactory()
        .create_attribute(enums.AttributeType.NAME, name)])
    check(found == [uid], "locate by name finds exactly the key (got %r)" % (found,))

    names = c.get_attribute_list(uid)
    check("State" in names and "Cryptographic Algorithm" in names, "attribute list has State and Algorithm")

    # Encrypt / decrypt with the key on the server.
    data = b"sixteen byte msg" * 3
    ct, iv = c.encrypt(data, uid=uid, cryptographic_parameters={
        "cryptographic_algorithm": enums.CryptographicAlgorithm.AES,
        "block_cipher_mode": enums.BlockCipherMode.CBC,
        "padding_method": enums.PaddingMethod.PKCS5}, iv_counter_nonce=b"\x01" * 16)
    check(ct != data and len(ct) == 64, "CBC ciphertext differs and is padded")
    pt = c.decrypt(ct, uid=uid, cryptographic_parameters={
        "cryptographic_algorithm": enums.CryptographicAlgorithm.AES,
        "block_cipher_mode": enums.BlockCipherMode.CBC,
        "padding_method": enums.PaddingMethod.PKCS5}, iv_counter_nonce=b"\x01" * 16)
    check(pt == data, "CBC decrypt returns the plaintext")
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives import padding
    p = padding.PKCS7(128).padder()
    e = Cipher(algorithms.AES(key.value), modes.CBC(b"\x01" * 16)).encryptor()
    check(e.update(p.update(data) + p.finalize()) + e.finalize() == ct, "CBC matches an independent AES")

    # Destroy of an Active key fails until it is revoked.
    try:
        c.destroy(uid)
        check(False, "destroy of an Active key must fail")
    except KmipOperationFailure:
        pass
    c.revoke(enums.RevocationReasonCode.KEY_COMPROMISE, uid, revocation_message="test",
             compromise_occurrence_date=1700000000)
    attrs = c.get_attributes(uid, ["State"])
    check(attrs[1][0].attribute_value.value == enums.State.COMPROMISED, "revoke(key compromise) -> Compromised")
    c.destroy(uid)
    try:
        c.get(uid)
        check(False, "get after destroy must fail")
    except KmipOperationFailure as e:
        check(e.reason in (enums.ResultReason.ITEM_NOT_FOUND, enums.ResultReason.OBJECT_DESTROYED),
              "get after destroy: Item Not Found (got %s)" % e.reason)

    # Register a secret and read it back.
    sd = objects.SecretData(b"\x42" * 32, enums.SecretDataType.SEED)
    sid = c.register(sd)
    check(c.get(sid).value == b"\x42" * 32, "registered secret data round-trips")
    rk = objects.SymmetricKey(enums.CryptographicAlgorithm.AES, 128, b"\x07" * 16)
    rid = c.register(rk)
    check(c.get(rid).value == b"\x07" * 16, "registered key round-trips")
print("ok %s" % ver)
