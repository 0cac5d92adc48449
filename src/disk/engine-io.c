/* Engine file handling: locking, space checks, the job area on disk, the marker,
 * and error messages. See engine-internal.h. */
#include <errno.h>
#include <fcntl.h>
#include <libcryptsetup.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "disk/engine-internal.h"
#include "disk/luks.h"
#include "disk/testpoint.h"
#include "shared/fd-util.h"
#include "shared/log.h"

int engine_fail(struct error *e, int r, const char *fmt, ...) {
        char text[sizeof(e->text)];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(text, sizeof(text), fmt, ap);
        va_end(ap);
        log_debug("engine: %s", text);
        return error_set(e, r, "%s", text);
}

const char *disk_format_to_string(enum disk_format f) {
        return f == DISK_FORMAT_LUKS2 ? "luks2" : f == DISK_FORMAT_LUKS1 ? "luks1" : "none";
}

int disk_sector_size_check(enum disk_format format, unsigned sector_size, const char **ret_msg) {
        const char *msg = NULL;
        if (sector_size != 512 && sector_size != 4096)
                msg = "sector size must be 512 or 4096";
        else if (format == DISK_FORMAT_LUKS1 && sector_size != 512)
                msg = "LUKS1 supports only 512-byte sectors";
        if (ret_msg)
                *ret_msg = msg;
        return msg ? -EINVAL : 0;
}

const char *engine_operation_to_string(enum engine_operation op) {
        switch (op) {
        case ENGINE_OP_ENCRYPT: return "encrypt";
        case ENGINE_OP_DECRYPT: return "decrypt";
        case ENGINE_OP_REENCRYPT: return "reencrypt";
        case ENGINE_OP_CONVERT: return "convert";
        default: return "none";
        }
}

/* Is the block device dev mounted (by anyone)? */
static bool dev_is_mounted(dev_t dev) {
        FILE *f = fopen("/proc/self/mountinfo", "re");
        if (!f)
                return false;
        char line[4096];
        bool found = false;
        while (!found && fgets(line, sizeof(line), f)) {
                unsigned a, b, maj, min;
                if (sscanf(line, "%u %u %u:%u", &a, &b, &maj, &min) == 4 &&
                    makedev(maj, min) == dev)
                        found = true;
        }
        fclose(f);
        return found;
}

int engine_open_locked(const char *path, unsigned how, int *ret_fd, struct error *err) {
        bool create = how & ENGINE_OPEN_CREATE;
        int flags = O_RDWR | O_CLOEXEC | O_NOCTTY;
        if (create)
                flags |= O_CREAT | O_EXCL | O_NOFOLLOW;
        /* A header file is named by the admin but may sit in a directory another
         * user can write: never follow a link to somebody else's file. Disks are
         * often reached through links (/dev/disk/by-id) and may be followed. */
        if (how & ENGINE_OPEN_HEADER)
                flags |= O_NOFOLLOW;
        struct stat st;
        if (!create && !(how & ENGINE_OPEN_HEADER) && stat(path, &st) == 0 && S_ISBLK(st.st_mode)) {
                /* O_EXCL on a block device fails while it is mounted or claimed. */
                flags |= O_EXCL;
                if (dev_is_mounted(st.st_rdev))
                        return engine_fail(err, -EBUSY, "%s is mounted: unmount it first", path);
        }
        _cleanup_(closep) int fd = open(path, flags, 0600);
        if (fd < 0) {
                int r = negative_errno();
                if (r == -EBUSY)
                        return engine_fail(err, r, "%s is in use (mounted or held by another program)", path);
                if (r == -EEXIST)
                        return engine_fail(err, r, "%s already exists: refusing to overwrite it", path);
                if (r == -ELOOP)
                        return engine_fail(err, -EACCES, "the header file %s is a symlink: name the file itself", path);
                return engine_fail(err, r, "cannot open %s: %s", path, strerror(-r));
        }
        if (how & ENGINE_OPEN_HEADER) {
                if (fstat(fd, &st) < 0)
                        return negative_errno();
                if (!S_ISREG(st.st_mode))
                        return engine_fail(err, -EINVAL, "the header file %s is not a regular file", path);
                if (st.st_uid != geteuid())
                        return engine_fail(err, -EACCES, "the header file %s belongs to uid %u, not to the user running "
                                           "vmcrypt (uid %u): another user could change it under the job",
                                           path, (unsigned) st.st_uid, (unsigned) geteuid());
        }
        /* QEMU takes OFD byte-range locks on its images: a write lock over the whole
         * file conflicts with any of them, and with another vmcrypt job. */
        int r = fd_ofd_write_lock(fd, 0, 0);
        if (r == -EBUSY)
                return engine_fail(err, r, "%s is in use by another process (a running VM or another vmcrypt job): stop it first", path);
        if (r < 0)
                return engine_fail(err, r, "cannot lock %s: %s", path, strerror(-r));
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static void human(uint64_t v, char buf[static 32]) {
        if (v >= (1ULL << 30))
                snprintf(buf, 32, "%.1f GiB", (double) v / (1ULL << 30));
        else if (v >= (1ULL << 20))
                snprintf(buf, 32, "%.1f MiB", (double) v / (1ULL << 20));
        else
                snprintf(buf, 32, "%llu bytes", (unsigned long long) v);
}

int engine_check_space(int fd, uint64_t need, struct error *err) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (S_ISBLK(st.st_mode))
                return 0;
        struct statvfs vfs;
        if (fstatvfs(fd, &vfs) < 0)
                return negative_errno();
        uint64_t have = (uint64_t) vfs.f_bavail * vfs.f_frsize;
        /* Keep a little slack for file system metadata. */
        if (have < need + (1 << 20)) {
                char a[32], b[32];
                human(need, a);
                human(have, b);
                return engine_fail(err, -ENOSPC, "not enough free space: need %s, have %s", a, b);
        }
        return 0;
}

int engine_check_final(int fd, uint64_t final_size, struct error *err) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return 0;
        /* Holes of a sparse image are filled too: ciphertext of zeros is not zero. */
        uint64_t allocated = (uint64_t) st.st_blocks * 512;
        return engine_check_space(fd, final_size > allocated ? final_size - allocated : 0, err);
}

int engine_size(int fd, uint64_t *ret) {
        return fd_get_size(fd, ret);
}

void engine_job_layout(struct job_super *sb) {
        uint64_t off = 0;
        sb->old_hdr_off = off;
        off += ALIGN_UP(sb->old_hdr_len, JOB_BLOCK);
        sb->new_hdr_off = off;
        off += ALIGN_UP(sb->new_hdr_len, JOB_BLOCK);
        sb->head_off = off;
        off += ALIGN_UP(sb->head_len, JOB_BLOCK);
        sb->hash_len = sb->layout == JOB_LAYOUT_INPLACE ? ALIGN_UP(sb->hotzone / JOB_HASH_UNIT * 8, JOB_BLOCK) : 0;
        sb->hash_off[0] = off;
        off += sb->hash_len;
        sb->hash_off[1] = off;
        off += sb->hash_len;
        sb->ckpt_off[0] = off;
        off += JOB_BLOCK;
        sb->ckpt_off[1] = off;
        off += JOB_BLOCK;
        sb->jsize = off + JOB_BLOCK;
}

/* Reserve the space the job will grow into, then write the copies. */
static int job_area_fill(struct job *j, const uint8_t *old_hdr, const uint8_t *new_hdr, const uint8_t *head) {
        const struct job_super *sb = &j->sb;
        int fd = j->hold_fd, r;
        uint64_t end = sb->jstart + sb->jsize;
        if (end > sb->orig_size && fallocate(fd, 0, (off_t) sb->orig_size, (off_t) (end - sb->orig_size)) < 0 &&
            errno == ENOSPC)
                return engine_fail(j->p->err, -ENOSPC, "not enough free space for the job area");
        if (old_hdr && (r = pwrite_full(fd, old_hdr, sb->old_hdr_len, (off_t) (sb->jstart + sb->old_hdr_off))) < 0)
                return r;
        if (new_hdr && (r = pwrite_full(fd, new_hdr, sb->new_hdr_len, (off_t) (sb->jstart + sb->new_hdr_off))) < 0)
                return r;
        if (head && (r = pwrite_full(fd, head, sb->head_len, (off_t) (sb->jstart + sb->head_off))) < 0)
                return r;
        return 0;
}

int engine_job_write(struct job *j, const uint8_t *old_hdr, const uint8_t *new_hdr,
                     const uint8_t *head, uint64_t first_pos) {
        struct job_super *sb = &j->sb;
        const struct secret *key = j->key;
        int fd = j->hold_fd, r;
        if (!key)
                return engine_fail(j->p->err, -EINVAL, "no job key: the host's job key is needed to start a job");
        if (RAND_bytes(sb->id, sizeof(sb->id)) != 1)
                return -EIO;
        /* A detached job's disk carries nothing of it: the area names its disk, so a
         * record that points another disk at this header is caught. */
        struct stat st;
        if (sb->detached && fstat(j->data_fd, &st) == 0) {
                sb->data_dev = S_ISBLK(st.st_mode) ? (uint64_t) st.st_rdev : (uint64_t) st.st_dev;
                sb->data_ino = S_ISBLK(st.st_mode) ? 0 : (uint64_t) st.st_ino;
        }
        /* First a "preparing" superblock at the new end: if we die while the area is
         * written, the next command finds it and truncates the file back. */
        sb->preparing = 1;
        if ((r = job_write_super(fd, sb, key)) < 0)
                return r;
        r = job_area_fill(j, old_hdr, new_hdr, head);
        if (r < 0) {
                (void) engine_job_rollback(fd, j->p->header_path, sb, j->p->err);
                return r;
        }
        uint8_t blk[JOB_BLOCK] = { 0 };
        j->ck = (struct job_ckpt) { .seq = 1, .phase = JOB_PHASE_DATA, .pos = first_pos };
        job_ckpt_encode(&j->ck, sb, key, blk);
        if ((r = pwrite_full(fd, blk, JOB_BLOCK, (off_t) (sb->jstart + sb->ckpt_off[1]))) < 0)
                return r;
        memset(blk, 0, sizeof(blk));
        if ((r = pwrite_full(fd, blk, JOB_BLOCK, (off_t) (sb->jstart + sb->ckpt_off[0]))) < 0)
                return r;
        /* Everything before the final superblock is durable before it is. */
        if (fdatasync(fd) < 0)
                return negative_errno();
        sb->preparing = 0;
        if ((r = job_write_super(fd, sb, key)) < 0)
                return r;
        testpoint("after-job-area");
        return 0;
}

static const char marker_text[] =
        "VMCRYPT-IN-PLACE-JOB\n"
        "This disk is in the middle of a vmcrypt in-place job (encrypt, decrypt or\n"
        "reencrypt) and cannot be used until it is finished. Run:\n"
        "    vmcrypt disk resume IMAGE\n";

bool engine_is_marker(const uint8_t *buf, size_t len) {
        return len >= 20 && memcmp(buf, marker_text, 20) == 0;
}

int engine_write_marker(struct job *j) {
        uint64_t len = MIN(ENGINE_HEAD_SIZE, j->sb.hdr_region ? j->sb.hdr_region : ENGINE_HEAD_SIZE);
        if (j->sb.layout == JOB_LAYOUT_SHIFT)
                len = ENGINE_HEAD_SIZE;
        _cleanup_(freep) uint8_t *buf = calloc(1, len);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, marker_text, sizeof(marker_text) - 1);
        int r = pwrite_full(j->hold_fd, buf, len, 0);
        if (r < 0)
                return r;
        if (fdatasync(j->hold_fd) < 0)
                return negative_errno();
        testpoint("after-marker");
        return 0;
}

int engine_job_load_header(struct job *j, bool new_header, struct crypt_device **ret_cd, int *ret_memfd) {
        uint64_t off = new_header ? j->sb.new_hdr_off : j->sb.old_hdr_off;
        uint64_t len = new_header ? j->sb.new_hdr_len : j->sb.old_hdr_len;
        if (len == 0)
                return -EBADMSG;
        _cleanup_(freep) uint8_t *buf = malloc(len);
        if (!buf)
                return -ENOMEM;
        int r = pread_full(j->hold_fd, buf, len, (off_t) (j->sb.jstart + off));
        if (r < 0)
                return r;
        luks_undisguise(buf, len);
        return luks_load_buffer(buf, len, ret_cd, ret_memfd);
}

int engine_commit(struct job *j, uint32_t phase, uint64_t pos, uint64_t hz_start, uint64_t hz_len) {
        struct job_ckpt c = { .seq = j->ck.seq + 1, .phase = phase, .pos = pos,
                              .hz_start = hz_start, .hz_len = hz_len };
        int r = job_write_ckpt(j->hold_fd, &j->sb, j->key, &c);
        if (r < 0)
                return r;
        j->ck = c;
        return 0;
}

/* The finishing stamp. Between truncating the job area and restoring the magics
 * (finalisation steps 8 and 9) an embedded header is disguised and nothing else on
 * the disk says a job put it there; a guest can write a disguised header into its
 * own plain disk as easily. So the header written in step 7 carries, in the last
 * record of its region (the end of the keyslot area, unused), a record sealed with
 * the host's job key over the header's first block: with it the disguised header is
 * ours and resume restores it; without it the disk is taken for the data it is. */
static const char stamp_magic[16] = "VMCRYPT-FINISH1";

static void stamp_record(const uint8_t first[static JOB_BLOCK], char op, const struct secret *key,
                         uint8_t rec[static JOB_RECORD_SIZE]) {
        memset(rec, 0, JOB_RECORD_SIZE);
        memcpy(rec, stamp_magic, 16);
        rec[16] = (uint8_t) op;
        SHA256(first, JOB_BLOCK, rec + 32);
        job_seal(key, rec);
}

int engine_stamp_header(const struct job *j, uint8_t *hdr, size_t len) {
        if (len < 2 * JOB_BLOCK || !j->key)
                return -EINVAL;
        /* luks_build kept every keyslot out of the region's last block. */
        uint8_t *slot = hdr + len - JOB_RECORD_SIZE;
        char op = j->sb.op == ENGINE_OP_REENCRYPT ? 'r' : j->sb.op == ENGINE_OP_CONVERT ? 'c' : 'e';
        stamp_record(hdr, op, j->key, slot);
        return 0;
}

int engine_stamp_check(int fd, uint64_t region, const struct secret *key) {
        if (!key || region < 2 * JOB_BLOCK)
                return 0;
        uint8_t first[JOB_BLOCK], rec[JOB_RECORD_SIZE], want[JOB_RECORD_SIZE];
        int r = pread_full(fd, first, sizeof(first), 0);
        if (r < 0 || (r = pread_full(fd, rec, sizeof(rec), (off_t) (region - JOB_RECORD_SIZE))) < 0)
                return r == -EIO ? 0 : r;
        char op;
        if (luks_magic_probe(first, sizeof(first), &op) != LUKS_MAGIC_DISGUISED)
                return 0;
        stamp_record(first, op, key, want);
        return CRYPTO_memcmp(rec, want, JOB_RECORD_SIZE) == 0;
}

int engine_restore_magic(int fd, uint64_t stamp_region) {
        uint64_t size;
        int r = engine_size(fd, &size);
        if (r < 0)
                return r;
        uint8_t first[4096];
        size_t n = (size_t) MIN(size, (uint64_t) sizeof(first));
        if ((r = pread_full(fd, first, n, 0)) < 0)
                return r;
        char op;
        if (luks_magic_probe(first, n, &op) != LUKS_MAGIC_DISGUISED)
                return 0;
        /* Our own freshly written header: its size field says where the LUKS2
         * secondary header is. */
        uint64_t len = 4096;
        if (first[6] == 0 && first[7] == 2) {
                uint64_t hs = 0;
                for (int i = 0; i < 8; i++)
                        hs = hs << 8 | first[8 + i];
                if (hs >= 4096 && hs <= (4 << 20))
                        len = hs + 4096;
        }
        len = MIN(len, size);
        /* Secondary first, durably: the primary is what makes the volume
         * recognisable, and cryptsetup must find both headers once it does. */
        if (len > 4096) {
                static const uint8_t secondary[6] = { 'S', 'K', 'U', 'L', 0xba, 0xbe };
                uint8_t m[6];
                uint64_t hs = len - 4096;
                if ((r = pread_full(fd, m, sizeof(m), (off_t) hs)) < 0)
                        return r;
                if (memcmp(m, "VMCK", 4) == 0 && m[5] == 0) {
                        if ((r = pwrite_full(fd, secondary, sizeof(secondary), (off_t) hs)) < 0)
                                return r;
                        if (fdatasync(fd) < 0)
                                return negative_errno();
                        testpoint("after-secondary-magic");
                }
        }
        luks_undisguise(first, 6);
        if ((r = pwrite_full(fd, first, 6, 0)) < 0)
                return r;
        if (fdatasync(fd) < 0)
                return negative_errno();
        testpoint("after-magic");
        /* The stamp has done its work; a crash before it is wiped leaves a stale
         * record in unused keyslot space that nothing reads while the magic is real. */
        if (stamp_region >= 2 * JOB_BLOCK && stamp_region <= size) {
                static const uint8_t zero[JOB_RECORD_SIZE];
                if ((r = pwrite_full(fd, zero, sizeof(zero), (off_t) (stamp_region - JOB_RECORD_SIZE))) < 0)
                        return r;
                if (fdatasync(fd) < 0)
                        return negative_errno();
        }
        return 0;
}

void engine_job_done(struct job *j) {
        secret_free(j->old_vk);
        secret_free(j->new_vk);
        secret_free(j->owned_key);
        j->owned_key = NULL;
        j->key = NULL;
        free(j->head);
        free(j->new_hdr);
        j->old_vk = j->new_vk = NULL;
        j->head = j->new_hdr = NULL;
}

int engine_new_volume_key(struct secret **ret) {
        for (;;) {
                _cleanup_(secret_freep) struct secret *vk = NULL;
                int r = secret_new_random(XTS_KEY_SIZE, &vk);
                if (r < 0)
                        return r;
                /* XTS refuses equal key halves; redraw (probability 2^-256). */
                if (CRYPTO_memcmp(vk->data, vk->data + 32, 32) != 0) {
                        *ret = TAKE_PTR(vk);
                        return 0;
                }
        }
}


int engine_job_unstarted(int hold_fd, const struct job_super *sb, const struct secret *key, bool *ret) {
        if (sb->preparing) {
                *ret = true;
                return 0;
        }
        struct job_ckpt ck;
        int r = job_read_ckpt(hold_fd, sb, key, &ck);
        if (r < 0)
                return r;
        uint8_t first[64] = { 0 };
        if ((r = pread_full(hold_fd, first, sizeof(first), 0)) < 0)
                return r;
        bool marked = engine_is_marker(first, sizeof(first)) ||
                      (sb->detached && sb->op == ENGINE_OP_ENCRYPT &&
                       luks_magic_probe(first, sizeof(first), NULL) == LUKS_MAGIC_DISGUISED);
        *ret = !marked && ck.phase != JOB_PHASE_FINALIZE;
        return 0;
}

int engine_job_rollback(int hold_fd, const char *header_path, const struct job_super *sb, struct error *err) {
        uint64_t size;
        int r = engine_size(hold_fd, &size);
        if (r < 0)
                return r;
        /* job_read_super checked this already; a rollback must never grow a file. */
        if (sb->orig_size > size)
                return engine_fail(err, -EBADMSG, "the job area says the file was %llu bytes, more than its %llu now: "
                                   "refusing to roll back", (unsigned long long) sb->orig_size, (unsigned long long) size);
        if (sb->detached && sb->op == ENGINE_OP_ENCRYPT && sb->orig_size == 0 && header_path) {
                /* the header file was ours: nothing of the job may remain */
                if (ftruncate(hold_fd, 0) < 0 || fsync(hold_fd) < 0)
                        return negative_errno();
                if (unlink(header_path) < 0 && errno != ENOENT)
                        return negative_errno();
                return fsync_parent_dir(header_path);
        }
        if (ftruncate(hold_fd, (off_t) sb->orig_size) < 0 || fsync(hold_fd) < 0)
                return negative_errno();
        log_debug("rolled back a job that had not started changing the disk");
        return 0;
}
