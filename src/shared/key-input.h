/* Getting keys into the process without argv or the environment: from a key file
 * (or "-" for standard input, e.g. a pipe) or from a passphrase typed at the
 * terminal with echo off. */
#pragma once

#include "shared/secret.h"

#define KEY_INPUT_MAX 8192

/* Read a whole key file ("-" = stdin) into a secret; -EINVAL if empty,
 * -EFBIG if larger than KEY_INPUT_MAX. */
int key_input_read_file(const char *path, struct secret **ret);
/* The same from an open descriptor (read to its end, not closed). */
int key_input_read_fd(int fd, struct secret **ret);

/* Drop exactly one trailing newline ("\n" or "\r\n") from s, if it ends in one: what
 * a text file written with echo or an editor adds after a one-line passphrase, and
 * what key_input_prompt does not keep from a typed line. Other bytes stay. */
void key_input_strip_newline(struct secret *s);

/* Prompt on /dev/tty without echo; when confirm is set, ask twice and require a
 * match (-EINVAL otherwise). -ENXIO when there is no terminal. */
int key_input_prompt(const char *prompt, int confirm, struct secret **ret);

/* Create path (must not exist) with mode 0600 holding size fresh random bytes, and
 * return them as a secret too. */
int key_input_new_key_file(const char *path, size_t size, struct secret **ret);

/* Like key_input_new_key_file, but the file (and the returned secret) hold the
 * 2*random_bytes lowercase hex digits of the random bytes, no newline: a passphrase
 * every consumer accepts (QEMU secret objects require UTF-8 text). */
int key_input_new_hex_key_file(const char *path, size_t random_bytes, struct secret **ret);
