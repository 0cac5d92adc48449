#!/usr/bin/env bash
# Bad input to `vmcrypt disk`: each case gives a clear message, the documented exit
# code, and changes nothing (size and sha256 of the image, and of a detached header,
# before and after). A corrupted primary LUKS2 header is the exception: the secondary
# copy is used and the command works.
#
# Runs in its own mount namespace so the small tmpfs for the no-space case vanishes
# with the test whatever happens.
if [ -z "${VMCRYPT_IN_MNTNS:-}" ]; then
        [ "$(id -u)" = 0 ] || { echo "FAIL: $0 needs root (a tmpfs for the no-space case)" >&2; exit 1; }
        command -v unshare >/dev/null || { echo "FAIL: unshare is missing: run scripts/deps.sh" >&2; exit 1; }
        VMCRYPT_IN_MNTNS=1 exec unshare --mount --propagation private "$0" "$@"
fi
. "$(dirname "$0")/../lib.sh"
require_vmcrypt
require_testpoints
require_cmd cryptsetup qemu-io openssl numfmt

SIZE=$((40 << 20))
make_random_image "$T/orig" "$SIZE"
ORIG_SHA=$(sha256_range "$T/orig")

# expect_fail RC NAME REGEX FILE... -- cmd...: the command exits with RC, says something
# matching REGEX (case-insensitive) on stderr, and leaves every FILE as it was.
expect_fail() {
        local want=$1 name=$2 re=$3 files=() snaps=() f i
        shift 3
        while [ "$1" != -- ]; do files+=("$1"); shift; done
        shift
        for f in "${files[@]}"; do snaps+=("$(snapshot "$f")"); done
        expect_rc "$want" "$name" "$@"
        [ -s "$T/$name.err" ] || die "$name: exit $want but no message on stderr"
        grep -qiE -- "$re" "$T/$name.err" || die "$name: unclear message (want /$re/): $(cat "$T/$name.err")"
        for i in "${!files[@]}"; do assert_unchanged "${files[$i]}" "${snaps[$i]}" "$name"; done
        echo "ok $name: $(head -n 1 "$T/$name.err")"
}

# An encrypted image (header in front) and a detached one, with their key files.
cp "$T/orig" "$T/e"
expect_rc 0 setup-e vmc disk encrypt --new-key-file "$T/e.key" --progress none "$T/e"
cp "$T/orig" "$T/d"
expect_rc 0 setup-d vmc disk encrypt --header "$T/d.hdr" --new-key-file "$T/d.key" --progress none "$T/d"
make_text_key "$T/wrong.key"

note "wrong key"
expect_fail 3 wrong-key-decrypt 'key|passphrase' "$T/e" -- \
        vmc disk decrypt --key-file "$T/wrong.key" --progress none "$T/e"
expect_fail 3 wrong-key-reencrypt 'key|passphrase' "$T/e" -- \
        vmc disk reencrypt --key-file "$T/wrong.key" --progress none "$T/e"
expect_fail 3 wrong-key-detached 'key|passphrase' "$T/d" "$T/d.hdr" -- \
        vmc disk decrypt --header "$T/d.hdr" --key-file "$T/wrong.key" --progress none "$T/d"
expect_fail 3 wrong-key-stdin 'key|passphrase' "$T/e" -- \
        vmc disk decrypt --key-file - --progress none "$T/e" <"$T/wrong.key"

note "missing image or key file"
expect_fail 4 missing-image 'no such|not found|does not exist' -- \
        vmc disk encrypt --new-key-file "$T/x.key" --progress none "$T/nonexistent"
[ ! -e "$T/x.key" ] || die "missing-image: a key file was left behind for an image that does not exist"
expect_fail 4 missing-key-file 'no such|not found|does not exist' "$T/e" -- \
        vmc disk decrypt --key-file "$T/nonexistent.key" --progress none "$T/e"

note "image already encrypted"
expect_fail 5 already-encrypted 'already' "$T/e" "$T/e.key" -- \
        vmc disk encrypt --key-file "$T/e.key" --progress none "$T/e"
expect_fail 5 already-encrypted-new-key 'already' "$T/e" -- \
        vmc disk encrypt --new-key-file "$T/e2.key" --progress none "$T/e"
expect_fail 5 already-encrypted-luks1 'already' "$T/e" -- \
        vmc disk encrypt --type luks1 --new-key-file "$T/e3.key" --progress none "$T/e"

note "image size not a multiple of 512 (or of the sector size)"
cp "$T/orig" "$T/odd"
head -c 100 /dev/urandom >>"$T/odd"
expect_fail 2 odd-size '512|multiple|sector' "$T/odd" -- \
        vmc disk encrypt --new-key-file "$T/odd.key" --progress none "$T/odd"
cp "$T/orig" "$T/odd4k"
head -c 512 /dev/urandom >>"$T/odd4k"
expect_fail 2 odd-size-4096 '4096|multiple|sector' "$T/odd4k" -- \
        vmc disk encrypt --sector-size 4096 --new-key-file "$T/odd4k.key" --progress none "$T/odd4k"

note "truncated image (data area missing)"
cp "$T/e" "$T/trunc"
truncate -s $((8 << 20)) "$T/trunc"
expect_fail 9 truncated 'truncat|too small|too short|smaller' "$T/trunc" -- \
        vmc disk decrypt --key-file "$T/e.key" --progress none "$T/trunc"
expect_fail 9 truncated-reencrypt 'truncat|too small|too short|smaller' "$T/trunc" -- \
        vmc disk reencrypt --key-file "$T/e.key" --progress none "$T/trunc"

note "primary LUKS2 header corrupted: the secondary copy is used"
for how in json magic; do
        cp "$T/e" "$T/p1"
        if [ $how = json ]; then # bad checksum: bytes in the primary JSON area
                dd if=/dev/urandom of="$T/p1" bs=1 seek=5000 count=64 conv=notrunc status=none
        else # no magic at all
                dd if=/dev/zero of="$T/p1" bs=4096 count=1 conv=notrunc status=none
        fi
        assert_state "$T/p1" "" encrypted
        expect_rc 0 primary-$how vmc disk decrypt --key-file "$T/e.key" --progress none "$T/p1"
        assert_eq "$(file_size "$T/p1")" "$SIZE" "size after decrypting with a corrupt primary header ($how)"
        assert_eq "$(sha256_range "$T/p1")" "$ORIG_SHA" "content after decrypting with a corrupt primary header ($how)"
        echo "ok primary-$how: decrypted from the secondary header"
done

note "both LUKS2 headers corrupted"
cp "$T/e" "$T/p2"
dd if=/dev/urandom of="$T/p2" bs=1 seek=5000 count=64 conv=notrunc status=none
dd if=/dev/urandom of="$T/p2" bs=1 seek=$((16384 + 5000)) count=64 conv=notrunc status=none
expect_fail 9 both-headers 'header|corrupt|damaged' "$T/p2" -- \
        vmc disk decrypt --key-file "$T/e.key" --progress none "$T/p2"
expect_fail 9 both-headers-status 'header|corrupt|damaged' "$T/p2" -- \
        vmc disk status --json "$T/p2"
# It must not pass for a plain image and be encrypted a second time.
expect_fail 5 both-headers-encrypt 'already|LUKS' "$T/p2" -- \
        vmc disk encrypt --new-key-file "$T/p2.key" --progress none "$T/p2"

note "image in use: an OFD lock held by another process"
cp "$T/orig" "$T/locked"
"$PY" - "$T/locked" "$T/locked.ready" <<'EOF' &
# Holds a whole-file OFD write lock (the kind QEMU uses) until killed.
import fcntl, os, struct, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
open(sys.argv[2], "w").close()
time.sleep(600)
EOF
track_pid $!
for _ in $(seq 50); do [ -e "$T/locked.ready" ] && break; sleep 0.1; done
[ -e "$T/locked.ready" ] || die "the lock holder did not start"
expect_fail 5 in-use-ofd 'in use|busy|lock' "$T/locked" -- \
        vmc disk encrypt --new-key-file "$T/locked.key" --progress none "$T/locked"

note "image in use: qemu-io has it open"
cp "$T/e" "$T/q"
mkfifo "$T/q.fifo"
qemu-io -f raw "$T/q" <"$T/q.fifo" >/dev/null 2>&1 &
track_pid $!
exec 9>"$T/q.fifo" # keeps qemu-io waiting for commands
echo "read 0 512" >&9
sleep 1
kill -0 $! 2>/dev/null || die "qemu-io did not stay up"
expect_fail 5 in-use-qemu 'in use|busy|lock' "$T/q" -- \
        vmc disk decrypt --key-file "$T/e.key" --progress none "$T/q"
exec 9>&-

note "a job already in progress"
cp "$T/orig" "$T/j"
rc=0
VMCRYPT_TEST_CRASH_POINT=after-data-write:2 vmc disk encrypt --new-key-file "$T/j.key" \
        --progress none "$T/j" 2>/dev/null || rc=$?
assert_eq "$rc" 137 "encrypt with a crash point (to leave a job behind)"
assert_state "$T/j" "" encrypting
expect_fail 5 job-encrypt-again 'progress|resume' "$T/j" "$T/j.key" -- \
        vmc disk encrypt --key-file "$T/j.key" --progress none "$T/j"
expect_fail 5 job-decrypt 'progress|resume' "$T/j" "$T/j.key" -- \
        vmc disk decrypt --key-file "$T/j.key" --progress none "$T/j"
expect_fail 5 job-reencrypt 'progress|resume' "$T/j" "$T/j.key" -- \
        vmc disk reencrypt --key-file "$T/j.key" --progress none "$T/j"

note "a header file that is a symlink, or another user's"
# A directory other users can write (the VM home of a shared host): another user
# plants an empty file of theirs, or a link to one, where the header will go.
mkdir -m 1777 "$T/shared"
cp "$T/orig" "$T/hs"
install -m 0666 -o nobody /dev/null "$T/shared/victim"
ln -s "$T/shared/victim" "$T/shared/hs.hdr"
expect_fail 8 header-symlink 'symlink' "$T/hs" "$T/shared/victim" -- \
        vmc disk encrypt --header "$T/shared/hs.hdr" --new-key-file "$T/hs1.key" --progress none "$T/hs"
install -m 0666 -o nobody /dev/null "$T/shared/hs2.hdr"
expect_fail 8 header-foreign 'belongs to' "$T/hs" "$T/shared/hs2.hdr" -- \
        vmc disk encrypt --header "$T/shared/hs2.hdr" --new-key-file "$T/hs2.key" --progress none "$T/hs"

note "a job running right now"
cp "$T/orig" "$T/r"
vmc disk encrypt --new-key-file "$T/r.key" --max-rate 8M --progress none "$T/r" 2>"$T/r.err" &
track_pid $!
runner=$!
for _ in $(seq 50); do
        status_json "$T/r"
        [ "$(json_get "$T/status.json" "d['state']")" = encrypting ] && break
        sleep 0.1
done
assert_eq "$(json_get "$T/status.json" "d['state']")" encrypting "state of a running job"
expect_fail 5 running-resume 'in use|busy|lock|running|progress' -- \
        vmc disk resume --key-file "$T/r.key" --progress none "$T/r"
expect_fail 5 running-encrypt 'in use|busy|lock|running|progress' -- \
        vmc disk encrypt --key-file "$T/r.key" --progress none "$T/r"
kill -0 "$runner" 2>/dev/null || die "the running job ended early: $(cat "$T/r.err")"

note "not enough free space (a 48 MiB tmpfs holding a 40 MiB image)"
mkdir "$T/small"
mount -t tmpfs -o size=48m tmpfs "$T/small" || die "cannot mount a tmpfs"
track_mount "$T/small"
cp "$T/orig" "$T/small/img"
# About 8 MiB are free: not enough for the 16 MiB a LUKS2 header in front takes.
expect_fail 6 no-space 'space' "$T/small/img" -- \
        vmc disk encrypt --new-key-file "$T/nospace.key" --progress none "$T/small/img"
# Leave about 1 MiB free: not enough for LUKS1's 2 MiB, nor for a detached header.
head -c $((7 << 20)) /dev/zero >"$T/small/filler"
expect_fail 6 no-space-luks1 'space' "$T/small/img" -- \
        vmc disk encrypt --type luks1 --new-key-file "$T/nospace1.key" --progress none "$T/small/img"
cp "$T/orig" "$T/big"
expect_fail 6 no-space-header 'space' "$T/big" -- \
        vmc disk encrypt --header "$T/small/big.hdr" --new-key-file "$T/nospace2.key" --progress none "$T/big"
[ ! -e "$T/small/big.hdr" ] || die "no-space-header: a partial header file was left behind"
