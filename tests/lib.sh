# Shared helpers for vmcrypt's shell tests (interop, fault, bench, demo).
# Source it first thing:  . "$(dirname "$0")/../lib.sh"
#
# It gives each script a private temp dir ($T) that is cleaned up on exit together
# with every background process, loop device and mount the script registered; a
# die/assert vocabulary whose failures name what was expected; and helpers for the
# peers (cryptsetup, qemu-img, /usr/bin/python3). A test that cannot run (a peer or
# the vmcrypt binary is missing) FAILS with a message saying what to install; it
# never skips silently.
set -Eeuo pipefail

# /usr/bin/python3 is Debian's: the python3 on PATH may be pyenv and cannot see
# python3-cryptography.
PY=/usr/bin/python3

_lib_pids=()
_lib_loops=()
_lib_mounts=()
T=""

die() {
        trap - ERR # no second message from the ERR trap
        echo "FAIL: $*" >&2
        exit 1
}

note() {
        echo "== $*"
}

_lib_cleanup() {
        local rc=$? p
        set +e
        trap - ERR # killing our background jobs is no failure
        for p in "${_lib_pids[@]}"; do
                kill -KILL "$p" 2>/dev/null
                wait "$p" 2>/dev/null
        done
        for p in "${_lib_mounts[@]}"; do umount -l "$p" 2>/dev/null; done
        for p in "${_lib_loops[@]}"; do losetup -d "$p" 2>/dev/null; done
        if [ -n "$T" ] && [ -z "${KEEP_TMP:-}" ]; then
                rm -rf "$T"
        elif [ -n "$T" ]; then
                echo "kept temp dir $T" >&2
        fi
        if [ $rc -eq 0 ]; then echo "PASS: $(basename "$0")"; fi
        exit $rc
}

# Temp dir on the work disk (not a tmpfs), so file sizes and I/O are real.
# ${TEST_TMPDIR:-/var/tmp} can point elsewhere.
T=$(mktemp -d "${TEST_TMPDIR:-/var/tmp}/vmcrypt-test.XXXXXX")
trap _lib_cleanup EXIT
# Where vmcrypt records detached-header jobs: the test's own, not the host's.
export VMCRYPT_STATE_DIR=$T/state
# A failing command that no assertion wraps still says where it failed.
trap '_rc=$?; echo "FAIL: $(basename "$0") line $LINENO: $BASH_COMMAND (exit $_rc)" >&2' ERR
trap 'exit 130' INT TERM

# Register resources for cleanup.
track_pid() { _lib_pids+=("$1"); }
track_loop() { _lib_loops+=("$1"); }
track_mount() { _lib_mounts+=("$1"); }

require_cmd() {
        local c
        for c in "$@"; do
                command -v "$c" >/dev/null 2>&1 ||
                        die "required program '$c' is missing: run scripts/deps.sh"
        done
}

require_python_cryptography() {
        [ -x "$PY" ] || die "$PY is missing: run scripts/deps.sh"
        "$PY" -c 'import cryptography' 2>/dev/null ||
                die "$PY cannot import cryptography: run scripts/deps.sh (python3-cryptography)"
}

# The CLI under test: $VMCRYPT (set by meson), else the build named by $VMCRYPT_BUILD,
# else build/. Fails if it is missing or has no 'disk' command group yet.
require_vmcrypt() {
        if [ -z "${VMCRYPT:-}" ]; then
                local here
                here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
                VMCRYPT=${VMCRYPT_BUILD:-$here/build}/src/cli/vmcrypt
        fi
        [ -x "$VMCRYPT" ] || die "vmcrypt binary not found at $VMCRYPT: build it (meson setup build && ninja -C build)"
        "$VMCRYPT" disk --help >/dev/null 2>&1 ||
                die "'$VMCRYPT disk' is not available: this build has no disk commands"
        export VMCRYPT
}

vmc() { "$VMCRYPT" "$@"; }

# Tests that kill or fail the engine at named points need the hooks compiled in
# (meson -Dtestpoints=true, which scripts/test.sh sets; meson tells us).
require_testpoints() {
        [ "${VMCRYPT_TESTPOINTS:-1}" = 1 ] ||
                die "this test needs a build configured with -Dtestpoints=true (scripts/test.sh does that)"
}

# Options that make Argon2id cheap for tests that need a non-random key.
FAST_KDF=(--pbkdf-memory 32768 --iter-time 100)

# ---- assertions -------------------------------------------------------------

assert_eq() { # actual expected message
        [ "$1" = "$2" ] || die "$3: got '$1', expected '$2'"
}

assert_ne() { # actual unexpected message
        [ "$1" != "$2" ] || die "$3: got '$1' (must differ)"
}

assert_file_contains() { # file regex message
        grep -Eq -- "$2" "$1" || die "$3: '$2' not found in: $(head -c 2000 "$1")"
}

# expect_rc N NAME cmd...: runs cmd with stdout/stderr saved to $T/NAME.out/.err and
# asserts its exit code is N. The output stays there for further checks.
expect_rc() {
        local want=$1 name=$2 rc=0
        shift 2
        "$@" >"$T/$name.out" 2>"$T/$name.err" || rc=$?
        if [ "$rc" != "$want" ]; then
                echo "--- stdout of $name:" >&2; head -c 3000 "$T/$name.out" >&2
                echo "--- stderr of $name:" >&2; head -c 3000 "$T/$name.err" >&2
                die "$name: exit code $rc, expected $want (command: $*)"
        fi
}

# ---- images -----------------------------------------------------------------

file_size() { stat -c %s "$1"; }

# sha256 of FILE, or of LEN bytes from OFFSET (bytes).
sha256_range() { # file [offset [len]]
        local f=$1 off=${2:-0} len=${3:-}
        if [ -z "$len" ]; then
                dd if="$f" bs=1M iflag=skip_bytes skip="$off" status=none | sha256sum | cut -d' ' -f1
        else
                dd if="$f" bs=1M iflag=skip_bytes,count_bytes skip="$off" count="$len" status=none |
                        sha256sum | cut -d' ' -f1
        fi
}

# "size sha256" of a file: what bad-input tests compare before and after.
snapshot() { echo "$(file_size "$1") $(sha256_range "$1")"; }

assert_unchanged() { # file snapshot message
        local now
        now=$(snapshot "$1")
        [ "$now" = "$2" ] || die "$3: $1 changed (before: $2, after: $now)"
}

# make_random_image FILE SIZE: SIZE in bytes or with a K/M/G suffix. The bytes come
# from AES-CTR under a random key (much faster than /dev/urandom, still incompressible).
make_random_image() {
        local f=$1 size=$2 bytes
        bytes=$(numfmt --from=iec "$size")
        # openssl dies of SIGPIPE when head has enough: that is the normal end.
        { openssl enc -aes-128-ctr -nosalt -K "$(openssl rand -hex 16)" -iv "$(openssl rand -hex 16)" \
                -in /dev/zero 2>/dev/null || true; } | head -c "$bytes" >"$f"
        [ "$(file_size "$f")" = "$bytes" ] || die "could not make $bytes-byte image $f"
}

# A key file with a passphrase that is printable text (QEMU's secrets must be UTF-8).
make_text_key() { openssl rand -hex 32 | tr -d '\n' >"$1"; chmod 600 "$1"; }

# ---- peers ------------------------------------------------------------------

# cryptsetup on image files: no locking directory needed, batch mode.
cs() { cryptsetup --batch-mode "$@"; }

# cs_can_open IMG KEY [HDR]: 0 if cryptsetup accepts KEY for the volume.
cs_can_open() {
        local img=$1 key=$2 hdr=${3:-} h=()
        [ -z "$hdr" ] || h=(--header "$hdr")
        cs open --test-passphrase "${h[@]}" --key-file "$key" "$img" >/dev/null 2>&1
}

# cs_volume_key IMG KEY OUT [HDR]: dump the volume key (raw bytes) to OUT.
cs_volume_key() {
        local img=$1 key=$2 out=$3 hdr=${4:-} h=()
        [ -z "$hdr" ] || h=(--header "$hdr")
        rm -f "$out"
        cs luksDump "${h[@]}" --dump-volume-key --volume-key-file "$out" --key-file "$key" "$img" \
                >/dev/null || die "cryptsetup could not dump the volume key of $img"
        [ -s "$out" ] || die "cryptsetup dumped an empty volume key for $img"
}

# json_get JSONFILE EXPR: prints a field of a JSON document, EXPR in Python syntax on
# 'd', e.g. "d['job']['percent']". None prints as "null", booleans as true/false.
json_get() {
        "$PY" - "$1" "$2" <<'EOF'
import json, sys
with open(sys.argv[1]) as f:
    d = json.load(f)
v = eval(sys.argv[2], {"d": d})
print(json.dumps(v) if not isinstance(v, str) else v)
EOF
}

# status_json IMG [HDR]: runs `vmcrypt disk status --json` into $T/status.json.
status_json() {
        local img=$1 hdr=${2:-} h=()
        [ -z "$hdr" ] || h=(--header "$hdr")
        vmc disk status --json "${h[@]}" "$img" >"$T/status.json" ||
                die "vmcrypt disk status --json $img failed"
        "$PY" -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/status.json" ||
                die "vmcrypt disk status --json printed invalid JSON: $(cat "$T/status.json")"
}

assert_state() { # img hdr expected-state
        status_json "$1" "$2"
        assert_eq "$(json_get "$T/status.json" "d['state']")" "$3" "state of $1"
}
