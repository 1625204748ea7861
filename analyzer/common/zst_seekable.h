/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * zst_seekable: zstd's seekable format, written by pystack-coredump and
 * read by the analyzer.
 *
 * A file is a sequence of independent zstd frames, each holding at most
 * `frame_size` bytes of the original, followed by a skippable frame with
 * the seek table (magic 0x184D2A5E; entries of compressed and decompressed
 * size as little-endian u32; a footer of frame count, descriptor byte and
 * the seekable magic 0x8F92EAB1), as specified in zstd's
 * contrib/seekable_format.  `zstd -d` restores the original exactly, since
 * decoders skip skippable frames.
 *
 * This module links only libzstd: the crash handler uses it and must not
 * pull in the analysis code.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZST_DEFAULT_FRAME_SIZE (256u << 10)    /* a report touches ~10-20 frames: keep each small */
#define ZST_MAX_FRAME_SIZE (64u << 20)          /* readers refuse larger frames */
#define ZST_MAX_FRAMES (1u << 24)               /* readers refuse larger tables */

/* ---- writing ---- */

struct zst_writer;

/*
 * Write a seekable file to fd (opened for writing, positioned at its
 * start).  level: zstd level (negative = fast levels); threads: frames
 * compressed in parallel (1 = in the caller's thread); frame_size: bytes of
 * input per frame (0 = ZST_DEFAULT_FRAME_SIZE).  0 or -errno.
 */
int zst_writer_new(int fd, int level, unsigned threads, size_t frame_size, struct zst_writer **ret);

/* Append len bytes of input.  0, or -errno (-ENOSPC, -EIO ...) after which the writer only frees. */
int zst_writer_write(struct zst_writer *w, const void *buf, size_t len);

/* Flush the last frame and write the seek table; *compressed (may be NULL) gets the file size. */
int zst_writer_finish(struct zst_writer *w, uint64_t *compressed);

void zst_writer_free(struct zst_writer *w);

/* ---- reading ---- */

struct zst_reader;

/* true when the first bytes look like a zstd frame (magic 0xFD2FB528) or a skippable frame
 * (0x184D2A50-0x184D2A5F: pzstd and an empty seekable file begin with one). */
bool zst_is_zstd(const void *head, size_t len);

/*
 * Open a seekable file: reads and validates the seek table only (sizes
 * summed without overflow, frames inside the file, each frame at most
 * ZST_MAX_FRAME_SIZE when decompressed).  -EBADMSG when it is zstd but not
 * seekable or corrupt, -errno otherwise.  fd is not consumed.
 */
int zst_reader_open(int fd, struct zst_reader **ret);

/* The size of the original. */
uint64_t zst_reader_size(const struct zst_reader *r);

/*
 * Copy len bytes of the original at off into buf, decompressing only the
 * frames that hold them (a small cache keeps the most recent frames).
 * 0, -EIO past the end, -EBADMSG when a frame is corrupt.
 */
int zst_reader_pread(struct zst_reader *r, void *buf, size_t len, uint64_t off);

void zst_reader_free(struct zst_reader *r);
