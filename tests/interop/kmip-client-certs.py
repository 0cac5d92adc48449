#!/usr/bin/python3
"""Make the certificates for the KMIP client interop test in DIR:
ca.crt/ca.key (the test CA), server.crt/.key (SAN IP:127.0.0.1, serverAuth),
client.crt/.key (CN=client1, clientAuth), expired.crt/.key (the same CA, valid only in
2001), other-ca.crt (an unrelated CA) and stranger.crt/.key (a client cert from it)."""
import datetime
import ipaddress
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

out = sys.argv[1]
now = datetime.datetime.utcnow()


def key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def save(name, cert, k):
    with open(f"{out}/{name}.crt", "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(f"{out}/{name}.key", "wb") as f:
        f.write(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()))


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn):
    k = key()
    c = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name(cn))
         .public_key(k.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1))
         .not_valid_after(now + datetime.timedelta(days=30))
         .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
         .sign(k, hashes.SHA256()))
    return c, k


def make_leaf(cn, ca, ca_key, usage, start, end, san=None):
    k = key()
    b = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(ca.subject)
         .public_key(k.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(start).not_valid_after(end)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
    if san:
        b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return b.sign(ca_key, hashes.SHA256()), k


ca, ca_key = make_ca("vmcrypt test CA")
save("ca", ca, ca_key)
day = datetime.timedelta(days=1)
save("server", *make_leaf("127.0.0.1", ca, ca_key, ExtendedKeyUsageOID.SERVER_AUTH, now - day, now + 30 * day,
                          [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]))
save("client", *make_leaf("client1", ca, ca_key, ExtendedKeyUsageOID.CLIENT_AUTH, now - day, now + 30 * day))
save("expired", *make_leaf("client1", ca, ca_key, ExtendedKeyUsageOID.CLIENT_AUTH,
                           datetime.datetime(2001, 1, 1), datetime.datetime(2002, 1, 1)))
other, other_key = make_ca("some other CA")
save("other-ca", other, other_key)
save("stranger", *make_leaf("client1", other, other_key, ExtendedKeyUsageOID.CLIENT_AUTH, now - day, now + 30 * day))
