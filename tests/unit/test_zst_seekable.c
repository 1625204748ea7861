/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the seekable zstd writer and reader: round trips at the
 * frame boundaries, random reads, the real `zstd -d` restoring the bytes,
 * write errors, and hostile files that must be refused (never a crash or a
 * read out of bounds: this also runs under ASan+UBSan).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"
#include "zst_seekable.h"

#define FRAME (64u << 10)

static char tmpdir[] = "/tmp/test-zst-XXXXXX";
static int have_zstd_tool;

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void) {
        /* xorshift64*: deterministic, so a failure can be replayed */
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        return rng * 0x2545f4914f6cdd1dull;
}

/* Runs of random bytes, zeros and a repeated text: a core's mixture of heap, holes and code. */
static uint8_t *make_data(size_t len) {
        uint8_t *d = malloc(len ? len : 1);
        size_t off = 0;

        if (!d)
                abort();
        while (off < len) {
                size_t run = 1 + next_rand() % (48u << 10);
                unsigned kind = next_rand() % 3;

                if (run > len - off)
                        run = len - off;
                for (size_t i = 0; i < run; i++)
                        d[off + i] = kind == 0 ? (uint8_t)next_rand() : kind == 1 ? 0 : "pystack core "[i % 13];
                off += run;
        }
        return d;
}

static char *path_in_tmp(const char *name) {
        static char buf[4][256];
        static unsigned k;
        char *p = buf[k++ % 4];

        snprintf(p, sizeof(buf[0]), "%s/%s", tmpdir, name);
        return p;
}

static int write_file(const char *path, const void *data, size_t len) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        const uint8_t *p = data;

        if (fd < 0)
                return -errno;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n <= 0) {
                        close(fd);
                        return -EIO;
                }
                p += n;
                len -= n;
        }
        close(fd);
        return 0;
}

static uint8_t *read_file(const char *path, size_t *len) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        uint8_t *d;

        if (fd < 0 || fstat(fd, &st) < 0)
                return NULL;
        d = malloc(st.st_size ? st.st_size : 1);
        if (d && pread(fd, d, st.st_size, 0) != st.st_size) {
                free(d);
                d = NULL;
        }
        close(fd);
        *len = st.st_size;
        return d;
}

/* Compress data into path; 0 or -errno. */
static int compress_to(const char *path, const uint8_t *data, size_t len, int level, unsigned threads,
                       size_t frame, uint64_t *csize) {
        struct zst_writer *w;
        int fd, r;

        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        r = zst_writer_new(fd, level, threads, frame, &w);
        if (r < 0) {
                close(fd);
                return r;
        }
        /* uneven pieces: writes straddle frame boundaries */
        for (size_t off = 0; off < len && r >= 0;) {
                size_t n = 1 + next_rand() % (3 * frame / 2);
                if (n > len - off)
                        n = len - off;
                r = zst_writer_write(w, data + off, n);
                off += n;
        }
        if (r >= 0)
                r = zst_writer_finish(w, csize);
        zst_writer_free(w);
        close(fd);
        return r;
}

static int open_reader(const char *path, struct zst_reader **r) {
        int fd = open(path, O_RDONLY | O_CLOEXEC), e;

        if (fd < 0)
                return -errno;
        e = zst_reader_open(fd, r);
        close(fd);                      /* the reader keeps its own descriptor */
        return e;
}

static void round_trip(size_t len, int level, unsigned threads) {
        uint8_t *data = make_data(len), *back = malloc(len + 1);
        const char *path = path_in_tmp("rt.zst"), *out = path_in_tmp("rt.out");
        struct zst_reader *r = NULL;
        uint64_t csize = 0;
        struct stat st;
        int e;
        bool reads_ok = true;

        e = compress_to(path, data, len, level, threads, FRAME, &csize);
        if (!TAP_EQ_INT(e, 0, "compress %zu bytes, level %d, %u threads", len, level, threads))
                goto out;
        tap_ok(stat(path, &st) == 0 && (uint64_t)st.st_size == csize, "  reported size %llu is the file's",
               (unsigned long long)csize);
        e = open_reader(path, &r);
        if (!TAP_EQ_INT(e, 0, "  reader opens it"))
                goto out;
        TAP_EQ_INT(zst_reader_size(r), len, "  original size");
        e = zst_reader_pread(r, back, len, 0);
        tap_ok(e == 0 && memcmp(back, data, len) == 0, "  whole read matches (%d)", e);
        for (int k = 0; k < 300 && len > 0; k++) {
                uint64_t off = next_rand() % len;
                size_t n = next_rand() % (k % 10 == 0 ? 3 * FRAME : 200);

                if (n > len - off)
                        n = len - off;
                e = zst_reader_pread(r, back, n, off);
                if (e != 0 || memcmp(back, data + off, n) != 0) {
                        reads_ok = false;
                        printf("# pread(%zu, %llu) = %d\n", n, (unsigned long long)off, e);
                        break;
                }
        }
        tap_ok(reads_ok, "  300 random preads match");
        TAP_EQ_INT(zst_reader_pread(r, back, 1, len), -EIO, "  a read past the end is -EIO");
        TAP_EQ_INT(zst_reader_pread(r, back, 0, len), 0, "  an empty read at the end is fine");
        TAP_EQ_INT(zst_reader_pread(r, back, 2, UINT64_MAX - 1), -EIO, "  offsets near 2^64 do not wrap");

        if (have_zstd_tool) {
                char cmd[1024];
                size_t got_len = 0;
                uint8_t *got;

                snprintf(cmd, sizeof(cmd), "zstd -q -d -f -o '%s' '%s'", out, path);
                e = system(cmd);
                got = e == 0 ? read_file(out, &got_len) : NULL;
                tap_ok(got && got_len == len && memcmp(got, data, len) == 0, "  zstd -d restores it (status %d)", e);
                free(got);
                unlink(out);
        }
out:
        zst_reader_free(r);
        unlink(path);
        free(data);
        free(back);
}

/* ---- hostile files: built from a good one by editing the bytes ---- */

static uint8_t *good;                   /* a valid seekable file */
static size_t good_len;
static uint8_t *orig;                   /* what it holds */
static size_t orig_len;
static uint32_t good_frames;

static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static void set32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* Where entry i of the seek table of f (len bytes, 8-byte entries) lies. */
static uint8_t *entry(uint8_t *f, size_t len, uint32_t i) {
        return f + len - 9 - (size_t)good_frames * 8 + (size_t)i * 8;
}

enum verdict { SAME, REFUSED, WRONG };

/*
 * Feed a file to the reader.  REFUSED: refused at open, or a read of all it
 * claims failed; SAME: accepted and it holds exactly the original; WRONG:
 * accepted with other bytes (never acceptable: corruption must not pass
 * silently).  Scattered small reads are made too, for ASan to watch.
 */
static enum verdict check_file(const uint8_t *f, size_t len, int *open_error) {
        const char *path = path_in_tmp("bad.zst");
        struct zst_reader *r;
        enum verdict v = REFUSED;
        uint64_t size;
        uint8_t *back = NULL;
        int e;

        *open_error = 0;
        if (write_file(path, f, len) < 0)
                return WRONG;
        e = open_reader(path, &r);
        unlink(path);
        if (e < 0) {
                *open_error = e;
                return REFUSED;
        }
        size = zst_reader_size(r);
        /* valid tables add up to the file, so a test file claims little; refuse to allocate more anyway */
        if (size <= (256u << 20))
                back = malloc(size ? size : 1);
        if (back) {
                e = zst_reader_pread(r, back, size, 0);
                if (e == 0)
                        v = size == orig_len && memcmp(back, orig, size) == 0 ? SAME : WRONG;
                for (int k = 0; k < 50 && size > 0; k++) {
                        uint64_t off = next_rand() % size;
                        size_t n = 1 + next_rand() % 100;

                        if (n > size - off)
                                n = size - off;
                        (void)zst_reader_pread(r, back, n, off);
                }
        }
        free(back);
        zst_reader_free(r);
        return v;
}

static bool refused(const uint8_t *f, size_t len, int *open_error) {
        return check_file(f, len, open_error) == REFUSED;
}

static void hostile(void) {
        const char *path = path_in_tmp("good.zst");
        uint8_t *f;
        uint64_t csize;
        int oe, e, all;

        orig_len = 20 * FRAME + 777;
        orig = make_data(orig_len);
        e = compress_to(path, orig, orig_len, 3, 2, FRAME, &csize);
        good = e == 0 ? read_file(path, &good_len) : NULL;
        unlink(path);
        if (!tap_ok(good != NULL, "hostile: base file written (%d)", e))
                return;
        good_frames = get32(good + good_len - 9);
        TAP_EQ_INT(good_frames, 21, "hostile: the base has 21 frames");
        f = malloc(good_len + 64);

        tap_ok(!refused(good, good_len, &oe), "hostile: the unmodified file is accepted");

        /* truncated: every length in the table, and 200 points through the frames */
        all = 1;
        for (size_t cut = 0; cut < good_len; cut++) {
                size_t tail = good_len - cut;
                if (tail > 8 + 21 * 8 + 9 + 8 && cut % (good_len / 200) != 0)
                        continue;
                if (!refused(good, cut, &oe) || oe != -EBADMSG) {
                        printf("# truncated to %zu: accepted or not -EBADMSG (%d)\n", cut, oe);
                        all = 0;
                        break;
                }
        }
        tap_ok(all, "hostile: every truncation is refused at open with -EBADMSG");

        /* trailing garbage after the table */
        memcpy(f, good, good_len);
        memset(f + good_len, 0, 16);
        tap_ok(refused(f, good_len + 16, &oe) && oe == -EBADMSG, "hostile: bytes after the table are refused");

        /* lying frame counts */
        static const uint32_t counts[] = { 0, 1, 20, 22, 0xffffffffu, ZST_MAX_FRAMES, ZST_MAX_FRAMES + 1 };
        for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
                memcpy(f, good, good_len);
                set32(f + good_len - 9, counts[k]);
                tap_ok(refused(f, good_len, &oe) && oe == -EBADMSG, "hostile: frame count %u is refused", counts[k]);
        }

        /* reserved descriptor bits, and the checksum flag without the checksums */
        for (unsigned bit = 2; bit <= 7; bit++) {
                memcpy(f, good, good_len);
                f[good_len - 5] |= 1u << bit;
                tap_ok(refused(f, good_len, &oe) && oe == -EBADMSG, "hostile: descriptor bit %u is refused", bit);
        }
        /* bits 0-1 are "unused": a reader must not care */
        memcpy(f, good, good_len);
        f[good_len - 5] |= 3;
        tap_ok(!refused(f, good_len, &oe), "hostile: unused descriptor bits 0-1 are ignored");

        /* the skippable frame's own size and magic */
        size_t table_off = good_len - 9 - good_frames * 8 - 8;
        memcpy(f, good, good_len);
        set32(f + table_off + 4, get32(f + table_off + 4) + 8);
        tap_ok(refused(f, good_len, &oe) && oe == -EBADMSG, "hostile: a wrong skippable frame size is refused");
        memcpy(f, good, good_len);
        set32(f + table_off, 0x184D2A50);
        tap_ok(refused(f, good_len, &oe) && oe == -EBADMSG, "hostile: a wrong skippable magic is refused");

        /* lying decompressed sizes: the table still adds up, the frame does not */
        static const int32_t deltas[] = { 1, -1, 4096, -4096 };
        for (size_t k = 0; k < sizeof(deltas) / sizeof(deltas[0]); k++) {
                memcpy(f, good, good_len);
                uint8_t *ent = entry(f, good_len, 7);
                set32(ent + 4, get32(ent + 4) + deltas[k]);
                tap_ok(refused(f, good_len, &oe) && oe == 0, "hostile: decompressed size %+d is caught at read",
                       deltas[k]);
        }
        memcpy(f, good, good_len);
        set32(entry(f, good_len, 3) + 4, ZST_MAX_FRAME_SIZE + 1);
        tap_ok(refused(f, good_len, &oe) && oe == -EBADMSG, "hostile: a frame above ZST_MAX_FRAME_SIZE is refused");
        memcpy(f, good, good_len);
        set32(entry(f, good_len, 3) + 4, 0xffffffffu);
        tap_ok(refused(f, good_len, &oe) && oe == -EBADMSG, "hostile: decompressed size 2^32-1 is refused");

        /* compressed sizes that do not add up, or add up with the boundaries moved */
        memcpy(f, good, good_len);
        set32(entry(f, good_len, 5), get32(entry(f, good_len, 5)) + 1);
        tap_ok(refused(f, good_len, &oe) && oe == -EBADMSG, "hostile: compressed sizes 1 too many are refused");
        memcpy(f, good, good_len);
        set32(entry(f, good_len, 20), get32(entry(f, good_len, 20)) - 1);
        tap_ok(refused(f, good_len, &oe) && oe == -EBADMSG, "hostile: compressed sizes 1 too few are refused");
        memcpy(f, good, good_len);
        set32(entry(f, good_len, 5), get32(entry(f, good_len, 5)) + 100);
        set32(entry(f, good_len, 6), get32(entry(f, good_len, 6)) - 100);
        tap_ok(refused(f, good_len, &oe) && oe == 0, "hostile: a moved frame boundary is caught at read");
        memcpy(f, good, good_len);
        set32(entry(f, good_len, 0), 0);
        tap_ok(refused(f, good_len, &oe) && oe == -EBADMSG, "hostile: a zero compressed size is refused");
        memcpy(f, good, good_len);
        set32(entry(f, good_len, 0), 0xfffffff0u);
        tap_ok(refused(f, good_len, &oe) && oe == -EBADMSG, "hostile: a 4 GiB compressed size is refused");

        /*
         * corrupted frame data: zstd's checksum or the decoder catches it.  A few header bits
         * are legitimately ignored by decoders (the frame header's unused bit), so "accepted
         * with the same bytes" is harmless; other bytes would not be.
         */
        int caught = 0, wrong = 0;
        for (int k = 0; k < 300; k++) {
                size_t at = next_rand() % table_off;
                memcpy(f, good, good_len);
                f[at] ^= 1u << (next_rand() % 8);
                enum verdict v = check_file(f, good_len, &oe);
                caught += v == REFUSED;
                if (v == WRONG) {
                        printf("# bit flip at %zu gave other bytes\n", at);
                        wrong++;
                }
        }
        tap_ok(wrong == 0, "hostile: 300 single bit flips in the frames never give wrong bytes (%d caught)", caught);
        memcpy(f, good, good_len);
        f[good_len / 3] ^= 0xff;
        tap_ok(refused(f, good_len, &oe) && oe == 0, "hostile: a corrupted byte in a frame is -EBADMSG at read");
        {
                const char *p = path_in_tmp("corrupt.zst");
                struct zst_reader *r;
                uint8_t b[16];
                uint64_t at = 0;

                /* find the frame holding the flipped byte through the table, read inside it */
                for (uint32_t i = 0; i < good_frames; i++) {
                        uint32_t c = get32(entry(good, good_len, i));
                        if (at + c > good_len / 3) {
                                at = (uint64_t)i * FRAME;
                                break;
                        }
                        at += c;
                }
                write_file(p, f, good_len);
                e = open_reader(p, &r);
                if (e == 0) {
                        TAP_EQ_INT(zst_reader_pread(r, b, sizeof(b), at + 10), -EBADMSG,
                                   "hostile: the corrupt frame reads as -EBADMSG");
                        TAP_EQ_INT(zst_reader_pread(r, b, sizeof(b), at + 10), -EBADMSG,
                                   "hostile: and again (no half-filled cache entry)");
                        zst_reader_free(r);
                }
                unlink(p);
        }

        /* a table with checksums (12-byte entries): accepted, the checksums themselves not needed */
        {
                size_t n = good_frames, body = n * 12 + 9, len2 = table_off + 8 + body;
                uint8_t *g = malloc(len2);

                memcpy(g, good, table_off);
                set32(g + table_off, 0x184D2A5E);
                set32(g + table_off + 4, body);
                for (size_t i = 0; i < n; i++) {
                        memcpy(g + table_off + 8 + i * 12, entry(good, good_len, i), 8);
                        set32(g + table_off + 8 + i * 12 + 8, 0x12345678);
                }
                memcpy(g + len2 - 9, good + good_len - 9, 9);
                g[len2 - 5] = 0x80;
                tap_ok(!refused(g, len2, &oe), "hostile: a table with per-entry checksums is read");
                g[len2 - 5] = 0;
                tap_ok(refused(g, len2, &oe) && oe == -EBADMSG, "hostile: 12-byte entries without the flag are refused");
                free(g);
        }

        /* random garbage with a valid footer */
        all = 1;
        for (int k = 0; k < 100; k++) {
                size_t len = 17 + next_rand() % 4096;
                uint8_t *g = malloc(len);
                for (size_t i = 0; i < len; i++)
                        g[i] = next_rand();
                set32(g + len - 4, 0x8F92EAB1);
                g[len - 5] = k % 2 ? 0x80 : 0;
                set32(g + len - 9, next_rand() % 64);
                /* a third get a consistent skippable header, so the entries themselves are parsed */
                size_t tsize = 8 + get32(g + len - 9) * (k % 2 ? 12 : 8) + 9;
                if (k % 3 == 0 && tsize <= len) {
                        set32(g + len - tsize, 0x184D2A5E);
                        set32(g + len - tsize + 4, tsize - 8);
                }
                if (!refused(g, len, &oe))
                        all = 0;
                free(g);
        }
        tap_ok(all, "hostile: 100 random files with a seekable footer are refused");

        free(f);
}

static void non_seekable(void) {
        const char *raw = path_in_tmp("plain"), *z = path_in_tmp("plain.zst");
        uint8_t *data = make_data(100000);
        struct zst_reader *r;
        char cmd[1024];
        uint8_t head[4];
        int fd, e;

        if (!have_zstd_tool) {
                tap_skip("no zstd tool");
                free(data);
                return;
        }
        write_file(raw, data, 100000);
        snprintf(cmd, sizeof(cmd), "zstd -q -f -o '%s' '%s'", z, raw);
        e = system(cmd);
        fd = open(z, O_RDONLY | O_CLOEXEC);
        tap_ok(e == 0 && fd >= 0 && pread(fd, head, 4, 0) == 4 && zst_is_zstd(head, 4),
               "a plain zstd file is recognised as zstd");
        TAP_EQ_INT(fd >= 0 ? zst_reader_open(fd, &r) : -EBADF, -EBADMSG, "a plain zstd file is not seekable");
        if (fd >= 0)
                close(fd);
        tap_ok(!zst_is_zstd("\177ELF", 4), "an ELF file is not zstd");
        tap_ok(!zst_is_zstd("\x28\xb5\x2f", 3), "three bytes are not enough");
        unlink(raw);
        unlink(z);
        free(data);
}

static void write_errors(void) {
        uint8_t *data = make_data(40 * FRAME);

        for (unsigned threads = 1; threads <= 3; threads++) {
                struct zst_writer *w;
                int fd = open("/dev/full", O_WRONLY | O_CLOEXEC), e = -1, e2, e3;

                if (fd < 0) {
                        tap_skip("no /dev/full");
                        break;
                }
                if (zst_writer_new(fd, 1, threads, FRAME, &w) == 0) {
                        for (int k = 0; k < 40 && (e = zst_writer_write(w, data + k * FRAME, FRAME)) == 0; k++)
                                ;
                        e2 = zst_writer_write(w, data, 10);
                        e3 = zst_writer_finish(w, NULL);
                        zst_writer_free(w);
                        tap_ok(e == -ENOSPC && e2 == -ENOSPC && e3 == -ENOSPC,
                               "ENOSPC with %u threads: reported (%d), then sticky (%d, %d)", threads, e, e2, e3);
                }
                close(fd);
        }
        /* finishing with nothing written but an error from the last frame */
        {
                struct zst_writer *w;
                int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
                if (fd >= 0 && zst_writer_new(fd, 1, 2, FRAME, &w) == 0) {
                        int e = zst_writer_write(w, data, 100);
                        int e2 = zst_writer_finish(w, NULL);
                        zst_writer_free(w);
                        tap_ok(e == 0 && e2 == -ENOSPC, "ENOSPC at finish (%d, %d)", e, e2);
                }
                if (fd >= 0)
                        close(fd);
        }
        /* bad arguments */
        {
                struct zst_writer *w;
                TAP_EQ_INT(zst_writer_new(1, 1, 0, FRAME, &w), -EINVAL, "0 threads is refused");
                TAP_EQ_INT(zst_writer_new(1, 1, 1, ZST_MAX_FRAME_SIZE + 1, &w), -EINVAL,
                           "frames larger than readers accept are refused");
                TAP_EQ_INT(zst_writer_new(1, 1000, 1, FRAME, &w), -EINVAL, "an impossible level is refused");
        }
        free(data);
}

/* The writer with threads leaves nothing behind when freed mid-stream. */
static void free_mid_stream(void) {
        const char *path = path_in_tmp("mid.zst");
        uint8_t *data = make_data(10 * FRAME);
        struct zst_writer *w = NULL;
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        tap_ok(fd >= 0 && zst_writer_new(fd, 3, 4, FRAME, &w) == 0 && zst_writer_write(w, data, 10 * FRAME - 5) == 0,
               "4 threads: write without finishing");
        if (fd >= 0) {
                zst_writer_free(w);
                close(fd);
        }
        unlink(path);
        free(data);
}

int main(void) {
        static const int levels[] = { -5, 1, 3, 19 };
        const size_t sizes[] = { 0, 1, FRAME - 1, FRAME, FRAME + 1, (5u << 20) + 12345 };

        if (!mkdtemp(tmpdir)) {
                printf("Bail out! mkdtemp: %m\n");
                return 1;
        }
        have_zstd_tool = system("zstd --version >/dev/null 2>&1") == 0;
        if (!have_zstd_tool)
                printf("# no zstd tool: the zstd -d checks are skipped\n");

        for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
                for (unsigned threads = 1; threads <= 2; threads++)
                        for (size_t l = 0; l < sizeof(levels) / sizeof(levels[0]); l++)
                                round_trip(sizes[s], levels[l], threads);
        non_seekable();
        write_errors();
        free_mid_stream();
        hostile();

        free(good);
        free(orig);
        rmdir(tmpdir);
        return tap_done();
}
