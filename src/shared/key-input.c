/* Key input: see key-input.h. */
#include "shared/key-input.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "shared/fd-util.h"
#include "shared/hex.h"

int key_input_read_file(const char *path, struct secret **ret) {
        if (strcmp(path, "-") == 0)
                return key_input_read_fd(STDIN_FILENO, ret);
        _cleanup_(closep) int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        return key_input_read_fd(fd, ret);
}

int key_input_read_fd(int in, struct secret **ret) {
        /* One byte more than allowed tells us the file is too big. */
        _cleanup_(secret_freep) struct secret *s = secret_new(KEY_INPUT_MAX + 1);
        if (!s)
                return -ENOMEM;
        ssize_t n = read_full(in, s->data, s->size);
        if (n < 0)
                return (int) n;
        if (n == 0)
                return -EINVAL;
        if ((size_t) n > KEY_INPUT_MAX)
                return -EFBIG;
        secret_truncate(s, (size_t) n);
        *ret = TAKE_PTR(s);
        return 0;
}

void key_input_strip_newline(struct secret *s) {
        size_t n = s->size;
        if (n > 0 && s->data[n - 1] == '\n') {
                n--;
                if (n > 0 && s->data[n - 1] == '\r')
                        n--;
        }
        secret_truncate(s, n);
}

static int read_line_noecho(int fd, const char *prompt, struct secret **ret) {
        struct termios old, quiet;
        if (tcgetattr(fd, &old) < 0)
                return negative_errno();
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t) ECHO;
        quiet.c_lflag |= ECHONL;
        /* Echo off (and pending input flushed) before the prompt shows, never after:
         * whoever types as soon as the prompt appears (an expect script, a person on
         * a loaded host) would have the line echoed and then thrown away by the
         * flush, and the read would wait for ever. */
        if (tcsetattr(fd, TCSAFLUSH, &quiet) < 0)
                return negative_errno();
        (void) write_full(fd, prompt, strlen(prompt));

        _cleanup_(secret_freep) struct secret *s = secret_new(KEY_INPUT_MAX + 1);
        int r = s ? 0 : -ENOMEM;
        size_t n = 0;
        while (r == 0) {
                char c;
                ssize_t k = read(fd, &c, 1);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        r = negative_errno();
                        break;
                }
                if (k == 0 || c == '\n' || c == '\r')
                        break;
                if (n >= KEY_INPUT_MAX) {
                        r = -EFBIG;
                        break;
                }
                s->data[n++] = (uint8_t) c;
                secret_wipe(&c, sizeof(c));
        }
        (void) tcsetattr(fd, TCSAFLUSH, &old);
        if (r < 0)
                return r;
        if (n == 0)
                return -EINVAL;
        secret_truncate(s, n);
        *ret = TAKE_PTR(s);
        return 0;
}

int key_input_prompt(const char *prompt, int confirm, struct secret **ret) {
        _cleanup_(closep) int tty = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (tty < 0)
                return -ENXIO;
        _cleanup_(secret_freep) struct secret *first = NULL;
        int r = read_line_noecho(tty, prompt, &first);
        if (r < 0)
                return r;
        if (confirm) {
                _cleanup_(secret_freep) struct secret *again = NULL;
                r = read_line_noecho(tty, "Verify passphrase: ", &again);
                if (r < 0)
                        return r;
                if (!secret_equal(first, again))
                        return -EINVAL;
        }
        *ret = TAKE_PTR(first);
        return 0;
}

static int write_new_key_file(const char *path, struct secret *s) {
        int r;
        _cleanup_(closep) int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return negative_errno();
        r = write_full(fd, s->data, s->size);
        if (r >= 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r < 0) {
                (void) unlink(path);
                return r;
        }
        return fsync_parent_dir(path);
}

int key_input_new_key_file(const char *path, size_t size, struct secret **ret) {
        _cleanup_(secret_freep) struct secret *s = NULL;
        int r = secret_new_random(size, &s);
        if (r < 0)
                return r;
        r = write_new_key_file(path, s);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

int key_input_new_hex_key_file(const char *path, size_t random_bytes, struct secret **ret) {
        _cleanup_(secret_freep) struct secret *raw = NULL;
        int r = secret_new_random(random_bytes, &raw);
        if (r < 0)
                return r;
        /* hex_encode writes a NUL after the digits: allocate room, then trim it. */
        _cleanup_(secret_freep) struct secret *text = secret_new(2 * random_bytes + 1);
        if (!text)
                return -ENOMEM;
        hex_encode(raw->data, raw->size, (char *) text->data);
        secret_truncate(text, 2 * random_bytes);
        r = write_new_key_file(path, text);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(text);
        return 0;
}
