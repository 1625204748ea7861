/* SPDX-License-Identifier: MIT */
/*
 * zstd's seekable format (contrib/seekable_format/zstd_seekable_compression_format.md):
 *
 *   frame 0 | frame 1 | ... | skippable frame: 0x184D2A5E, u32 size,
 *                              n × {u32 compressed, u32 decompressed [, u32 checksum]},
 *                              u32 n, u8 descriptor, u32 0x8F92EAB1
 *
 * all little-endian.  This is our own implementation: it links only libzstd
 * (+ pthread) so the crash handler can write cores with it without pulling in
 * the analyzer.
 *
 * We write no per-entry checksums (descriptor 0): every frame carries zstd's
 * own content checksum (ZSTD_c_checksumFlag), which the decoder verifies, so
 * a second XXH64 would only cost time.  Tables with checksums are read (the
 * entries are 12 bytes) but their checksum is not recomputed, for the same
 * reason.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>
#include <zstd_errors.h>

#include "util.h"
#include "zst_seekable.h"

#define ZSTD_FRAME_MAGIC        0xFD2FB528u
#define SKIPPABLE_MAGIC_MASK    0xFFFFFFF0u     /* 0x184D2A50 ... 0x184D2A5F */
#define SKIPPABLE_MAGIC_BASE    0x184D2A50u
#define SEEK_TABLE_MAGIC        0x184D2A5Eu
#define SEEKABLE_MAGIC          0x8F92EAB1u
#define FOOTER_SIZE             9u
#define SKIPPABLE_HEADER_SIZE   8u
#define DESC_CHECKSUM           0x80u
#define DESC_RESERVED           0x7Cu           /* bits 2-6: a format change we do not know */

#define CACHE_FRAMES            32      /* 8 MiB at the default frame size: a report revisits stacks, heap and data */

static uint32_t le32(const uint8_t *p) {
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v) {
        p[0] = v;
        p[1] = v >> 8;
        p[2] = v >> 16;
        p[3] = v >> 24;
}

/* ---- I/O helpers: whole buffers or an error ---- */

/* A short read means the file shrank under us or lied about its size: -EIO. */
static int pread_full(int fd, void *buf, size_t len, uint64_t off) {
        uint8_t *p = buf;

        while (len > 0) {
                ssize_t n = pread(fd, p, len, (off_t)off);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -EIO;
                p += n;
                len -= n;
                off += n;
        }
        return 0;
}

static int zstd_errno(size_t code) {
        return ZSTD_getErrorCode(code) == ZSTD_error_memory_allocation ? -ENOMEM : -EIO;
}

/* ================================ writing ================================ */

enum slot_state { SLOT_FREE, SLOT_QUEUED, SLOT_BUSY, SLOT_DONE };

/*
 * One frame in flight: its input, and its output once compressed.  The
 * slots form a ring: the caller fills them in ring order, the workers take
 * them in the same order, and the caller writes them in that order again,
 * so the file's frames are in input order without any reordering buffer.
 */
struct slot {
        uint8_t *in, *out;
        size_t in_len, out_len;
        enum slot_state state;
        int error;
};

struct zst_writer {
        int fd;
        size_t frame_size, bound;
        int error;                      /* sticky: once set, every call returns it */
        bool finished;
        uint64_t written;
        uint64_t submitted;             /* frames handed to compression, for ZST_MAX_FRAMES */

        uint8_t *table;                 /* 8-byte entries, in frame order */
        size_t n_frames, table_allocated;

        struct slot *slots;
        unsigned n_slots, fill, take;   /* fill: the caller's slot; take: the next for a worker */
        ZSTD_CCtx **cctx;               /* one per worker (or one for the caller) */

        pthread_t *workers;
        unsigned n_workers;
        bool locking, stop;
        pthread_mutex_t lock;
        pthread_cond_t work_cv, done_cv;
};

static int compress_slot(ZSTD_CCtx *cctx, size_t bound, struct slot *s) {
        size_t n = ZSTD_compress2(cctx, s->out, bound, s->in, s->in_len);

        if (ZSTD_isError(n))
                return zstd_errno(n);
        s->out_len = n;
        return 0;
}

struct worker_arg {
        struct zst_writer *w;
        ZSTD_CCtx *cctx;
};

static void *worker_main(void *p) {
        struct zst_writer *w = ((struct worker_arg *)p)->w;
        ZSTD_CCtx *cctx = ((struct worker_arg *)p)->cctx;

        free(p);
        pthread_mutex_lock(&w->lock);
        for (;;) {
                struct slot *s;

                while (!w->stop && w->slots[w->take].state != SLOT_QUEUED)
                        pthread_cond_wait(&w->work_cv, &w->lock);
                if (w->stop)
                        break;
                s = &w->slots[w->take];
                w->take = (w->take + 1) % w->n_slots;
                s->state = SLOT_BUSY;
                pthread_mutex_unlock(&w->lock);

                int r = compress_slot(cctx, w->bound, s);

                pthread_mutex_lock(&w->lock);
                s->error = r;
                s->state = SLOT_DONE;
                pthread_cond_broadcast(&w->done_cv);
        }
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

static int writer_fail(struct zst_writer *w, int r) {
        if (!w->error)
                w->error = r;
        return w->error;
}

/* Write a compressed slot and note its table entry; the caller's thread only. */
static int emit_slot(struct zst_writer *w, struct slot *s) {
        int r;

        if (s->error < 0)
                return writer_fail(w, s->error);
        if (w->n_frames + 1 > w->table_allocated) {
                size_t n = w->table_allocated ? 2 * w->table_allocated : 64;
                uint8_t *t = realloc(w->table, n * 8);

                if (!t)
                        return writer_fail(w, -ENOMEM);
                w->table = t;
                w->table_allocated = n;
        }
        r = write_all(w->fd, s->out, s->out_len);
        if (r < 0)
                return writer_fail(w, r);
        /* bound(ZST_MAX_FRAME_SIZE) and frame_size fit in 32 bits: checked in zst_writer_new */
        put_le32(w->table + 8 * w->n_frames, (uint32_t)s->out_len);
        put_le32(w->table + 8 * w->n_frames + 4, (uint32_t)s->in_len);
        w->n_frames++;
        w->written += s->out_len;
        return 0;
}

/*
 * Wait until slot i has nothing pending: write it when it holds a finished
 * frame.  With threads the oldest outstanding frame is always the next slot
 * in the ring, so waiting on it keeps the output in order.
 */
static int retire_slot(struct zst_writer *w, unsigned i) {
        struct slot *s = &w->slots[i];
        enum slot_state state;
        int r = 0;

        pthread_mutex_lock(&w->lock);
        while (s->state == SLOT_QUEUED || s->state == SLOT_BUSY)
                pthread_cond_wait(&w->done_cv, &w->lock);
        state = s->state;
        pthread_mutex_unlock(&w->lock);
        /* a DONE slot's buffers belong to the caller: workers only look at its state */
        if (state == SLOT_DONE) {
                if (!w->error)
                        r = emit_slot(w, s);
                s->in_len = 0;
                pthread_mutex_lock(&w->lock);
                s->state = SLOT_FREE;
                pthread_mutex_unlock(&w->lock);
        }
        return r;
}

/* The caller's slot is full (or final): compress it, here or in a worker. */
static int submit(struct zst_writer *w) {
        struct slot *s = &w->slots[w->fill];
        int r;

        if (w->submitted >= ZST_MAX_FRAMES)
                return writer_fail(w, -EFBIG);  /* readers would refuse the table */
        w->submitted++;
        if (w->n_workers == 0) {
                r = compress_slot(w->cctx[0], w->bound, s);
                if (r < 0)
                        return writer_fail(w, r);
                r = emit_slot(w, s);
                s->in_len = 0;
                return r;
        }
        pthread_mutex_lock(&w->lock);
        s->state = SLOT_QUEUED;
        pthread_cond_broadcast(&w->work_cv);
        pthread_mutex_unlock(&w->lock);
        w->fill = (w->fill + 1) % w->n_slots;
        return retire_slot(w, w->fill);
}

int zst_writer_new(int fd, int level, unsigned threads, size_t frame_size, struct zst_writer **ret) {
        struct zst_writer *w;
        unsigned n_ctx, started = 0;
        int r;

        if (fd < 0 || threads == 0 || threads > 256 || !ret)
                return -EINVAL;
        if (frame_size == 0)
                frame_size = ZST_DEFAULT_FRAME_SIZE;
        if (frame_size > ZST_MAX_FRAME_SIZE)
                return -EINVAL;         /* our own readers would refuse the file */
        if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel())
                return -EINVAL;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->fd = fd;
        w->frame_size = frame_size;
        w->bound = ZSTD_compressBound(frame_size);
        /* threads == 1: compress in the caller's thread, no slot ring, no locking */
        w->n_workers = threads > 1 ? threads : 0;
        w->n_slots = threads;
        n_ctx = threads;

        w->slots = calloc(w->n_slots, sizeof(*w->slots));
        w->cctx = calloc(n_ctx, sizeof(*w->cctx));
        if (!w->slots || !w->cctx) {
                r = -ENOMEM;
                goto fail;
        }
        for (unsigned i = 0; i < w->n_slots; i++) {
                w->slots[i].in = malloc(frame_size);
                w->slots[i].out = malloc(w->bound);
                if (!w->slots[i].in || !w->slots[i].out) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        for (unsigned i = 0; i < n_ctx; i++) {
                w->cctx[i] = ZSTD_createCCtx();
                if (!w->cctx[i]) {
                        r = -ENOMEM;
                        goto fail;
                }
                if (ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx[i], ZSTD_c_compressionLevel, level)) ||
                    ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx[i], ZSTD_c_checksumFlag, 1))) {
                        r = -EINVAL;
                        goto fail;
                }
        }
        if (w->n_workers > 0) {
                w->workers = calloc(w->n_workers, sizeof(*w->workers));
                if (!w->workers) {
                        r = -ENOMEM;
                        goto fail;
                }
                pthread_mutex_init(&w->lock, NULL);
                pthread_cond_init(&w->work_cv, NULL);
                pthread_cond_init(&w->done_cv, NULL);
                w->locking = true;
                for (unsigned i = 0; i < threads; i++) {
                        struct worker_arg *a = malloc(sizeof(*a));

                        if (!a) {
                                r = -ENOMEM;
                                goto fail_threads;
                        }
                        *a = (struct worker_arg) { .w = w, .cctx = w->cctx[i] };
                        r = -pthread_create(&w->workers[i], NULL, worker_main, a);
                        if (r < 0) {
                                free(a);
                                goto fail_threads;
                        }
                        started++;
                }
        }
        *ret = w;
        return 0;

fail_threads:
        w->n_workers = started;         /* zst_writer_free joins only the threads that exist */
fail:
        zst_writer_free(w);
        return r;
}

int zst_writer_write(struct zst_writer *w, const void *buf, size_t len) {
        const uint8_t *p = buf;

        if (w->error)
                return w->error;
        if (w->finished)
                return -EINVAL;
        while (len > 0) {
                struct slot *s = &w->slots[w->fill];
                size_t n = w->frame_size - s->in_len;

                if (n > len)
                        n = len;
                memcpy(s->in + s->in_len, p, n);
                s->in_len += n;
                p += n;
                len -= n;
                if (s->in_len == w->frame_size) {
                        int r = submit(w);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int write_table(struct zst_writer *w) {
        uint8_t head[SKIPPABLE_HEADER_SIZE], foot[FOOTER_SIZE];
        uint64_t body = (uint64_t)w->n_frames * 8 + FOOTER_SIZE;
        int r;

        put_le32(head, SEEK_TABLE_MAGIC);
        put_le32(head + 4, (uint32_t)body);     /* ≤ 8 × 2^24 + 9 */
        put_le32(foot, (uint32_t)w->n_frames);
        foot[4] = 0;                            /* no per-entry checksums: see the top of the file */
        put_le32(foot + 5, SEEKABLE_MAGIC);
        r = write_all(w->fd, head, sizeof(head));
        if (r >= 0 && w->n_frames > 0)
                r = write_all(w->fd, w->table, w->n_frames * 8);
        if (r >= 0)
                r = write_all(w->fd, foot, sizeof(foot));
        if (r < 0)
                return writer_fail(w, r);
        w->written += SKIPPABLE_HEADER_SIZE + body;
        return 0;
}

int zst_writer_finish(struct zst_writer *w, uint64_t *compressed) {
        int r;

        if (w->error)
                return w->error;
        if (w->finished)
                return -EINVAL;
        if (w->slots[w->fill].in_len > 0) {
                r = submit(w);
                if (r < 0)
                        return r;
        }
        /* drain the ring oldest first: the slot after the caller's, round to the caller's */
        for (unsigned k = 1; w->n_workers > 0 && k <= w->n_slots; k++) {
                r = retire_slot(w, (w->fill + k) % w->n_slots);
                if (r < 0)
                        return r;
        }
        r = write_table(w);
        if (r < 0)
                return r;
        w->finished = true;
        if (compressed)
                *compressed = w->written;
        return 0;
}

void zst_writer_free(struct zst_writer *w) {
        if (!w)
                return;
        if (w->locking) {
                pthread_mutex_lock(&w->lock);
                w->stop = true;
                pthread_cond_broadcast(&w->work_cv);
                pthread_mutex_unlock(&w->lock);
                for (unsigned i = 0; i < w->n_workers; i++)
                        pthread_join(w->workers[i], NULL);
                pthread_cond_destroy(&w->work_cv);
                pthread_cond_destroy(&w->done_cv);
                pthread_mutex_destroy(&w->lock);
        }
        for (unsigned i = 0; w->slots && i < w->n_slots; i++) {
                free(w->slots[i].in);
                free(w->slots[i].out);
        }
        for (unsigned i = 0; w->cctx && i < w->n_slots; i++)
                ZSTD_freeCCtx(w->cctx[i]);
        free(w->cctx);
        free(w->slots);
        free(w->workers);
        free(w->table);
        free(w);
}

/* ================================ reading ================================ */

struct cached_frame {
        uint8_t *buf;
        size_t cap;
        uint32_t frame;
        bool valid;
        uint64_t used;                  /* LRU stamp */
};

struct zst_reader {
        int fd;                         /* our own dup */
        uint32_t n;
        uint64_t *doff;                 /* n + 1: where frame i starts in the original; doff[n] = size */
        uint64_t *coff;                 /* n + 1: where frame i starts in the file */
        ZSTD_DCtx *dctx;
        uint8_t *cbuf;                  /* one compressed frame */
        size_t ccap;
        struct cached_frame cache[CACHE_FRAMES];
        unsigned last;                  /* the cache entry of the last read: most reads hit it again */
        uint64_t clock;
};

bool zst_is_zstd(const void *head, size_t len) {
        uint32_t m;

        if (len < 4)
                return false;
        m = le32(head);
        /* zstd streams may begin with skippable frames (pzstd writes one before each frame) */
        return m == ZSTD_FRAME_MAGIC || (m & SKIPPABLE_MAGIC_MASK) == SKIPPABLE_MAGIC_BASE;
}

/*
 * Validate the seek table of a file of fsize bytes and build the cumulative
 * offsets.  Every field is hostile: the count is bounded before anything is
 * allocated from it, the table must fit in the file, the frames plus the
 * table must make up the file exactly, and no frame may claim more than
 * ZST_MAX_FRAME_SIZE.
 */
static int read_table(struct zst_reader *r, uint64_t fsize) {
        uint8_t foot[FOOTER_SIZE], head[SKIPPABLE_HEADER_SIZE], chunk[12 * 1024];
        uint64_t table_size, table_off, pos;
        uint64_t max_csize = ZSTD_compressBound(ZST_MAX_FRAME_SIZE);
        unsigned es;
        uint32_t n;
        int e;

        if (fsize < SKIPPABLE_HEADER_SIZE + FOOTER_SIZE)
                return -EBADMSG;
        e = pread_full(r->fd, foot, sizeof(foot), fsize - FOOTER_SIZE);
        if (e < 0)
                return e;
        if (le32(foot + 5) != SEEKABLE_MAGIC)
                return -EBADMSG;        /* plain zstd, or not zstd at all */
        if (foot[4] & DESC_RESERVED)
                return -EBADMSG;
        es = foot[4] & DESC_CHECKSUM ? 12 : 8;
        n = le32(foot);
        if (n > ZST_MAX_FRAMES)
                return -EBADMSG;
        table_size = SKIPPABLE_HEADER_SIZE + (uint64_t)n * es + FOOTER_SIZE;
        if (table_size > fsize)
                return -EBADMSG;
        table_off = fsize - table_size;
        e = pread_full(r->fd, head, sizeof(head), table_off);
        if (e < 0)
                return e;
        if (le32(head) != SEEK_TABLE_MAGIC || le32(head + 4) != table_size - SKIPPABLE_HEADER_SIZE)
                return -EBADMSG;

        r->doff = malloc(((size_t)n + 1) * sizeof(*r->doff));
        r->coff = malloc(((size_t)n + 1) * sizeof(*r->coff));
        if (!r->doff || !r->coff)
                return -ENOMEM;
        r->doff[0] = r->coff[0] = 0;
        pos = table_off + SKIPPABLE_HEADER_SIZE;
        for (uint32_t i = 0; i < n;) {
                uint32_t batch = (uint32_t)(sizeof(chunk) / es);

                if (batch > n - i)
                        batch = n - i;
                e = pread_full(r->fd, chunk, (size_t)batch * es, pos);
                if (e < 0)
                        return e;
                pos += (uint64_t)batch * es;
                for (uint32_t k = 0; k < batch; k++, i++) {
                        uint32_t csize = le32(chunk + k * es), dsize = le32(chunk + k * es + 4);

                        /* a zstd or skippable frame is at least 8 bytes: this also bounds n by the file */
                        if (csize < 8 || csize > max_csize || dsize > ZST_MAX_FRAME_SIZE)
                                return -EBADMSG;
                        /* n ≤ 2^24 entries of < 2^32 each: no overflow in 64 bits */
                        r->coff[i + 1] = r->coff[i] + csize;
                        r->doff[i + 1] = r->doff[i] + dsize;
                }
        }
        if (r->coff[n] != table_off)
                return -EBADMSG;        /* the frames and the table do not make up the file */
        r->n = n;
        return 0;
}

int zst_reader_open(int fd, struct zst_reader **ret) {
        struct zst_reader *r;
        struct stat st;
        int e;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;         /* we need a stable size and pread */
        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        /* our own descriptor: the caller may close theirs once we are open */
        r->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (r->fd < 0) {
                e = -errno;
                free(r);
                return e;
        }
        e = read_table(r, (uint64_t)st.st_size);
        if (e >= 0) {
                r->dctx = ZSTD_createDCtx();
                if (!r->dctx)
                        e = -ENOMEM;
        }
        if (e < 0) {
                zst_reader_free(r);
                return e;
        }
        *ret = r;
        return 0;
}

uint64_t zst_reader_size(const struct zst_reader *r) {
        return r->doff[r->n];
}

/* The frame holding byte off (< size): the last frame starting at or before it, so never an empty one. */
static uint32_t find_frame(const struct zst_reader *r, uint64_t off) {
        uint32_t lo = 0, hi = r->n;     /* doff[lo] ≤ off < doff[hi] */

        while (hi - lo > 1) {
                uint32_t mid = lo + (hi - lo) / 2;

                if (r->doff[mid] <= off)
                        lo = mid;
                else
                        hi = mid;
        }
        return lo;
}

static int load_frame(struct zst_reader *r, uint32_t i, const uint8_t **data) {
        struct cached_frame *c = &r->cache[r->last];
        size_t dsize = r->doff[i + 1] - r->doff[i], csize = r->coff[i + 1] - r->coff[i];
        size_t got;
        int e;

        if (!(c->valid && c->frame == i)) {
                unsigned victim = 0;

                c = NULL;
                for (unsigned k = 0; k < CACHE_FRAMES; k++) {
                        struct cached_frame *x = &r->cache[k];

                        if (x->valid && x->frame == i) {
                                c = x;
                                r->last = k;
                                break;
                        }
                        if (!x->valid || (r->cache[victim].valid && x->used < r->cache[victim].used))
                                victim = k;
                }
                if (!c) {
                        c = &r->cache[victim];
                        r->last = victim;
                        c->valid = false;
                        if (c->cap < dsize) {
                                free(c->buf);
                                c->cap = 0;
                                c->buf = malloc(dsize);
                                if (!c->buf)
                                        return -ENOMEM;
                                c->cap = dsize;
                        }
                        if (r->ccap < csize) {
                                free(r->cbuf);
                                r->ccap = 0;
                                r->cbuf = malloc(csize);
                                if (!r->cbuf)
                                        return -ENOMEM;
                                r->ccap = csize;
                        }
                        e = pread_full(r->fd, r->cbuf, csize, r->coff[i]);
                        if (e < 0)
                                return e;
                        /* single-shot: decodes straight into buf, so a frame cannot make us allocate a window */
                        got = ZSTD_decompressDCtx(r->dctx, c->buf, dsize, r->cbuf, csize);
                        if (ZSTD_isError(got))
                                return ZSTD_getErrorCode(got) == ZSTD_error_memory_allocation ? -ENOMEM : -EBADMSG;
                        if (got != dsize)
                                return -EBADMSG;        /* the table lied about this frame */
                        c->frame = i;
                        c->valid = true;
                }
        }
        c->used = ++r->clock;
        *data = c->buf;
        return 0;
}

int zst_reader_pread(struct zst_reader *r, void *buf, size_t len, uint64_t off) {
        uint64_t size = r->doff[r->n];
        uint8_t *out = buf;

        if (off > size || len > size - off)
                return -EIO;
        while (len > 0) {
                uint32_t i = find_frame(r, off);
                uint64_t in_frame = off - r->doff[i];
                size_t n = r->doff[i + 1] - off;
                const uint8_t *data;
                int e;

                e = load_frame(r, i, &data);
                if (e < 0)
                        return e;
                if (n > len)
                        n = len;
                memcpy(out, data + in_frame, n);
                out += n;
                off += n;
                len -= n;
        }
        return 0;
}

void zst_reader_free(struct zst_reader *r) {
        if (!r)
                return;
        if (r->fd >= 0)
                close(r->fd);
        for (unsigned k = 0; k < CACHE_FRAMES; k++)
                free(r->cache[k].buf);
        free(r->cbuf);
        free(r->doff);
        free(r->coff);
        ZSTD_freeDCtx(r->dctx);
        free(r);
}
