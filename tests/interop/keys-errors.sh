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
# TLS 1.3 reports the server's refusal only as a dropped connection (exit 7 until
# docs/kmip-requests.md item 1 is done; 8 after); the message must name the cause.
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

note "no plaintext key in any file the test made"
{ vmc disk unlock --providers "$P" "$T/a.img" -- cat; echo; } |
        scan_for_plaintext "$T" "$T/kms" alice "$KMS_PORT" "$kek" "$other_kek"
keys_done
