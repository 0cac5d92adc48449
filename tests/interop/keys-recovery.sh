#!/usr/bin/env bash
# The way back after a KEK is revoked, as an admin walks it: the revoked KEK stops
# the disk; the recovery passphrase, typed at a terminal (a pty) or saved in a file
# with a trailing newline, binds it again; the new binding replaces the dead token,
# so unlocking no longer asks the key server for the revoked KEK; a dead token that
# another token works around is reported by unlock --check and removed by unbind.
# KEKs record the disks that use them: unbind, rekey and decrypt retire a KEK with
# its last disk, keep a shared one, and never retire one that records nothing.
# `vmcrypt kms --provider` reaches the KEKs through providers.json alone.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/keys-lib.sh"
require_keys_cli

kms_vmcrypt_start "$T/kms" alice
P=$T/providers.json
write_providers "$P" kms "$T/kms" alice "127.0.0.1:$KMS_PORT"
# The KEK a disk command printed is revoked through the same providers.json.
kms() { vmc kms "$@" --providers "$P" --provider kms; }
# vmcrypt tokens of IMG: "id:kek" per line.
tokens() {
        cryptsetup luksDump --dump-json-metadata "$1" | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
for t in sorted(d["tokens"], key=int):
    if d["tokens"][t]["type"] == "vmcrypt":
        print(t + ":" + d["tokens"][t]["kek_id"])'
}

make_random_image "$T/a.img" 20M
expect_rc 0 encrypt vmc disk encrypt --providers "$P" --provider kms --progress none "$T/a.img"
kek1=$(token_field "$T/a.img" kek_id)
rec=$(vmc disk recovery-key add --providers "$P" --pbkdf-memory 32768 --iter-time 100 "$T/a.img" 2>"$T/rec.err") ||
        die "recovery-key add failed: $(cat "$T/rec.err")"
printf '%s\n' "$rec" >"$T/recovery.txt" # as an admin saves it: with a newline

note "revoked KEK: the disk stays shut, and the message says the way back"
expect_rc 0 revoke1 kms revoke --reason key-compromise "$kek1"
expect_rc 8 revoked vmc disk unlock --providers "$P" --check "$T/a.img"
assert_file_contains "$T/revoked.err" "revoked.*vmcrypt disk bind" "the refusal names the way back"

note "bind with the recovery passphrase from a file that ends with a newline"
expect_rc 0 bind-file vmc disk bind --providers "$P" --provider kms --key-file "$T/recovery.txt" "$T/a.img"
assert_file_contains "$T/bind-file.err" "without its trailing newline" "the newline rule is applied and said"
assert_file_contains "$T/bind-file.err" "removed token" "the dead token goes"
assert_eq "$(tokens "$T/a.img" | wc -l)" 1 "tokens after the rebind (the dead one replaced)"
expect_rc 0 check1 vmc disk unlock --providers "$P" --check "$T/a.img"
[ ! -s "$T/check1.err" ] || die "unlock after the rebind still says something: $(cat "$T/check1.err")"
cs_can_open "$T/a.img" "$T/recovery.txt" && die "cryptsetup took the passphrase with its newline: the test is void"
printf '%s' "$rec" >"$T/recovery.raw"
cs_can_open "$T/a.img" "$T/recovery.raw" || die "the recovery passphrase no longer opens the disk"

note "bind from a terminal: the passphrase typed at the prompt"
kek2=$(tokens "$T/a.img" | cut -d: -f2)
expect_rc 0 revoke2 kms revoke --reason key-compromise "$kek2"
"$PY" - "$VMCRYPT" "$P" "$T/a.img" "$T/recovery.raw" >"$T/pty.out" 2>&1 <<'PYEOF' || die "bind on a terminal failed: $(cat "$T/pty.out")"
import os, pty, sys, time
vmcrypt, providers, img, passfile = sys.argv[1:5]
passphrase = open(passfile).read()
pid, fd = pty.fork()
if pid == 0:
    os.execv(vmcrypt, [vmcrypt, "disk", "bind", "--providers", providers, "--provider", "kms", img])
out = b""
deadline = time.time() + 60
sent = False
while time.time() < deadline:
    try:
        chunk = os.read(fd, 1024)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
    if not sent and b"passphrase" in out.lower():
        os.write(fd, passphrase.encode() + b"\n")
        sent = True
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.exit(0 if sent and os.waitstatus_to_exitcode(status) == 0 else 1)
PYEOF
assert_file_contains "$T/pty.out" "bound to key provider" "bind on a terminal"
assert_eq "$(tokens "$T/a.img" | wc -l)" 1 "tokens after the second rebind"
expect_rc 0 check2 vmc disk unlock --providers "$P" --check "$T/a.img"

note "a dead token behind a working one: unlock --check reports it, unbind removes it"
expect_rc 0 bind-second vmc disk bind --providers "$P" --provider kms --key-file "$T/recovery.raw" "$T/a.img"
first=$(tokens "$T/a.img" | sed -n 1p)
expect_rc 0 revoke3 kms revoke --reason key-compromise "${first#*:}"
expect_rc 0 check3 vmc disk unlock --providers "$P" --check "$T/a.img"
assert_file_contains "$T/check3.err" "token ${first%%:*} is dead.*revoked.*vmcrypt disk unbind --token ${first%%:*}" \
        "unlock --check names the dead token and the fix"
expect_rc 0 unbind vmc disk unbind --providers "$P" --token "${first%%:*}" "$T/a.img"
assert_eq "$(tokens "$T/a.img" | wc -l)" 1 "tokens after unbind"
expect_rc 0 check4 vmc disk unlock --providers "$P" --check "$T/a.img"
[ ! -s "$T/check4.err" ] || die "unlock after unbind still warns: $(cat "$T/check4.err")"
last=$(tokens "$T/a.img" | sed -n 1p)
# The recovery keyslot stays, so even the last token can go; the last keyslot can't.
expect_rc 0 unbind-last vmc disk unbind --providers "$P" --token "${last%%:*}" "$T/a.img"
# The unbound token's KEK was made for this disk and no other uses it: retired.
assert_file_contains "$T/unbind-last.err" "KEK ${last#*:} .*retired" "unbind retires the KEK nothing else uses"
expect_rc 0 last-gone kms attrs "${last#*:}"
assert_file_contains "$T/last-gone.out" "State: Destroyed" "the retired KEK is destroyed"

note "provider keks: the disks each KEK records, on the key server"
make_random_image "$T/b.img" 8M
make_random_image "$T/c.img" 8M
expect_rc 0 encrypt-b vmc disk encrypt --providers "$P" --provider kms --vm-name vm-b --progress none "$T/b.img"
kb=$(token_field "$T/b.img" kek_id)
# c shares b's KEK, as the disks of one VM do.
expect_rc 0 encrypt-c vmc disk encrypt --providers "$P" --provider kms --kek "$kb" --progress none "$T/c.img"
expect_rc 0 keks vmc provider keks --providers "$P" kms "$T/b.img"
assert_file_contains "$T/keks.out" "^$kb +Active +2 +1 +vm-b" "b's KEK: two disks recorded, one of the given images"
assert_file_contains "$T/keks.out" "used by: .*:$T/b.img.*|used by: .*:$T/c.img" "the records say where the disks are"

note "rekey and decrypt retire a KEK only with its last disk"
expect_rc 0 rekey-b vmc disk rekey --providers "$P" "$T/b.img"
assert_file_contains "$T/rekey-b.err" "KEK $kb .*stays: 1 other disk" "rekey keeps a KEK another disk uses"
expect_rc 0 kb-alive kms attrs "$kb"
assert_file_contains "$T/kb-alive.out" "State.*Active" "the shared KEK stays active"
expect_rc 0 c-opens vmc disk unlock --providers "$P" --check "$T/c.img"
kb2=$(token_field "$T/b.img" kek_id)
expect_rc 0 decrypt-c vmc disk decrypt --providers "$P" --progress none "$T/c.img"
assert_file_contains "$T/decrypt-c.err" "KEK $kb .*retired" "decrypting the last disk retires the KEK"
expect_rc 0 kb-gone kms attrs "$kb"
assert_file_contains "$T/kb-gone.out" "State: Destroyed" "the retired KEK is destroyed"
expect_rc 0 b-still vmc disk unlock --providers "$P" --check "$T/b.img"

note "a copy of an image (same UUID) cannot retire the KEK of the original"
cp "$T/b.img" "$T/b-copy.img"
expect_rc 0 decrypt-copy vmc disk decrypt --providers "$P" --progress none "$T/b-copy.img"
assert_file_contains "$T/decrypt-copy.err" "KEK $kb2 .*stays: 1 disk.*this volume at .*:$T/b.img" \
        "decrypting a copy keeps the KEK and names the original"
expect_rc 0 b-after-copy vmc disk unlock --providers "$P" --check "$T/b.img"

note "a KEK that records no disks (made by an older vmcrypt) is never retired behind an admin's back"
raw=$(kms create --name vmcrypt-kek-before-tracking --activate --usage encrypt,decrypt,wrap,unwrap 2>"$T/raw.err") || die "kms create: $(cat "$T/raw.err")"
make_random_image "$T/d.img" 8M
expect_rc 0 encrypt-d vmc disk encrypt --providers "$P" --provider kms --kek "$raw" --progress none "$T/d.img"
expect_rc 0 rekey-d vmc disk rekey --providers "$P" "$T/d.img"
assert_file_contains "$T/rekey-d.err" "KEK $raw .*does not record which disks use it.*provider keks --orphans" \
        "rekey says why an untracked KEK stays"
expect_rc 0 raw-alive kms attrs "$raw"
assert_file_contains "$T/raw-alive.out" "State.*Active" "the untracked KEK stays active"
expect_rc 0 orphans vmc provider keks --orphans --providers "$P" kms "$T/a.img" "$T/b.img" "$T/d.img"
assert_file_contains "$T/orphans.out" "^$raw +Active +- +0 " "the untracked KEK no image uses is an orphan"
grep -q "^$kb2 " "$T/orphans.out" && die "the KEK in use is listed as an orphan"
expect_rc 0 orphans-noimg vmc provider keks --orphans --providers "$P" kms
grep -q "^$raw " "$T/orphans-noimg.out" && die "an untracked KEK was judged without disk images"
assert_file_contains "$T/orphans-noimg.err" "record no disks: give the disk images" "says why it was not judged"
keys_done
