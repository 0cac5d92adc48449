#!/usr/bin/env bash
# The data writer fails half way (VMCRYPT_TEST_FAIL_WRITE_AFTER=BYTES:ENOSPC|EIO|SHORT)
# in encrypt, decrypt and reencrypt, header in front and detached. The command must
# fail with a clear message and the right exit code (6 for no space), leave the job
# resumable (cryptsetup must not open it meanwhile), and `resume` must finish it
# with the original plaintext. A short write may also be retried and succeed.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/disk-common.sh"
require_vmcrypt
require_testpoints
require_cmd cryptsetup qemu-img openssl numfmt

AFTER=$((SIZE / 2 + 12345))
fault_setup
for op in "${OPS[@]}"; do
        for mode in "${MODES[@]}"; do
                for kind in ENOSPC EIO SHORT; do
                        what="$op/$mode with $kind after $AFTER bytes"
                        prep "$op" "$mode"
                        rc=$(VMCRYPT_TEST_FAIL_WRITE_AFTER=$AFTER:$kind run_op "$op" "$mode")
                        case $kind:$rc in
                        ENOSPC:6)
                                grep -qi 'space' "$T/op.err" ||
                                        die "$what: the message does not say what is wrong: $(cat "$T/op.err")" ;;
                        EIO:1 | EIO:9)
                                grep -qiE 'i/o|input/output|write' "$T/op.err" ||
                                        die "$what: the message does not say what is wrong: $(cat "$T/op.err")" ;;
                        SHORT:0 | SHORT:1 | SHORT:6 | SHORT:9) ;;
                        *) die "$what: exit $rc: $(cat "$T/op.err")" ;;
                        esac
                        grep -qi 'resume' "$T/op.err" || [ "$rc" = 0 ] ||
                                die "$what: the message does not tell the user to resume: $(cat "$T/op.err")"
                        if [ "$rc" != 0 ]; then
                                s=$(image_state "$mode")
                                assert_eq "$s" "$(job_state "$op")" "$what: state after the failed write"
                        fi
                        settle "$op" "$mode" "$what"
                        verify_end "$op" "$mode" "$what"
                done
        done
done
