/* Disk image container formats that are not raw disks (qcow2, VMDK, VHD, VHDX,
 * VDI, QED). vmcrypt encrypts raw bytes; encrypting a container as if it were a
 * disk would encrypt its metadata with the data, and a sparse container does not
 * even have the size of the disk it holds. The probe looks at the magic at offset
 * 0 (and at VHD's footer in the last 512 bytes). Those bytes are the guest's on a
 * raw disk, so a match is only a strong hint: callers refuse unless the
 * administrator says the disk is raw (--force-raw). */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* 1 and the format's name ("qcow2", ...) in *ret_name when fd (size bytes) starts
 * with (or, for VHD, ends with) a known container signature; 0 when none; -errno
 * on read errors. */
int image_format_probe(int fd, uint64_t size, const char **ret_name);

/* The same for buffers: head is the first head_len bytes, tail the last 512 (or
 * NULL when unknown). */
const char *image_format_match(const uint8_t *head, size_t head_len, const uint8_t *tail);
