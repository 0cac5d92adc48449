#!/usr/bin/env bash
# A job with a detached header keeps its state in the header file and leaves no
# mark the disk itself carries, so vmcrypt records the header's path when the job
# starts ($VMCRYPT_STATE_DIR/jobs). After a SIGKILL mid-job of encrypt, decrypt and
# reencrypt: status and resume find the header without --header; starting another
# job with another header is refused and changes nothing (it would convert data
# twice); the record goes with the job; a stale record is dropped by resume (never by
# status); and a job is
# refused, changing nothing, when the state directory cannot be written.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/disk-common.sh"
require_vmcrypt
require_testpoints
require_cmd cryptsetup qemu-img openssl numfmt
MODES=(detached)

records() { find "$VMCRYPT_STATE_DIR/jobs" -name '*.json' 2>/dev/null | wc -l; }

fault_setup
for op in "${OPS[@]}"; do
        what="$op/detached killed mid-pass"
        prep "$op" detached
        rc=$(VMCRYPT_TEST_CRASH_POINT=after-data-write:1 run_op "$op" detached)
        assert_eq "$rc" 137 "$what: exit status of the killed job"
        assert_eq "$(records)" 1 "$what: job records"

        # status without --header: the job, and where its header is.
        vmc disk status --json "$T/img" >"$T/status.json"
        assert_eq "$(json_get "$T/status.json" "d['state']")" "$(job_state "$op")" "$what: state without --header"
        assert_eq "$(json_get "$T/status.json" "d['header_file']")" "$(realpath "$T/img.hdr")" "$what: header_file"

        # Another job with another header: refused, nothing changed.
        s_img=$(snapshot "$T/img")
        s_hdr=$(snapshot "$T/img.hdr")
        expect_rc 5 other-job vmc disk "$op" --header "$T/other.hdr" --key-file "$T/img.key" --progress none "$T/img"
        assert_file_contains "$T/other-job.err" "vmcrypt disk resume" "$what: the refusal says what to do"
        assert_unchanged "$T/img" "$s_img" "$what: another job refused"
        assert_unchanged "$T/img.hdr" "$s_hdr" "$what: another job refused"
        [ ! -e "$T/other.hdr" ] || die "$what: the refused job made a header file"

        # resume without --header finds it, and the record goes with the job.
        vmc disk resume --key-file "$T/img.key" --progress none "$T/img" >"$T/resume.out" 2>"$T/resume.err" ||
                die "$what: resume without --header failed: $(cat "$T/resume.err")"
        assert_file_contains "$T/resume.err" "$(realpath "$T/img.hdr")" "$what: resume names the recorded header"
        assert_eq "$(records)" 0 "$what: job records after resume"
        verify_end "$op" detached "$what"
        assert_eq "$(records)" 0 "$what: job records after the decrypt that checks"
done

what="stale record"
prep encrypt detached
rc=$(VMCRYPT_TEST_CRASH_POINT=after-data-write:1 run_op encrypt detached)
assert_eq "$rc" 137 "$what: exit status of the killed job"
cp -a "$VMCRYPT_STATE_DIR/jobs" "$T/jobs.saved"
resume detached "$what"
assert_eq "$(records)" 0 "$what: records after resume with --header"
rm -rf "$VMCRYPT_STATE_DIR/jobs" && cp -a "$T/jobs.saved" "$VMCRYPT_STATE_DIR/jobs"
vmc disk status --json "$T/img" >"$T/status.json"
assert_eq "$(json_get "$T/status.json" "d['job']")" null "$what: job of a finished disk"
assert_eq "$(records)" 1 "$what: status (a display command) keeps even a stale record"
expect_rc 0 resume-nothing vmc disk resume --key-file "$T/img.key" --progress none "$T/img"
assert_eq "$(records)" 0 "$what: resume drops the record of a finished job"
verify_end encrypt detached "$what"

# A record is only a pointer: one that sends another disk to this job's header
# (planted by whoever could write the state directory) is caught by the disk
# identity the job area keeps, and changes nothing.
what="planted record"
prep encrypt detached
rc=$(VMCRYPT_TEST_CRASH_POINT=after-data-write:1 run_op encrypt detached)
assert_eq "$rc" 137 "$what: exit status of the killed job"
make_random_image "$T/victim" "$SIZE" # as large as the job's disk: old code converted it
read -r vdev vino < <(stat -c '%d %i' "$T/victim")
printf '{"target":"%s","header":"%s","operation":"encrypt"}' "$T/victim" "$(realpath "$T/img.hdr")" \
        >"$VMCRYPT_STATE_DIR/jobs/file-$(printf %x "$vdev")-$(printf %x "$vino").json"
s_victim=$(snapshot "$T/victim")
s_hdr=$(snapshot "$T/img.hdr")
expect_rc 9 planted vmc disk resume --key-file "$T/img.key" --progress none "$T/victim"
assert_file_contains "$T/planted.err" "another disk" "$what: the refusal says why"
assert_unchanged "$T/victim" "$s_victim" "$what: the victim disk"
assert_unchanged "$T/img.hdr" "$s_hdr" "$what: the other job's header"
rm -f "$VMCRYPT_STATE_DIR/jobs/file-$(printf %x "$vdev")-$(printf %x "$vino").json"
resume detached "$what"
verify_end encrypt detached "$what"

# Killed after its record and job area were written, before its marker: the job
# never changed the disk. status (a display command) keeps the record; resume
# finds it, rolls the start back (exit 10, not 0: nothing was finished) and leaves
# neither the header file the job made nor the record.
what="killed before the marker"
prep encrypt detached
s_img=$(snapshot "$T/img")
rc=$(VMCRYPT_TEST_CRASH_POINT=after-job-area:1 run_op encrypt detached)
assert_eq "$rc" 137 "$what: exit status of the killed job"
assert_eq "$(records)" 1 "$what: job records"
vmc disk status --json "$T/img" >"$T/status.json"
assert_eq "$(json_get "$T/status.json" "d['state']")" plain "$what: state"
assert_eq "$(records)" 1 "$what: job records after status (a display command deletes nothing)"
expect_rc 10 resume-unstarted vmc disk resume --key-file "$T/img.key" --progress none "$T/img"
assert_file_contains "$T/resume-unstarted.err" "rolled back" "$what: resume says what it did"
assert_eq "$(records)" 0 "$what: job records after the rollback"
[ ! -e "$T/img.hdr" ] || die "$what: the rolled-back job left its header file ($(file_size "$T/img.hdr") bytes)"
assert_unchanged "$T/img" "$s_img" "$what: the disk after the rollback"
rm -f "$T/img.key"
rc=$(run_op encrypt detached)
assert_eq "$rc" 0 "$what: encrypt again"
verify_end encrypt detached "$what"

# A finished detached volume is ciphertext without a header in sight: status
# without --header finds the header recorded when the volume was made, instead of
# calling the disk plain; decrypt forgets it. Temporary files of a writer that died
# go, and "header" is null for a plain disk.
what="finished detached volume"
prep encrypt detached
mkdir -p "$VMCRYPT_STATE_DIR/jobs"
: >"$VMCRYPT_STATE_DIR/jobs/file-0-0.json.tmp.2147483646"
rc=$(run_op encrypt detached)
assert_eq "$rc" 0 "$what: encrypt"
[ ! -e "$VMCRYPT_STATE_DIR/jobs/file-0-0.json.tmp.2147483646" ] || die "$what: a dead writer's temporary file stayed"
vmc disk status --json "$T/img" >"$T/status.json"
assert_eq "$(json_get "$T/status.json" "d['state']")" encrypted "$what: state without --header"
assert_eq "$(json_get "$T/status.json" "d['header_file']")" "$(realpath "$T/img.hdr")" "$what: header_file"
rc=$(run_op decrypt detached)
assert_eq "$rc" 0 "$what: decrypt"
vmc disk status --json "$T/img" >"$T/status.json"
assert_eq "$(json_get "$T/status.json" "d['state']")" plain "$what: state after decrypt"
assert_eq "$(json_get "$T/status.json" "d['header']")" null "$what: a plain disk has no header"
assert_eq "$(json_get "$T/status.json" "d['header_file']")" null "$what: nor a header file"
assert_eq "$(sha256_range "$T/img")" "$ORIG_SHA" "$what: plaintext"

# The state directory also holds the host's job key, without which no job can be
# resumed safely (job-key.h): a job that cannot have one does not start.
what="unwritable state directory"
prep encrypt detached
s_img=$(snapshot "$T/img")
rc=$(VMCRYPT_STATE_DIR=/proc/vmcrypt-none run_op encrypt detached)
assert_ne "$rc" 0 "$what: encrypt is refused"
assert_file_contains "$T/op.err" "/proc/vmcrypt-none" "$what: the refusal names the state directory"
assert_unchanged "$T/img" "$s_img" "$what: refused encrypt"
[ ! -e "$T/img.hdr" ] || die "$what: the refused job left a header file"
echo "detached-header jobs found, guarded and forgotten through their records"
