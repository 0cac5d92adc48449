#!/usr/bin/env bash
# SIGKILL at random moments of rate-limited encrypt, decrypt and reencrypt jobs, with
# the header in front and detached; every other time the resume is killed too before
# a final resume. cryptsetup must never open an unfinished image, and the plaintext
# must always come back byte for byte. At least 30 kills must leave a job half done.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/disk-common.sh"
require_vmcrypt
require_cmd cryptsetup qemu-img openssl numfmt

ROUNDS=${ROUNDS:-5}     # per job kind and mode: 3 x 3 x 5 = 45 jobs
RATE_MIB=16             # 40 MiB at 16 MiB/s: a data pass takes about 2.5 s
SEED=${SEED:-$RANDOM}
RANDOM=$SEED
echo "random seed $SEED (rerun with SEED=$SEED to repeat the same delays)"

# kill_after STATE SECONDS cmd...: runs cmd in the background and SIGKILLs it SECONDS
# after it started or, if STATE is not empty, SECONDS after status first shows the
# image in STATE (so that the kill lands in the data pass, not in the key setup that
# comes before it). Prints cmd's exit code (137 when the kill landed).
kill_after() {
        local state=$1 delay=$2 pid rc=0 i
        shift 2
        "$@" >"$T/bg.out" 2>"$T/bg.err" &
        pid=$!
        if [ -n "$state" ]; then
                for ((i = 0; i < 400; i++)); do
                        "$VMCRYPT" disk status --json "${H[@]}" "$T/img" 2>/dev/null |
                                grep -q "\"state\":\"$state\"" && break
                        kill -0 "$pid" 2>/dev/null || break
                        sleep 0.02
                done
        fi
        sleep "$delay"
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" || rc=$?
        echo "$rc"
}

# A delay between 0.00 s and 2.49 s (a data pass takes about 2.5 s).
rand_delay() { local c=$((RANDOM % 250)); printf '%d.%02d' $((c / 100)) $((c % 100)); }

fault_setup
landed=0 # kills that found the process still running
midjob=0 # kills that left a job half done (status shows it in progress)

# count_kill RC: counts a kill that landed, and whether it left the job half done.
count_kill() {
        [ "$1" = 137 ] || return 0
        landed=$((landed + 1))
        [ "$(image_state "$mode")" != "$(job_state "$op")" ] || midjob=$((midjob + 1))
}
for op in "${OPS[@]}"; do
        for mode in "${MODES[@]}"; do
                for ((i = 1; i <= ROUNDS; i++)); do
                        d=$(rand_delay)
                        # Every third round the clock starts with the command: the kill
                        # may land in the set-up before the data pass.
                        wait_for=$(job_state "$op")
                        [ $((i % 3)) != 0 ] || wait_for=""
                        what="$op/$mode round $i (killed ${d}s after ${wait_for:-the start})"
                        prep "$op" "$mode"
                        hdr_args "$mode"
                        key_args "$op" "$mode"
                        rc=$(kill_after "$wait_for" "$d" "$VMCRYPT" disk "$op" "${H[@]}" "${K[@]}" --progress json \
                                --max-rate "${RATE_MIB}M" "$T/img")
                        count_kill "$rc"
                        case $rc in
                        137) ;;
                        0) echo "$what: finished before the kill" ;;
                        *) die "$what: exit $rc: $(cat "$T/bg.err")" ;;
                        esac
                        # Every other round, kill the resume as well.
                        if [ "$rc" = 137 ] && [ $((i % 2)) = 0 ] && [ "$(image_state "$mode")" = "$(job_state "$op")" ]; then
                                d2=$(rand_delay)
                                rc2=$(kill_after "" "$d2" "$VMCRYPT" disk resume "${H[@]}" --key-file "$T/img.key" \
                                        --progress json --max-rate "${RATE_MIB}M" "$T/img")
                                count_kill "$rc2"
                                case $rc2 in
                                137) what="$what, resume killed after ${d2}s" ;;
                                0) ;;
                                *) die "$what: resume exit $rc2: $(cat "$T/bg.err")" ;;
                                esac
                        fi
                        settle "$op" "$mode" "$what"
                        verify_end "$op" "$mode" "$what"
                done
        done
done
echo "$landed SIGKILLs landed, $midjob of them left a job half done; every image came back to the original plaintext"
[ "$midjob" -ge 30 ] || die "only $midjob kills left a job half done (need 30): is --max-rate honoured?"
