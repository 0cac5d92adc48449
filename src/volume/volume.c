/* Jobs on one volume, with their records: see volume.h. */
#include "volume/volume.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keys/token.h"
#include "volume/job-record.h"
#include "volume/volume-internal.h"

int volume_engine_fail(struct volume_call *c, int r, const char *what) {
        if (r >= 0)
                return r;
        /* The engine explained most failures in c->err already; this one counts only
         * when it did not. */
        return error_set(c->err, r, "%s failed: %s", what, strerror(-r));
}

void volume_call_init(struct volume_call *c, const struct volume_params *p, struct volume_result *res,
                      struct error *err) {
        *c = (struct volume_call) { .p = p, .res = res, .err = err };
        *res = (struct volume_result) { .keyslot = -1 };
        error_clear(err);
        c->ep = (struct engine_params) {
                .path = p->path,
                .header_path = p->header,
                .format = p->format,
                .sector_size = p->sector_size,
                .pbkdf_memory_kib = p->pbkdf_memory_kib,
                .iter_time_ms = p->iter_time_ms,
                .max_rate = p->max_rate,
                .threads = p->threads,
                .force_raw = p->force_raw,
                .progress = p->progress,
                .progress_userdata = p->progress_userdata,
                .err = err,
        };
        if (p->header)
                snprintf(res->header, sizeof(res->header), "%s", p->header);
}

void volume_call_done(struct volume_call *c, int r) {
        /* A new key file, or a KEK made for this call, protects nothing when the
         * disk never got its keyslot. */
        if (r < 0 && c->res->key_file_made && !c->res->interrupted)
                (void) unlink(c->p->key.new_file);
        if (r < 0 && c->binding && !c->res->interrupted) {
                int k = binding_abandon(c->binding);
                if (k > 0)
                        c->res->kek_retired = true;
                else if (k < 0)
                        c->res->kek_left = true;
        }
        secret_free(c->key);
        binding_free(c->binding);
        c->key = NULL;
        c->binding = NULL;
}

/* The state of the job on the call's disk: its operation (ENGINE_OP_NONE when
 * none, or the disk cannot be read) and whether a job area that never changed the
 * disk waits to be rolled back. */
static enum engine_operation job_on(const char *target, const char *header, bool *ret_unstarted) {
        struct engine_status st;
        if (engine_status(target, header, NULL, &st, NULL) < 0) {
                *ret_unstarted = false;
                return ENGINE_OP_NONE;
        }
        *ret_unstarted = st.job_unstarted;
        return st.job;
}

/* Whether the job in header was started on target: a record could name another
 * disk's header (planted, or left by a disk whose inode was reused), and resuming
 * with it would convert target with another job's keys and positions. Unknown
 * (jobs that predate the check) counts as a match. */
static bool job_is_for(const char *target, const struct engine_status *st) {
        struct stat s;
        if (st->job_data_dev == 0 && st->job_data_ino == 0)
                return true;
        if (stat(target, &s) < 0)
                return false;
        if (S_ISBLK(s.st_mode))
                return st->job_data_ino == 0 && st->job_data_dev == (uint64_t) s.st_rdev;
        return st->job_data_dev == (uint64_t) s.st_dev && st->job_data_ino == (uint64_t) s.st_ino;
}

/* Without a header given: the recorded header of the disk's job (started or not)
 * becomes the call's. A record whose header holds no job any more (a crash after
 * the job, before the record went) is dropped when forget is set. */
static int find_recorded_header(struct volume_call *c, bool forget) {
        if (c->ep.header_path || job_record_header(JOB_RECORD_JOB, c->p->path, c->header, sizeof(c->header)) < 0)
                return 0;
        struct engine_status st;
        if (engine_status(c->p->path, c->header, NULL, &st, NULL) < 0 || (st.job == ENGINE_OP_NONE && !st.job_unstarted)) {
                if (forget) {
                        (void) job_record_remove(JOB_RECORD_JOB, c->p->path);
                        /* A header file that a killed job created but never wrote. */
                        struct stat hs;
                        if (lstat(c->header, &hs) == 0 && S_ISREG(hs.st_mode) && hs.st_size == 0)
                                (void) unlink(c->header);
                }
                return 0;
        }
        if (st.job != ENGINE_OP_NONE && !job_is_for(c->p->path, &st))
                return error_set(c->err, -EBADMSG,
                                   "the job record of %s names the header %s, but the job in it was started on "
                                   "another disk: refusing to use the record (if you are sure, pass --header)",
                                   c->p->path, c->header);
        c->ep.header_path = c->header;
        c->res->header_recorded = true;
        snprintf(c->res->header, sizeof(c->res->header), "%s", c->header);
        return 0;
}

/* Before a job with a detached header: a recorded, unfinished job on the disk with
 * another header is refused (it would take half-converted data for untouched data
 * and convert it twice); one that never started is undone; then this job's header
 * is recorded, durably, before anything changes. */
static int job_begin(struct volume_call *c, enum engine_operation op) {
        const char *target = c->p->path;
        if (!c->ep.header_path)
                return 0;
        char recorded[PATH_MAX];
        if (job_record_header(JOB_RECORD_JOB, target, recorded, sizeof(recorded)) == 0) {
                bool unstarted;
                enum engine_operation running = job_on(target, recorded, &unstarted);
                if (running != ENGINE_OP_NONE)
                        return error_set(c->err, -EINPROGRESS,
                                           "%s has an interrupted %s job whose state is in %s: finish it with "
                                           "'vmcrypt disk resume %s' before starting another",
                                           target, engine_operation_to_string(running), recorded, target);
                if (unstarted) {
                        struct engine_params rp = { .path = target, .header_path = recorded, .err = c->err };
                        int r = engine_resume(&rp);
                        if (r < 0)
                                return volume_engine_fail(c, r, "undoing an earlier start");
                }
        }
        int r = job_record_add(JOB_RECORD_JOB, target, c->ep.header_path, op);
        if (r < 0)
                return error_set(c->err, r, "cannot record where the job's header is (%s/jobs): %s",
                                   job_record_dir(), strerror(-r));
        return 0;
}

/* After a job: its record goes once no job remains on the disk; a failure that
 * left the job interrupted is marked for resume. */
static int job_finish(struct volume_call *c, int r, const char *what) {
        if (r < 0)
                (void) volume_engine_fail(c, r, what);
        /* One look at the disk: is a job still there, and what did it leave? */
        struct engine_status st = { 0 };
        bool looked = (c->ep.header_path || (r < 0 && r != -EINPROGRESS)) &&
                      engine_status(c->p->path, c->ep.header_path, NULL, &st, NULL) >= 0;
        bool pending = looked && st.job != ENGINE_OP_NONE;
        if (c->ep.header_path && !pending) {
                (void) job_record_remove(JOB_RECORD_JOB, c->p->path);
                /* Where the finished volume's header is, for status without --header;
                 * a decrypted disk has none. */
                if (r >= 0 && looked && st.encrypted)
                        (void) job_record_add(JOB_RECORD_HEADER, c->p->path, c->ep.header_path, ENGINE_OP_NONE);
                else if (r >= 0)
                        (void) job_record_remove(JOB_RECORD_HEADER, c->p->path);
        }
        if (r < 0 && r != -EINPROGRESS && pending)
                c->res->interrupted = true;
        if (r == -ECANCELED && pending) {
                c->res->paused = true;
                error_clear(c->err);
                (void) error_set(c->err, r, "the %s job on %s was stopped at a checkpoint: 'vmcrypt disk resume' "
                                   "finishes it", what, c->p->path);
        }
        return r;
}

/* A LUKS1 volume keeps its vmcrypt token beside the image; once the disk is plain
 * again that wrapped secret opens nothing and only misleads, so it goes too. */
static void drop_sidecar(struct volume_call *c) {
        const char *h = c->ep.header_path ? c->ep.header_path : c->p->path;
        _cleanup_(freep) char *sidecar = token_sidecar_path(h);
        if (sidecar && unlink(sidecar) == 0)
                snprintf(c->res->sidecar_removed, sizeof(c->res->sidecar_removed), "%s", sidecar);
}

/* The refusals an encrypt is sure to meet, made before a key or a KEK is created
 * for it (the engine checks again, under its lock). */
static int refuse_encrypted(struct volume_call *c) {
        struct engine_status st;
        if (engine_status(c->p->path, c->p->header, NULL, &st, NULL) < 0)
                return 0; /* the engine says what is wrong with the disk */
        if (st.job != ENGINE_OP_NONE)
                return error_set(c->err, -EINPROGRESS, "a vmcrypt job is in progress on %s: run vmcrypt disk resume",
                                   c->p->path);
        if (st.encrypted)
                return error_set(c->err, -EEXIST, "%s is already a %s volume", c->p->header ? c->p->header : c->p->path,
                                   st.format == DISK_FORMAT_LUKS1 ? "LUKS1" : "LUKS2");
        return 0;
}

typedef int (*engine_job_fn)(const struct engine_params *p);

static int run_job(const struct volume_params *p, struct volume_result *res, struct error *err,
                   enum engine_operation op, engine_job_fn fn) {
        struct volume_call c;
        volume_call_init(&c, p, res, err);
        int r = op == ENGINE_OP_ENCRYPT ? refuse_encrypted(&c) : 0;
        if (r >= 0)
                r = volume_get_key(&c, op == ENGINE_OP_ENCRYPT);
        if (r >= 0 && op == ENGINE_OP_REENCRYPT) {
                /* Keyslots this key does not open (a recovery passphrase, another
                 * host's secret) cannot follow the new volume key. */
                struct engine_status st;
                if (engine_status(p->path, c.ep.header_path, NULL, &st, NULL) >= 0 && st.n_keyslots > 1)
                        res->dropped_keyslots = st.n_keyslots - 1;
        }
        if (r >= 0 && op == ENGINE_OP_DECRYPT)
                r = volume_collect_keks(&c);
        if (r >= 0)
                r = job_begin(&c, op);
        if (r >= 0) {
                r = fn(&c.ep);
                r = job_finish(&c, r, engine_operation_to_string(op));
        }
        if (r >= 0 && op == ENGINE_OP_DECRYPT) {
                drop_sidecar(&c);
                volume_release_keks(&c);
        }
        /* Only a finished deep rekey has dropped keyslots. */
        if (r < 0)
                res->dropped_keyslots = 0;
        volume_call_done(&c, r);
        return r;
}

int volume_encrypt(const struct volume_params *p, struct volume_result *res, struct error *err) {
        return run_job(p, res, err, ENGINE_OP_ENCRYPT, engine_encrypt);
}

int volume_decrypt(const struct volume_params *p, struct volume_result *res, struct error *err) {
        return run_job(p, res, err, ENGINE_OP_DECRYPT, engine_decrypt);
}

int volume_reencrypt(const struct volume_params *p, struct volume_result *res, struct error *err) {
        return run_job(p, res, err, ENGINE_OP_REENCRYPT, engine_reencrypt);
}

int volume_resume(const struct volume_params *p, struct volume_result *res, struct error *err) {
        struct volume_call c;
        volume_call_init(&c, p, res, err);
        int r = find_recorded_header(&c, true);
        if (r < 0) {
                volume_call_done(&c, r);
                return r;
        }
        /* Only a job that needs one asks for a key. */
        struct engine_status st;
        r = engine_status(p->path, c.ep.header_path, NULL, &st, NULL);
        /* A job in its finishing step only writes the new header it holds: no key
         * (a convert never has one), except decrypt, which decrypts its first MiB. */
        bool need_key = r < 0 || (st.job != ENGINE_OP_NONE && st.job != ENGINE_OP_CONVERT &&
                                  !(st.job_finalizing && st.job != ENGINE_OP_DECRYPT));
        bool was_decrypt = r >= 0 && st.job == ENGINE_OP_DECRYPT;
        r = need_key ? volume_get_key(&c, false) : 0;
        if (r >= 0 && was_decrypt)
                r = volume_collect_keks(&c);
        if (r >= 0) {
                r = engine_resume(&c.ep);
                r = job_finish(&c, r, "resume");
        }
        if (r == 0 && was_decrypt) {
                drop_sidecar(&c);
                volume_release_keks(&c);
        }
        volume_call_done(&c, r);
        return r;
}

/* format and create: a new header with a new keyslot, no job. */
static int new_volume(const struct volume_params *p, bool create, bool force, uint64_t size,
                      struct volume_result *res, struct error *err) {
        struct volume_call c;
        volume_call_init(&c, p, res, err);
        c.ep.progress = NULL;
        int r = volume_get_key(&c, true);
        if (r >= 0)
                r = volume_engine_fail(&c, create ? engine_create(&c.ep, size) : engine_format(&c.ep, force),
                                       create ? "create" : "format");
        volume_call_done(&c, r);
        return r;
}

int volume_format(const struct volume_params *p, bool force, struct volume_result *res, struct error *err) {
        return new_volume(p, false, force, 0, res, err);
}

int volume_create(const struct volume_params *p, uint64_t size, struct volume_result *res, struct error *err) {
        return new_volume(p, true, false, size, res, err);
}

int volume_status(const struct volume_params *p, struct volume_result *res, struct error *err) {
        struct volume_call c;
        volume_call_init(&c, p, res, err);
        int r = find_recorded_header(&c, false);
        if (r >= 0)
                r = volume_engine_fail(&c, engine_status(p->path, c.ep.header_path, NULL, &res->status, err), "status");
        /* Ciphertext behind a detached header looks like data: the header recorded
         * when the volume was made says what it is. */
        char h[PATH_MAX];
        struct engine_status hst;
        if (r >= 0 && !c.ep.header_path && res->status.format == DISK_FORMAT_NONE && res->status.job == ENGINE_OP_NONE &&
            job_record_header(JOB_RECORD_HEADER, p->path, h, sizeof(h)) == 0 &&
            engine_status(p->path, h, NULL, &hst, NULL) >= 0 && hst.encrypted && hst.detached) {
                res->status = hst;
                res->header_recorded = true;
                snprintf(res->header, sizeof(res->header), "%s", h);
        }
        volume_call_done(&c, r);
        return r;
}

int volume_convert(const struct volume_params *p, enum disk_format to, struct volume_result *res,
                   struct error *err) {
        struct volume_call c;
        volume_call_init(&c, p, res, err);
        c.ep.progress = NULL;
        /* convert needs no key; one is taken only when given (it lets an Argon2
         * keyslot be rebuilt with PBKDF2 for LUKS1). */
        int r = p->key.file || p->key.secret ? volume_get_key(&c, false) : 0;
        if (r >= 0)
                r = job_begin(&c, ENGINE_OP_CONVERT);
        if (r >= 0) {
                r = engine_convert(&c.ep, to);
                r = job_finish(&c, r, "convert");
        }
        volume_call_done(&c, r);
        return r;
}
