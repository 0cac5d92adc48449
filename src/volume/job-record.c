/* Records of detached-header jobs: see disk-job-record.h. */
#include "volume/job-record.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "disk/job-key.h"
#include "shared/fd-util.h"
#include "shared/log.h"

const char *job_record_dir(void) {
        return job_key_state_dir();
}

/* The record's path: by identity, not by name, so /dev/sdb and its by-id link (or
 * a renamed image) find the same record. */
static int record_path(enum job_record_kind kind, const char *target, char *buf, size_t size) {
        struct stat st;
        if (stat(target, &st) < 0)
                return negative_errno();
        const char *dir = kind == JOB_RECORD_HEADER ? "headers" : "jobs";
        int n;
        if (S_ISBLK(st.st_mode))
                n = snprintf(buf, size, "%s/%s/blk-%u:%u.json", job_record_dir(), dir, major(st.st_rdev),
                             minor(st.st_rdev));
        else
                n = snprintf(buf, size, "%s/%s/file-%llx-%llx.json", job_record_dir(), dir,
                             (unsigned long long) st.st_dev, (unsigned long long) st.st_ino);
        return n > 0 && (size_t) n < size ? 0 : -ENAMETOOLONG;
}

/* write_file_atomic leaves NAME.tmp.PID behind when its process dies before the
 * rename: remove those of processes that are gone. */
static void remove_stale_temps(const char *dir) {
        DIR *d = opendir(dir);
        if (!d)
                return;
        struct dirent *e;
        while ((e = readdir(d))) {
                const char *t = strstr(e->d_name, ".tmp.");
                if (!t)
                        continue;
                char *end = NULL;
                long pid = strtol(t + 5, &end, 10);
                if (pid > 0 && end && !*end && kill((pid_t) pid, 0) < 0 && errno == ESRCH)
                        (void) unlinkat(dirfd(d), e->d_name, 0);
        }
        closedir(d);
}

static int mkdir_one(const char *path) {
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                return negative_errno();
        return 0;
}

/* realpath of a file that may not exist yet (a new header): its directory's. */
static int absolute_path(const char *path, char buf[static PATH_MAX]) {
        if (realpath(path, buf))
                return 0;
        if (errno != ENOENT)
                return negative_errno();
        const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
        char dir[PATH_MAX], real[PATH_MAX];
        if (!slash)
                strcpy(dir, ".");
        else if (slash == path)
                strcpy(dir, "/");
        else
                snprintf(dir, sizeof(dir), "%.*s", (int) (slash - path), path);
        if (!realpath(dir, real))
                return negative_errno();
        int n = snprintf(buf, PATH_MAX, "%s/%s", strcmp(real, "/") == 0 ? "" : real, base);
        return n > 0 && n < PATH_MAX ? 0 : -ENAMETOOLONG;
}

int job_record_add(enum job_record_kind kind, const char *target, const char *header,
                   enum engine_operation operation) {
        char path[PATH_MAX], jobs[PATH_MAX], t[PATH_MAX], h[PATH_MAX];
        int r = record_path(kind, target, path, sizeof(path));
        if (r < 0)
                return r;
        /* Absolute paths: resume may run from another directory. */
        r = absolute_path(target, t);
        if (r == 0)
                r = absolute_path(header, h);
        if (r < 0)
                return r;
        snprintf(jobs, sizeof(jobs), "%s/%s", job_record_dir(), kind == JOB_RECORD_HEADER ? "headers" : "jobs");
        r = mkdir_one(job_record_dir());
        if (r == 0)
                r = mkdir_one(jobs);
        if (r < 0)
                return r;
        remove_stale_temps(jobs);
        json_t *o = json_pack("{s:s,s:s,s:s}", "target", t, "header", h, "operation",
                              engine_operation_to_string(operation));
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (!s)
                return -ENOMEM;
        r = write_file_atomic(path, s, strlen(s), 0600);
        free(s);
        return r;
}

int job_record_remove(enum job_record_kind kind, const char *target) {
        char path[PATH_MAX];
        int r = record_path(kind, target, path, sizeof(path));
        if (r < 0)
                return r;
        if (unlink(path) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        return fsync_parent_dir(path);
}

int job_record_header(enum job_record_kind kind, const char *target, char *buf, size_t size) {
        char path[PATH_MAX];
        int r = record_path(kind, target, path, sizeof(path));
        if (r < 0)
                return r;
        _cleanup_(freep) char *text = NULL;
        size_t len;
        r = read_file_bounded(path, JOB_RECORD_MAX, &text, &len);
        if (r == -ENOENT)
                return r;
        return r < 0 ? -EUCLEAN : job_record_parse(text, len, buf, size);
}

int job_record_parse(const char *text, size_t len, char *buf, size_t size) {
        json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
        if (!o)
                return -EUCLEAN;
        const char *h = json_string_value(json_object_get(o, "header"));
        /* An absolute path of a file: a record names no relative or empty path, and
         * no path with a NUL inside (jansson strings may hold one). */
        size_t n = h ? strlen(h) : 0;
        int r = h && n > 1 && h[0] == '/' && n < size &&
                                json_string_length(json_object_get(o, "header")) == n
                        ? 0
                        : -EUCLEAN;
        if (r == 0)
                memcpy(buf, h, n + 1);
        json_decref(o);
        return r;
}
