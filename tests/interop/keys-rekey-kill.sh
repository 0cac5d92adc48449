#!/usr/bin/env bash
# Crash safety of shallow rekey: SIGKILL `vmcrypt disk rekey` (KEK only, and with
# --secret) at random moments, on LUKS2 (header tokens) and LUKS1 (the header's metadata area).
# After every kill the disk must still unlock through the KMS and open in
# cryptsetup with the released secret, and its data area must be unchanged. The
# states the kills left behind are counted, to show they landed mid-operation.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/keys-lib.sh"
require_keys_cli

ROUNDS=${ROUNDS:-32}
kms_vmcrypt_start "$T/kms" alice
P=$T/providers.json
write_providers "$P" kms "$T/kms" alice "127.0.0.1:$KMS_PORT"

# A random delay in microseconds, uniform in [0, max], and a sleep that forks
# nothing (a builtin read with a timeout on a pipe that never delivers), so the
# delays are not swamped by process start-up.
rand_us() { echo $(( (RANDOM * 32768 + RANDOM) % ($1 + 1) )); }
exec {NEVER}<> <(:)
sleep_us() { read -r -t "$(printf '%d.%06d' $(($1 / 1000000)) $(($1 % 1000000)))" -u "$NEVER" || true; }

state_of() { # img type: "tokens=N slots=M pending=yes|no"
        if [ "$2" = luks2 ]; then
                cryptsetup luksDump --dump-json-metadata "$1" | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
t = [v["type"] for v in d["tokens"].values()]
print("tokens=%d slots=%d pending=%s" % (t.count("vmcrypt"), len(d["keyslots"]), "yes" if "vmcrypt-pending" in t else "no"))'
        else
                "$PY" -c '
import json, subprocess, sys
d = json.loads(subprocess.run([sys.argv[2], "doc", sys.argv[1]], capture_output=True, text=True, check=True).stdout)
out = subprocess.run(["cryptsetup", "luksDump", sys.argv[1]], capture_output=True, text=True).stdout
slots = sum(1 for l in out.splitlines() if l.startswith("Key Slot") and l.rstrip().endswith("ENABLED"))
print("tokens=%d slots=%d pending=%s" % (len(d["tokens"]), slots, "yes" if "pending" in d else "no"))' "$1" "$KEYS_HERE/luks1-meta.py"
        fi
}

declare -A SEEN
interrupted=0
completed=0
for type in luks2 luks1; do
        img=$T/$type.img
        expect_rc 0 "create-$type" vmc disk create --providers "$P" --provider kms --type "$type" 20M "$img"
        # Some data to watch: the data area must come through every kill unchanged.
        vmc disk unlock --providers "$P" "$img" -- cryptsetup open --test-passphrase --key-file - "$img" ||
                die "fresh $type disk does not open"
        off=$(cryptsetup luksDump "$img" | "$PY" -c '
import re, sys
t = sys.stdin.read()
m = re.search(r"^Payload offset:\s*(\d+)", t, re.M)
print(int(m.group(1)) * 512 if m else re.search(r"^\s*offset:\s*(\d+) \[bytes\]", t, re.M).group(1))')
        data=$(sha256_range "$img" "$off")
        # How long one rekey takes here, to spread the kills over it.
        t0=$(date +%s%N)
        vmc disk rekey --providers "$P" --secret "$img" >/dev/null || die "rekey of $type failed"
        dur_us=$(( ($(date +%s%N) - t0) / 1000 ))
        note "$type: one rekey --secret takes ${dur_us} us; $ROUNDS kills spread over it"
        for i in $(seq 1 "$ROUNDS"); do
                args=()
                [ $((i % 2)) = 0 ] && args=(--secret)
                "$VMCRYPT" disk rekey --providers "$P" "${args[@]}" "$img" >"$T/rk.out" 2>"$T/rk.err" &
                pid=$!
                # Half the kills anywhere, half in the middle, where the metadata is
                # written: before it the new KEK is made and wraps the secret, after
                # it the old KEK is released at the key server (network round trips).
                if [ $((i % 4)) -lt 2 ]; then
                        sleep_us "$(rand_us $((dur_us * 3 / 2)))"
                else
                        sleep_us $((dur_us / 4 + $(rand_us $((dur_us / 2)))))
                fi
                kill -KILL "$pid" 2>/dev/null || true
                wait "$pid" 2>/dev/null && completed=$((completed + 1)) || interrupted=$((interrupted + 1))
                st=$(state_of "$img" "$type")
                SEEN["$type $st"]=$(( ${SEEN["$type $st"]:-0} + 1 ))
                vmc disk unlock --providers "$P" --check "$img" >/dev/null 2>"$T/check.err" ||
                        die "round $i ($type, ${args[*]:-kek}): no way in after SIGKILL ($st): $(cat "$T/check.err")"
                vmc disk unlock --providers "$P" "$img" -- cryptsetup open --test-passphrase --key-file - "$img" ||
                        die "round $i ($type): cryptsetup rejects the released secret after SIGKILL ($st)"
                assert_eq "$(sha256_range "$img" "$off")" "$data" "data area after SIGKILL in round $i ($type)"
        done
        # A clean rekey afterwards tidies whatever the kills left: one token, one keyslot.
        expect_rc 0 "final-$type" vmc disk rekey --providers "$P" --secret "$img"
        assert_eq "$(state_of "$img" "$type")" "tokens=1 slots=1 pending=no" "$type state after a clean rekey"
done
note "kills: $interrupted interrupted a rekey, $completed came after it finished"
for k in "${!SEEN[@]}"; do note "state after a kill: $k (x${SEEN[$k]})"; done
[ "$interrupted" -gt 0 ] || die "no kill interrupted a rekey: the test exercised nothing"
mid=0
for k in "${!SEEN[@]}"; do [ "${k#* }" = "tokens=1 slots=1 pending=no" ] || mid=$((mid + SEEN[$k])); done
[ "$mid" -gt 0 ] || die "no kill left an intermediate state (pending marker, two tokens or two keyslots)"

note "no plaintext key in any file the test made"
kek2=$(token_field "$T/luks2.img" kek_id)
kek1=$("$KEYS_HERE/luks1-meta.py" doc "$T/luks1.img" | "$PY" -c 'import json,sys; print(list(json.load(sys.stdin)["tokens"].values())[0]["kek_id"])')
{ for img in "$T/luks2.img" "$T/luks1.img"; do vmc disk unlock --providers "$P" "$img" -- cat; echo; done; } |
        scan_for_plaintext "$T" "$T/kms" alice "$KMS_PORT" "$kek2" "$kek1"
keys_done
