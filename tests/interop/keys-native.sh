#!/usr/bin/env bash
# The native key provider (no external KMS): vmcrypt keeps the primary key itself,
# encrypted at rest, and refuses to be used until a password-protected backup has
# been exported; the backup restores the provider on another host, which then
# unlocks the same disks. Every step goes through the CLI, keys through files and
# pipes only.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/keys-lib.sh"
require_keys_cli

native_providers() { # file state_dir key_file
        cat >"$1" <<JSON
{ "providers": { "local": { "type": "native", "state_dir": "$2", "key_file": "$3" } } }
JSON
}
native_providers "$T/host1.json" "$T/host1/state" "$T/host1/native.key"
native_providers "$T/host2.json" "$T/host2/state" "$T/host2/native.key"
mkdir -p "$T/host1" "$T/host2"
printf 'correct horse battery staple' >"$T/backup-pass"
printf 'wrong horse battery staple' >"$T/wrong-pass"

note "init: primary key encrypted at rest, owner-only files"
expect_rc 0 init vmc provider init --providers "$T/host1.json" local
assert_eq "$(stat -c %a "$T/host1/state")" 700 "state dir mode"
assert_eq "$(stat -c %a "$T/host1/state/primary.json")" 600 "primary.json mode"
assert_eq "$(stat -c %a "$T/host1/native.key")" 600 "key file mode"
expect_rc 5 init-again vmc provider init --providers "$T/host1.json" local
assert_file_contains "$T/init-again.err" "already has a primary key" "second init"

note "the provider refuses to work until a backup exists, and says how"
expect_rc 8 gated vmc disk create --providers "$T/host1.json" --provider local 20M "$T/a.img"
assert_file_contains "$T/gated.err" "not usable until its primary key is backed up.*vmcrypt provider backup local --output FILE" \
        "message of the backup gate"
[ ! -e "$T/a.img" ] || die "disk create made $T/a.img although the provider refused"
expect_rc 0 list vmc provider list --providers "$T/host1.json"
assert_file_contains "$T/list.out" "needs a backup before use" "provider list before the backup"

note "backup: password-protected bundle, never overwritten"
expect_rc 0 backup vmc provider backup --providers "$T/host1.json" --output "$T/backup.json" \
        --passphrase-file "$T/backup-pass" local
assert_eq "$(stat -c %a "$T/backup.json")" 600 "backup mode"
expect_rc 5 backup-again vmc provider backup --providers "$T/host1.json" --output "$T/backup.json" \
        --passphrase-file "$T/backup-pass" local
assert_file_contains "$T/backup-again.err" "never overwritten" "second backup to the same file"
expect_rc 0 list2 vmc provider list --providers "$T/host1.json"
assert_file_contains "$T/list2.out" "ready" "provider list after the backup"

note "a disk bound to the native provider opens in cryptsetup"
expect_rc 0 create vmc disk create --providers "$T/host1.json" --provider local --vm-name n1 20M "$T/a.img"
assert_eq "$(token_field "$T/a.img" method)" rfc5649 "native wrap method"
assert_eq "$(token_field "$T/a.img" provider)" local "provider in the token"
expect_rc 0 cs1 vmc disk unlock --providers "$T/host1.json" "$T/a.img" -- \
        cryptsetup open --test-passphrase --key-file - "$T/a.img"
expect_rc 0 rekey vmc disk rekey --providers "$T/host1.json" "$T/a.img"
expect_rc 0 cs2 vmc disk unlock --providers "$T/host1.json" "$T/a.img" -- \
        cryptsetup open --test-passphrase --key-file - "$T/a.img"

note "a state directory another user can write, or owns, is refused"
chmod 777 "$T/host1/state"
expect_rc 8 state-open vmc disk unlock --providers "$T/host1.json" --check "$T/a.img"
assert_file_contains "$T/state-open.err" "can be written by others.*chmod 700" "a world-writable state directory"
chmod 700 "$T/host1/state"
chown nobody "$T/host1/state"
expect_rc 8 state-foreign vmc disk unlock --providers "$T/host1.json" --check "$T/a.img"
assert_file_contains "$T/state-foreign.err" "belongs to uid" "a state directory of another user"
chown root "$T/host1/state"
expect_rc 0 state-fixed vmc disk unlock --providers "$T/host1.json" --check "$T/a.img"

note "unlock hands over and leaves: the command runs in vmcrypt's place"
# The background job's pid is vmcrypt's; after the exec it is the command itself,
# so no vmcrypt process holds the secret or stays the command's parent.
"$VMCRYPT" disk unlock --providers "$T/host1.json" "$T/a.img" -- \
        sh -c 'cat >"$0.secret"; echo $$ >"$0"; exec sleep 30' "$T/child.pid" &
unlock_pid=$!
track_pid "$unlock_pid"
for _ in $(seq 100); do [ -s "$T/child.pid" ] && break; sleep 0.1; done
[ -s "$T/child.pid" ] || die "the command given to unlock never ran"
assert_eq "$(cat "$T/child.pid")" "$unlock_pid" "the command's pid is the one vmcrypt had (exec, not fork)"
assert_eq "$(basename "$(readlink /proc/"$unlock_pid"/exe)")" sleep "what runs under that pid"
assert_eq "$(wc -c <"$T/child.pid.secret")" 64 "the secret on the pipe, and nothing after it"
pgrep -f "vmcrypt disk unlock.*$T/a.img" >/dev/null && die "a vmcrypt process is still running"
kill "$unlock_pid"
rm -f "$T/child.pid.secret"
expect_rc 2 unlock-hex vmc disk unlock --providers "$T/host1.json" --format hex "$T/a.img" -- cat
assert_file_contains "$T/unlock-hex.err" "already hex text" "hex over a text secret is refused with the reason"

note "key-metadata changes are serialized, and do not wait for a running VM"
# hold_lock START FIFO: an OFD write lock on one byte of a.img, held until the FIFO
# is written to. START 1<<62 is vmcrypt's key-metadata byte; 100 is where QEMU
# locks a running VM's image.
hold_lock() {
        "$PY" - "$T/a.img" "$1" "$2" <<'PY' &
import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDWR)
F_OFD_SETLK = 37
fcntl.fcntl(fd, F_OFD_SETLK, struct.pack("hhqqi", fcntl.F_WRLCK, 0, int(sys.argv[2]), 1, 0))
print("locked", flush=True)
open(sys.argv[3]).read()
PY
        track_pid "$!"
        for _ in $(seq 100); do grep -q locked "$T/held" 2>/dev/null && break; sleep 0.05; done
}
mkfifo "$T/release"
hold_lock $((1 << 62)) "$T/release" >"$T/held"
snap=$(snapshot "$T/a.img")
expect_rc 5 rekey-busy vmc disk rekey --providers "$T/host1.json" "$T/a.img"
assert_file_contains "$T/rekey-busy.err" "being changed by another vmcrypt command.*wait for it" "rekey while another change runs"
expect_rc 5 recovery-busy vmc disk recovery-key add --providers "$T/host1.json" "$T/a.img"
expect_rc 5 encrypt-busy vmc disk decrypt --providers "$T/host1.json" --progress none "$T/a.img"
assert_unchanged "$T/a.img" "$snap" "disk while another vmcrypt change held it"
echo >"$T/release"; wait "$!"
hold_lock 100 "$T/release" >"$T/held"
expect_rc 0 rekey-vm-running vmc disk rekey --providers "$T/host1.json" "$T/a.img"
echo >"$T/release"; wait "$!"
expect_rc 0 cs3 vmc disk unlock --providers "$T/host1.json" "$T/a.img" -- \
        cryptsetup open --test-passphrase --key-file - "$T/a.img"

note "another host: nothing until the backup is restored; a wrong passphrase is refused"
expect_rc 4 host2-empty vmc disk unlock --providers "$T/host2.json" --check "$T/a.img"
assert_file_contains "$T/host2-empty.err" "vmcrypt provider (init|restore) local" "message on a host without the key"
expect_rc 3 restore-wrong vmc provider restore --providers "$T/host2.json" --input "$T/backup.json" \
        --passphrase-file "$T/wrong-pass" local
assert_file_contains "$T/restore-wrong.err" "passphrase does not open" "restore with the wrong passphrase"
expect_rc 0 restore vmc provider restore --providers "$T/host2.json" --input "$T/backup.json" \
        --passphrase-file "$T/backup-pass" local
expect_rc 0 host2 vmc disk unlock --providers "$T/host2.json" "$T/a.img" -- \
        cryptsetup open --test-passphrase --key-file - "$T/a.img"

note "a wrong key file does not open the primary key"
openssl rand 32 >"$T/host2/native.key"
expect_rc 3 wrong-keyfile vmc disk unlock --providers "$T/host2.json" --check "$T/a.img"
assert_file_contains "$T/wrong-keyfile.err" "wrong key file" "message for a wrong key file"

note "no plaintext unlock secret in any file"
{ vmc disk unlock --providers "$T/host1.json" "$T/a.img" -- cat; echo; } |
        "$PY" "$KEYS_HERE/keys-kmip.py" none none 0 scan "$T"
keys_done
