#!/usr/bin/env bash
# The errors users hit with KMS-bound disks, each provoked for real against
# vmcrypt-kms: KMS unreachable, failover to the second endpoint, an expired client
# certificate, CAs that do not trust each other, another identity, a KEK that is
# not active, a damaged token, the wrong KEK, a missing configuration. Each must
# give its own exit code and a message naming the cause and the fix, and leave
# the disk exactly as it was.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/keys-lib.sh"
require_keys_cli

kms_vmcrypt_start "$T/kms" alice bob
"$VMCRYPT_KMS" issue-client "$T/kms" old --not-before-days -30 --days 10 >/dev/null
"$VMCRYPT_KMS" init "$T/other" --client mallory --listen 127.0.0.1:0 >/dev/null
P=$T/providers.json
write_providers "$P" kms "$T/kms" alice "127.0.0.1:$KMS_PORT"
dead=$(free_port) # nothing listens here

make_random_image "$T/a.img" 20M
expect_rc 0 create vmc disk encrypt --providers "$P" --provider kms --vm-name err-vm --progress none "$T/a.img"
kek=$(token_field "$T/a.img" kek_id)
snap=$(snapshot "$T/a.img")

# try NAME RC REGEX PROVIDERS: unlock --check must fail with RC and REGEX on stderr,
# and change nothing.
try() {
        local name=$1 rc=$2 re=$3 prov=$4
        expect_rc "$rc" "$name" vmc disk unlock --providers "$prov" --check "$T/a.img"
        assert_file_contains "$T/$name.err" "$re" "message for $name"
        [ "$(wc -l <"$T/$name.err")" -le 2 ] || die "$name: expected one clear message, got: $(cat "$T/$name.err")"
        assert_unchanged "$T/a.img" "$snap" "$name"
        note "$name: $(head -c 300 "$T/$name.err")"
}

write_providers "$T/down.json" kms "$T/kms" alice "127.0.0.1:$dead"
try unreachable 7 "no KMS of provider \"kms\" is reachable.*127\.0\.0\.1:$dead.*check that the KMS is running" "$T/down.json"

write_providers "$T/failover.json" kms "$T/kms" alice "127.0.0.1:$dead,127.0.0.1:$KMS_PORT"
expect_rc 0 failover vmc disk unlock --providers "$T/failover.json" --check "$T/a.img"
note "failover: first endpoint down, second answered"

write_providers "$T/expired.json" kms "$T/kms" old "127.0.0.1:$KMS_PORT"
try expired 8 "expired.*renew the client certificate" "$T/expired.json"

# Our certificate comes from a CA the KMS does not know.
write_providers "$T/foreign.json" kms "$T/other" mallory "127.0.0.1:$KMS_PORT"
sed -i "s|$T/other/ca.crt|$T/kms/ca.crt|" "$T/foreign.json"
# TLS 1.3 reports the server's refusal only after the handshake: the client reads
# the pending alert (exit 8), or sees a dropped connection (7); the message must
# name the cause either way.
expect_rc_any() { # name codes... -- cmd
        local name=$1 rc=0 codes=()
        shift
        while [ "$1" != -- ]; do codes+=("$1"); shift; done
        shift
        "$@" >"$T/$name.out" 2>"$T/$name.err" || rc=$?
        [[ " ${codes[*]} " == *" $rc "* ]] || die "$name: exit code $rc, expected one of ${codes[*]}: $(cat "$T/$name.err")"
}
expect_rc_any untrusted-client 7 8 -- vmc disk unlock --providers "$T/foreign.json" --check "$T/a.img"
assert_file_contains "$T/untrusted-client.err" "(do not trust each other|does not trust our client certificate)" \
        "message for a client certificate from an unknown CA"
assert_unchanged "$T/a.img" "$snap" "untrusted-client"
note "untrusted-client: $(head -c 300 "$T/untrusted-client.err")"
# We do not trust the KMS: wrong CA file on our side.
write_providers "$T/wrongca.json" kms "$T/kms" alice "127.0.0.1:$KMS_PORT"
sed -i "s|$T/kms/ca.crt|$T/other/ca.crt|" "$T/wrongca.json"
try untrusted-server 8 "do not trust each other" "$T/wrongca.json"

# Another identity of the same CA: vmcrypt-kms hides other owners' keys entirely.
write_providers "$T/bob.json" kms "$T/kms" bob "127.0.0.1:$KMS_PORT"
try other-identity 4 "$kek does not exist.*another identity" "$T/bob.json"

# A KEK that was created but never activated cannot wrap a new disk.
pre=$("$PY" - "$T/kms" "$KMS_PORT" <<'PYEOF'
import sys, warnings
warnings.filterwarnings("ignore")
from kmip import enums
from kmip.pie.client import ProxyKmipClient
d, port = sys.argv[1], int(sys.argv[2])
with ProxyKmipClient(hostname="127.0.0.1", port=port, cert=d + "/client-alice.crt", key=d + "/client-alice.key",
                     ca=d + "/ca.crt", config_file="/dev/null") as c:
    print(c.create(enums.CryptographicAlgorithm.AES, 256,
                   cryptographic_usage_mask=[enums.CryptographicUsageMask.ENCRYPT, enums.CryptographicUsageMask.DECRYPT]))
PYEOF
)
make_random_image "$T/b.img" 20M
bsnap=$(snapshot "$T/b.img")
expect_rc 8 preactive vmc disk encrypt --providers "$P" --provider kms --kek "$pre" --progress none "$T/b.img"
assert_file_contains "$T/preactive.err" "KEK $pre .*not active.*activate it" "message for a pre-active KEK"
assert_unchanged "$T/b.img" "$bsnap" "encrypt with a pre-active KEK"
note "pre-active KEK: $(head -c 200 "$T/preactive.err")"

# A KEK vmcrypt made for server-side wrapping is not extractable: forcing RFC 5649
# (which needs KMIP Get) with it fails with a message that says so.
write_providers "$T/rfc.json" kms "$T/kms" alice "127.0.0.1:$KMS_PORT" rfc5649
expect_rc 8 noextract vmc disk encrypt --providers "$T/rfc.json" --provider kms --kek "$kek" --progress none "$T/b.img"
assert_file_contains "$T/noextract.err" "KEK $kek .*not extractable.*kmip-encrypt" "message for a non-extractable KEK"
assert_unchanged "$T/b.img" "$bsnap" "encrypt with a non-extractable KEK in rfc5649 mode"
note "non-extractable KEK: $(head -c 200 "$T/noextract.err")"

# The wrong KEK: the token names another (valid, active) KEK of the same owner.
other_kek=$(vmc provider create-kek --providers "$P" kms)
tok=$(cryptsetup luksDump --dump-json-metadata "$T/a.img" | "$PY" -c '
import json, sys; d = json.load(sys.stdin)
print([i for i, t in d["tokens"].items() if t["type"] == "vmcrypt"][0])')
cryptsetup token export --token-id "$tok" "$T/a.img" >"$T/tok.json"
retoken() { # python expression on t (the token dict)
        "$PY" -c "import json,sys; t=json.load(open(sys.argv[1])); $1; json.dump(t, open(sys.argv[2],'w'))" \
                "$T/tok.json" "$T/tok2.json"
        cryptsetup token remove --token-id "$tok" "$T/a.img"
        cryptsetup token import --token-id "$tok" --json-file "$T/tok2.json" "$T/a.img"
        snap=$(snapshot "$T/a.img")
}
retoken "t['kek_id']='$other_kek'"
try wrong-kek 3 "KEK $other_kek does not unwrap this disk's secret" "$P"

# Damaged tokens: a flipped bit in the wrapped secret, and a token that is not even
# well-formed any more.
retoken "w=t['wrapped']; t['wrapped']=('B' if w[0]!='B' else 'C')+w[1:]"
try altered-token 3 "does not unwrap this disk's secret.*altered" "$P"
retoken "t['wrapped']='***'"
try damaged-token 9 "token $tok of .* is damaged.*recovery passphrase" "$P"
retoken "pass"
expect_rc 0 restored vmc disk unlock --providers "$P" --check "$T/a.img"

# Tokens of earlier versions hold an IV vmcrypt chose itself (the owner may still
# choose one): re-wrap the secret that way, as they did, and it still unlocks.
# The secret goes to the script on the pipe, never into a file (the scan below).
rewrap=$(cat <<'PYEOF'
import base64, importlib.util, json, os, sys
spec = importlib.util.spec_from_file_location("kt", os.path.join(os.environ["VMCRYPT_SRC"], "tests/interop/kms-ttlv.py"))
kt = importlib.util.module_from_spec(spec)
spec.loader.exec_module(kt)
T, OP, item, S, one, find = kt.T, kt.OP, kt.item, kt.S, kt.one, kt.find
port, d, kek, out, secret = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.stdin.buffer.read()
iv = os.urandom(12)
_, b = kt.Conn(port, d, "alice").call([(OP["ENCRYPT"], [
    item(T["UNIQUE_IDENTIFIER"], kt.TEXT, kek), S(T["CRYPTOGRAPHIC_PARAMETERS"], item(T["BLOCK_CIPHER_MODE"], kt.ENUM, 9)),
    item(T["DATA"], kt.BYTES, secret), item(T["IV"], kt.BYTES, iv), item(0x4200FE, kt.BYTES, b"vmcrypt unlock secret v1")], None)])
p = find(b[0], T["RESPONSE_PAYLOAD"])[0]
assert find(p, T["IV"]) == [], "the server replaced the owner's IV"
json.dump({k: base64.b64encode(v).decode() for k, v in
           (("wrapped", one(p, T["DATA"])), ("iv", iv), ("tag", one(p, T["AE_TAG"])))}, open(out, "w"))
PYEOF
)
expect_rc 0 rewrap vmc disk unlock --providers "$P" "$T/a.img" -- "$PY" -c "$rewrap" "$KMS_PORT" "$T/kms" "$kek" \
        "$T/oldwrap.json"
retoken "t.update(json.load(open('$T/oldwrap.json')))"
expect_rc 0 old-iv vmc disk unlock --providers "$P" --check "$T/a.img"

# LUKS1: both copies of the metadata area damaged; a damaged sidecar of an older vmcrypt.
expect_rc 0 create1 vmc disk create --providers "$P" --provider kms --type luks1 8M "$T/q.img"
"$PY" - "$T/q.img" <<'PY'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    off = struct.unpack(">I", f.read(108)[104:108])[0] * 512 - 4096 - 16384
    for at in (off + 200, off + 8192 + 200):
        f.seek(at); b = f.read(1); f.seek(at); f.write(bytes([b[0] ^ 0x55]))
PY
expect_rc 9 area vmc disk unlock --providers "$P" --check "$T/q.img"
assert_file_contains "$T/area.err" "vmcrypt metadata of .*q.img is damaged" "message for a damaged metadata area"
"$KEYS_HERE/luks1-meta.py" wipe "$T/q.img"
printf '{"tokens": {"0": ' >"$T/q.img.vmcrypt.json"
expect_rc 9 sidecar vmc disk unlock --providers "$P" --check "$T/q.img"
assert_file_contains "$T/sidecar.err" "vmcrypt metadata of .*q.img is damaged" "message for a damaged sidecar"

# Configuration mistakes.
try no-config 4 "$T/none.json: No such file.*--providers FILE" "$T/none.json"
printf '{"providers": {"kms": {"type": "kmip", "endpionts": []}}}' >"$T/typo.json"
try config-typo 9 "unknown member \"endpionts\"" "$T/typo.json"
printf '{"providers": {"elsewhere": {"type": "native", "state_dir": "%s/n"}}}' "$T" >"$T/noprov.json"
try unknown-provider 4 "key provider \"kms\" is not in" "$T/noprov.json"
# Not a LUKS volume, and a disk that was never bound.
make_random_image "$T/plain.img" 4M
expect_rc 4 not-luks vmc disk unlock --providers "$P" --check "$T/plain.img"
assert_file_contains "$T/not-luks.err" "is not a LUKS volume" "message for plain data"
openssl rand -hex 16 >"$T/pass"
make_luks "$T/unbound.img" luks2 "$T/pass" 20M
expect_rc 4 unbound vmc disk unlock --providers "$P" --check "$T/unbound.img"
assert_file_contains "$T/unbound.err" "not bound to a key provider.*vmcrypt disk bind" "message for an unbound disk"

note "failed commands leave no KEK behind"
# active_keks: KEKs alice's identity sees Active on the KMS.
active_keks() {
        vmc kms locate --server "127.0.0.1:$KMS_PORT" --cert "$T/kms/client-alice.crt" \
                --key "$T/kms/client-alice.key" --ca "$T/kms/ca.crt" --state active | wc -l
}
before=$(active_keks)
# Encrypt of a disk that is already encrypted: refused before any KEK is made.
expect_rc 5 kek-encrypted vmc disk encrypt --providers "$P" --provider kms --progress none "$T/a.img"
assert_eq "$(active_keks)" "$before" "active KEKs after encrypting an encrypted disk"
# Encrypt of a disk in use (QEMU's lock): the engine refuses after the KEK exists.
make_random_image "$T/busy.img" 4M
exec 9<>"$T/busy.img"
# The OFD lock belongs to the open file description that fd 9 keeps open.
"$PY" -c 'import fcntl, os, struct
fcntl.fcntl(9, fcntl.F_OFD_SETLK, struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))' ||
        die "cannot take an OFD lock for the busy-disk case"
expect_rc 5 kek-busy vmc disk encrypt --providers "$P" --provider kms --progress none "$T/busy.img"
assert_file_contains "$T/kek-busy.err" "revoked and destroyed again" "the message says the KEK went again"
exec 9>&-
assert_eq "$(active_keks)" "$before" "active KEKs after encrypting a disk in use"
# Bind with a wrong passphrase.
make_luks "$T/wrongpass.img" luks2 "$T/pass" 20M
openssl rand -hex 16 >"$T/notpass"
expect_rc 3 kek-bind vmc disk bind --providers "$P" --provider kms --key-file "$T/notpass" "$T/wrongpass.img"
assert_eq "$(active_keks)" "$before" "active KEKs after a bind with the wrong passphrase"

note "no plaintext key in any file the test made"
{ vmc disk unlock --providers "$P" "$T/a.img" -- cat; echo; } |
        scan_for_plaintext "$T" "$T/kms" alice "$KMS_PORT" "$kek" "$other_kek"
keys_done
