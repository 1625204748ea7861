/* SPDX-License-Identifier: MIT */
/*
 * py_frame: a thread's Python frames, innermost first.
 *
 * <=3.10 chains PyFrameObjects through f_back; 3.11+ chains
 * _PyInterpreterFrames through `previous`, with shim frames owned by the C
 * stack (3.12, 3.13) or the interpreter (3.14+: entry frames, and 3.15's
 * base frame at the bottom), 3.14's tagged references (_PyStackRef) to the
 * code object, and incomplete frames (not yet past RESUME) that Python
 * itself hides.  The walk is bounded by a frame limit and stops at the
 * first repeated frame, so a corrupt list ends in a marked, partial result.
 *
 * Code objects are decoded once per core (py_frame.h).
 */
#include <string.h>

#include "line_table.h"
#include "py_frame.h"
#include "py_locals.h"
#include "py_object.h"

#define MAX_LINE_TABLE (1u << 20)

struct code_cache {
        struct code_info **slots;
        size_t n, cap;
};

void code_cache_free(struct code_cache *c) {
        if (!c)
                return;
        for (size_t i = 0; i < c->cap; i++) {
                if (!c->slots[i])
                        continue;
                free(c->slots[i]->file);
                free(c->slots[i]->name);
                free(c->slots[i]->table);
                code_vars_free(c->slots[i]->vars);
                free(c->slots[i]);
        }
        free(c->slots);
        free(c);
}

static size_t slot_of(const struct code_cache *c, uint64_t addr) {
        return (size_t)((addr >> 4) * 0x9E3779B97F4A7C15ULL >> 20) & (c->cap - 1);
}

static int cache_insert(struct code_cache *c, struct code_info *ci) {
        if ((c->n + 1) * 2 > c->cap) {
                struct code_cache bigger = { .cap = c->cap ? c->cap * 2 : 64 };

                bigger.slots = calloc(bigger.cap, sizeof(*bigger.slots));
                if (!bigger.slots)
                        return -ENOMEM;
                for (size_t i = 0; i < c->cap; i++)
                        if (c->slots[i]) {
                                size_t h = slot_of(&bigger, c->slots[i]->addr);
                                while (bigger.slots[h])
                                        h = (h + 1) & (bigger.cap - 1);
                                bigger.slots[h] = c->slots[i];
                        }
                free(c->slots);
                c->slots = bigger.slots;
                c->cap = bigger.cap;
        }
        size_t h = slot_of(c, ci->addr);
        while (c->slots[h])
                h = (h + 1) & (c->cap - 1);
        c->slots[h] = ci;
        c->n++;
        return 0;
}

static struct code_info *cache_find(const struct code_cache *c, uint64_t addr) {
        if (!c->cap)
                return NULL;
        for (size_t h = slot_of(c, addr); c->slots[h]; h = (h + 1) & (c->cap - 1))
                if (c->slots[h]->addr == addr)
                        return c->slots[h];
        return NULL;
}

static void decode_code(struct analysis *a, struct code_info *ci) {
        struct target *t = a->target;
        const struct py_layout *l = &a->layout;
        uint64_t filename, name, table;
        int32_t firstlineno, firsttraceable = 0;
        py_off table_off = l->code.linetable != PY_OFF_NONE ? l->code.linetable : l->code.lnotab;

        if (py_read_ptr(t, ci->addr, l->code.filename, &filename) < 0 ||
            py_read_ptr(t, ci->addr, l->code.name, &name) < 0 ||
            py_read_i32(t, ci->addr, l->code.firstlineno, &firstlineno) < 0)
                return;
        if (l->code.firsttraceable != PY_OFF_NONE &&
            py_read_i32(t, ci->addr, l->code.firsttraceable, &firsttraceable) < 0)
                return;
        if (py_read_text(t, l, filename, PY_MAX_NAME, &ci->file) < 0 ||
            py_read_text(t, l, name, PY_MAX_NAME, &ci->name) < 0)
                return;
        ci->firstlineno = firstlineno;
        ci->firsttraceable = firsttraceable;
        if (py_read_ptr(t, ci->addr, table_off, &table) == 0)
                py_read_bytes(t, l, table, MAX_LINE_TABLE, &ci->table, &ci->table_len);
        ci->valid = true;
}

struct code_info *py_code_info(struct analysis *a, uint64_t addr) {
        struct code_info *ci;

        if (!a->codes) {
                a->codes = calloc(1, sizeof(*a->codes));
                if (!a->codes)
                        return target_out_of_memory(a->target), NULL;
        }
        ci = cache_find(a->codes, addr);
        if (ci)
                return ci->valid ? ci : NULL;
        ci = calloc(1, sizeof(*ci));
        if (!ci)
                return target_out_of_memory(a->target), NULL;
        ci->addr = addr;
        decode_code(a, ci);
        if (cache_insert(a->codes, ci) < 0) {
                free(ci->file);
                free(ci->name);
                free(ci->table);
                free(ci);
                return target_out_of_memory(a->target), NULL;
        }
        return ci->valid ? ci : NULL;
}

static int code_line(const struct py_layout *l, const struct code_info *ci, int64_t offset) {
        int line;

        if (offset < 0)
                return ci->firstlineno;
        if (!ci->table)
                return -1;
        line = py_line_for_offset(l->line_format, ci->table, ci->table_len, ci->firstlineno, offset);
        return line;
}

static int push_frame(struct thread_info *th, const struct code_info *ci, int line, uint64_t addr) {
        struct py_frame_info *f;

        if (grow_array(&th->frames, &th->allocated, th->n_frames + 1, sizeof(*th->frames)) < 0)
                return -ENOMEM;
        f = &th->frames[th->n_frames];
        f->function = strdup(ci->name);
        f->file = strdup(ci->file);
        if (!f->function || !f->file) {
                free(f->function);
                free(f->file);
                return -ENOMEM;
        }
        f->line = line;
        f->addr = addr;
        f->code = ci->addr;
        f->entry = false;
        f->shim = 0;
        f->vars = NULL;
        f->n_vars = 0;
        f->vars_error = NULL;
        th->n_frames++;
        return 0;
}

/* Record why the walk stopped (first reason wins); fmt takes one unsigned long long. */
#define mark_truncated(th, fmt, value) do {                                              \
                if (!(th)->truncated &&                                                  \
                    asprintf(&(th)->truncated, fmt, (unsigned long long)(value)) < 0)    \
                        (th)->truncated = NULL;                                          \
        } while (0)

/* Read the fields of one frame in a single copy: frames are small and read often. */
static size_t frame_span(const struct py_layout *l) {
        py_off offs[] = {
                l->frame.back, l->frame.code, l->frame.lasti,
                l->iframe.previous, l->iframe.code, l->iframe.instr, l->iframe.owner, l->iframe.is_entry,
                l->iframe.tlbc_index,
        };
        py_off max = 0;

        for (size_t i = 0; i < ELEMENTSOF(offs); i++)
                max = MAX(max, offs[i]);
        return (size_t)max + 8;
}

/*
 * Where the bytecode a frame runs starts.  Free-threaded 3.14+ gives each
 * thread that specializes code its own copy: the frame's tlbc_index picks
 * it from the code object's co_tlbc array, whose entry 0 is
 * co_code_adaptive.  Like CPython's own remote reader, fall back to
 * co_code_adaptive when the index or the array cannot be believed.
 */
#define TLBC_MAX 4096   /* copies of one code object: one per thread at most */

static uint64_t bytecode_start(struct analysis *a, uint64_t code, const uint8_t *frame) {
        const struct py_layout *l = &a->layout;
        uint64_t main = code + l->code.code_adaptive, array, entry;
        int64_t size;
        int32_t index;

        if (l->iframe.tlbc_index == PY_OFF_NONE || l->code.tlbc == PY_OFF_NONE)
                return main;
        index = py_field_i32(frame, l->iframe.tlbc_index);
        if (index <= 0 || index >= TLBC_MAX ||
            py_read_ptr(a->target, code, l->code.tlbc, &array) < 0 || !array ||
            py_read_i64(a->target, array, 0, &size) < 0 || index >= size ||
            py_read_ptr(a->target, array, 8 + 8 * (py_off)index, &entry) < 0 || !entry)
                return main;
        return entry;
}

/* single: the one frame at addr only (a generator's, which runs on nobody's stack while suspended) */
static void walk(struct analysis *a, struct thread_info *th, uint64_t addr, size_t max_frames, bool single) {
        const struct py_layout *l = &a->layout;
        _cleanup_(addr_set_clear) struct addr_set seen = {};
        size_t span = frame_span(l);
        uint8_t buf[512];
        bool objects = l->frame_kind == PY_FRAMES_OBJECTS;

        if (span > sizeof(buf)) {
                mark_truncated(th, "frame layout too large (%llu bytes)", span);
                return;
        }
        while (addr) {
                const struct code_info *ci;
                uint64_t code, next;
                int64_t offset;
                int r;

                if (th->n_frames >= max_frames) {
                        mark_truncated(th, "depth limit of %llu frames reached", max_frames);
                        return;
                }
                r = addr_set_add(&seen, addr);
                if (r == 0) {
                        mark_truncated(th, "cycle in the frame list at 0x%llx", addr);
                        return;
                }
                if (r < 0)
                        target_out_of_memory(a->target);
                if (r < 0 || target_read(a->target, addr, buf, span) < 0) {
                        mark_truncated(th, "unreadable frame at 0x%llx", addr);
                        return;
                }
                if (objects) {
                        int32_t lasti = py_field_i32(buf, l->frame.lasti);

                        code = py_field_u64(buf, l->frame.code);
                        next = py_field_u64(buf, l->frame.back);
                        /* 3.10 counts code units, earlier versions bytes */
                        offset = lasti < 0 ? -1 : l->line_format == PY_LINES_LINETABLE310 ? 2 * (int64_t)lasti : lasti;
                } else {
                        int owner = py_field_u8(buf, l->iframe.owner);
                        uint64_t instr = py_field_u64(buf, l->iframe.instr);

                        next = py_field_u64(buf, l->iframe.previous);
                        if (owner >= 0 && l->owner_cstack >= 0 && owner >= l->owner_cstack) {
                                /* a shim between C and Python (3.12+), an entry or base frame
                                 * (3.14+): the frame before it was entered from C */
                                /* the first one only: 3.15's base frame (in the thread state, at
                                 * the very end) follows the outermost entry frame */
                                if (th->n_frames && !th->frames[th->n_frames - 1].shim) {
                                        th->frames[th->n_frames - 1].entry = true;
                                        th->frames[th->n_frames - 1].shim = addr;
                                }
                                addr = single ? 0 : next;
                                continue;
                        }
                        code = py_field_u64(buf, l->iframe.code);
                        if (l->stackrefs)       /* a tagged int is no code object; else drop the tag */
                                code = (code & 3) == 3 ? 0 : code & ~(uint64_t)1;
                        ci = code ? py_code_info(a, code) : NULL;
                        if (!ci) {
                                mark_truncated(th, "unreadable code object in frame 0x%llx", addr);
                                return;
                        }
                        uint64_t start = bytecode_start(a, code, buf);
                        offset = instr >= start - 2 && instr - start < (1u << 30) ? (int64_t)(instr - start) : -2;
                        /* not yet past its first instructions: Python hides these too */
                        if (owner != l->owner_generator && offset < 2 * (int64_t)ci->firsttraceable) {
                                addr = single ? 0 : next;
                                continue;
                        }
                        if (push_frame(th, ci, code_line(l, ci, offset), addr) < 0) {
                                target_out_of_memory(a->target);
                                mark_truncated(th, "out of memory at frame 0x%llx", addr);
                                return;
                        }
                        if (py_field_u8(buf, l->iframe.is_entry) > 0)
                                th->frames[th->n_frames - 1].entry = true;
                        addr = single ? 0 : next;
                        continue;
                }
                ci = code ? py_code_info(a, code) : NULL;
                if (!ci) {
                        mark_truncated(th, "unreadable code object in frame 0x%llx", addr);
                        return;
                }
                if (push_frame(th, ci, code_line(l, ci, offset), addr) < 0) {
                        target_out_of_memory(a->target);
                        mark_truncated(th, "out of memory at frame 0x%llx", addr);
                        return;
                }
                addr = single ? 0 : next;
        }
}

void py_frames_walk(struct analysis *a, struct thread_info *th, uint64_t addr, size_t max_frames) {
        walk(a, th, addr, max_frames, false);
}

int py_frame_add(struct analysis *a, struct thread_info *th, uint64_t frame) {
        size_t n = th->n_frames;

        walk(a, th, frame, SIZE_MAX, true);
        return th->n_frames > n ? 0 : -EFAULT;
}
