#!/usr/bin/env bash
# SIGKILL at every named crash point of encrypt, decrypt and reencrypt, with the
# header in front and detached (VMCRYPT_TEST_CRASH_POINT=NAME:N, see docs/engine.md),
# each followed by `vmcrypt disk resume`. While a job is interrupted cryptsetup must
# not open the image; at the end the plaintext must be the original.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/disk-common.sh"
require_vmcrypt
require_testpoints
require_cmd cryptsetup qemu-img openssl numfmt

# Points passed once per job (N=1), and points passed once per step of the data pass,
# tried at the first and a later step (N=1 and N=3).
ONCE_POINTS=(after-job-area after-marker before-finalize after-header-write after-truncate after-secondary-magic after-magic)
STEP_POINTS=(before-commit after-data-write after-commit)

fault_setup
kills=0
for op in "${OPS[@]}"; do
        for mode in "${MODES[@]}"; do
                reached=0
                for pn in "${ONCE_POINTS[@]/%/:1}" "${STEP_POINTS[@]/%/:1}" "${STEP_POINTS[@]/%/:3}"; do
                        what="$op/$mode killed at $pn"
                        prep "$op" "$mode"
                        rc=$(VMCRYPT_TEST_CRASH_POINT=$pn run_op "$op" "$mode")
                        case $rc in
                        137) reached=$((reached + 1)); kills=$((kills + 1)) ;;
                        0) ;; # this job does not pass that point (that often)
                        *) die "$what: exit $rc instead of SIGKILL or success: $(cat "$T/op.err")" ;;
                        esac
                        settle "$op" "$mode" "$what"
                        verify_end "$op" "$mode" "$what"
                done
                echo "$op/$mode: $reached crash points reached"
                # Every job has a data pass: at least its step points must fire.
                [ "$reached" -ge 3 ] || die "$op/$mode: only $reached crash points fired; are the names in docs/engine.md still these?"
        done
done
echo "$kills SIGKILLs at named points, all resumed to the original plaintext"
