/* SPDX-License-Identifier: MIT */
/*
 * py_runtime: find the CPython interpreter in a core without running
 * anything, and list its threads with their GIL and GC state.
 *
 * Order of trust: the interpreter's own symbols (_PyRuntime, interp_head)
 * in .dynsym/.symtab, then the .PyRuntime section, then (with --exhaustive)
 * a scan of writable memory.  Whatever is found is validated — the first
 * thread state must point back at its interpreter — before it is used.
 */
#include <ctype.h>
#include <stdint.h>
#include <string.h>

#include "py_frame.h"
#include "py_object.h"
#include "py_runtime.h"

#define MAX_INTERPRETERS 256
#define MAX_THREADS 65536

enum { SYM_RUNTIME, SYM_INTERP_HEAD, SYM_TSTATE_CURRENT, SYM_VERSION, SYM_GC_COLLECTING, SYM_COUNT };
static const char *const sym_names[SYM_COUNT] = {
        [SYM_RUNTIME] = "_PyRuntime",
        [SYM_INTERP_HEAD] = "interp_head",
        [SYM_TSTATE_CURRENT] = "_PyThreadState_Current",
        [SYM_VERSION] = "Py_Version",
        [SYM_GC_COLLECTING] = "collecting",
};

struct py_found {
        struct module *module;
        uint64_t bias;
        uint64_t sym[SYM_COUNT];        /* runtime addresses, 0 when absent */
        uint64_t runtime;               /* _PyRuntime, 3.7+ */
        uint64_t interp;                /* the first interpreter */
};

/* "python3.11", "libpython2.7.so.1.0" -> 3, 11 */
static bool version_from_name(const char *path, unsigned *major, unsigned *minor) {
        const char *base = strrchr(path, '/');
        const char *p;

        base = base ? base + 1 : path;
        for (p = strstr(base, "python"); p; p = strstr(p + 1, "python")) {
                const char *q = p + 6;
                unsigned ma, mi;

                if (!isdigit((unsigned char)q[0]) || q[1] != '.' || !isdigit((unsigned char)q[2]))
                        continue;
                ma = q[0] - '0';
                mi = 0;
                for (q += 2; isdigit((unsigned char)*q) && mi < 1000; q++)
                        mi = mi * 10 + (*q - '0');
                *major = ma;
                *minor = mi;
                return true;
        }
        return false;
}

static bool is_python_module(const struct module *m) {
        const char *base = strrchr(m->path, '/');

        base = base ? base + 1 : m->path;
        return strstr(base, "python") != NULL;
}

/* libpython3.11.so.1.0, libpython2.7.so: where the interpreter lives when not in the executable */
static bool is_libpython(const struct module *m) {
        const char *base = strrchr(m->path, '/');

        base = base ? base + 1 : m->path;
        return strncmp(base, "libpython", 9) == 0;
}

/* The order in which modules are searched for the interpreter's symbols: the executable (a static
 * libpython, as Debian's), libpython, then any other file named like python — not before, since
 * every extension module (_json.cpython-311-x86_64-linux-gnu.so) is named so, and opening each
 * costs more than the rest of a Python-only analysis. */
static bool search_pass(const struct target *t, const struct module *m, size_t pass) {
        switch (pass) {
        case 0:
                return m == t->exe;
        case 1:
                return m != t->exe && is_libpython(m);
        default:
                return m != t->exe && !is_libpython(m) && is_python_module(m);
        }
}

/* A thread state list that starts at `interp` and points back at it. */
static bool interp_valid(struct target *t, const struct py_layout *l, uint64_t interp) {
        uint64_t tstate, back;

        if (!interp || (interp & 7))
                return false;
        if (py_read_ptr(t, interp, l->interp.tstate_head, &tstate) < 0)
                return false;
        if (!tstate)
                return true;    /* an interpreter with no threads (finalizing) */
        if (tstate & 7)
                return false;
        if (py_read_ptr(t, tstate, l->tstate.interp, &back) < 0)
                return false;
        return back == interp;
}

/* Why the interpreter in this core cannot be read (a version we do not know), for the one-line
 * error; empty when nothing was refused. */
static char unsupported[320];

/* "3.16.0", "3.15.0b3" from PY_VERSION_HEX */
static void version_text(uint64_t hex, char *buf, size_t size) {
        static const char *const levels[16] = { [0xA] = "a", [0xB] = "b", [0xC] = "rc" };
        unsigned level = (hex >> 4) & 0xF;

        if (level == 0xF || !levels[level])
                snprintf(buf, size, "%u.%u.%u", (unsigned)(hex >> 24) & 0xff, (unsigned)(hex >> 16) & 0xff,
                         (unsigned)(hex >> 8) & 0xff);
        else
                snprintf(buf, size, "%u.%u.%u%s%u", (unsigned)(hex >> 24) & 0xff, (unsigned)(hex >> 16) & 0xff,
                         (unsigned)(hex >> 8) & 0xff, levels[level], (unsigned)hex & 0xF);
}

/*
 * The _Py_DebugOffsets block at the start of _PyRuntime (3.13+): 1 and the
 * layout, 0 when there is no block (an older version), -1 when there is one
 * we cannot read (unsupported[] says why).
 */
static int layout_from_runtime(struct target *t, const struct module *m, uint64_t runtime, struct py_layout *out) {
        uint8_t block[PY_DEBUG_OFFSETS_MAX];
        uint64_t version = 0;
        char v[32];
        int r;

        if (target_read(t, runtime, block, sizeof(block)) < 0 || memcmp(block, "xdebugpy", 8) != 0)
                return 0;
        r = py_layout_from_debug_offsets(block, sizeof(block), out, &version);
        if (r == 0)
                return 1;
        version_text(version, v, sizeof(v));
        if (r == -EPROTONOSUPPORT && (version >> 24) == 3 && ((version >> 16) & 0xff) >= 13)
                snprintf(unsupported, sizeof(unsupported),
                         "Python %s (%s) is not supported: this pystack reads 2.7, 3.6 to 3.12, and 3.13 "
                         "from 3.13.0rc2, 3.14 from 3.14.0b2, 3.15 from 3.15.0b4 on", v, m->path);
        else if (r == -EPROTONOSUPPORT)
                snprintf(unsupported, sizeof(unsupported),
                         "%s: its _Py_DebugOffsets block declares Python %s, which has no such block: "
                         "the block is damaged", m->path, v);
        else
                snprintf(unsupported, sizeof(unsupported),
                         "Python %s (%s): its _Py_DebugOffsets block is damaged", v, m->path);
        return -1;
}

static int lookup_symbols(struct target *t, struct module *m, struct py_found *f) {
        struct elf_image *img = target_module_image(t, m);
        uint64_t values[SYM_COUNT] = {}, addr, size;

        if (!img)
                return -ENOENT;
        f->module = m;
        f->bias = target_module_bias(t, m);
        /* 3.7+ exports _PyRuntime, and then needs none of the other names:
         * the much larger .symtab is read for 2.7, 3.6 and odd builds only. */
        elf_image_symbols(img, true, sym_names, values, NULL, SYM_COUNT);
        if (!values[SYM_RUNTIME])
                elf_image_symbols(img, false, sym_names, values, NULL, SYM_COUNT);
        for (size_t i = 0; i < SYM_COUNT; i++)
                f->sym[i] = values[i] ? values[i] + f->bias : 0;
        if (!f->sym[SYM_RUNTIME] && elf_image_section(img, ".PyRuntime", &addr, &size) == 0 && addr)
                f->sym[SYM_RUNTIME] = addr + f->bias;
        return 0;
}

/* Decide the version and layout for a module that has the interpreter's symbols. */
static bool pick_layout(struct analysis *a, struct py_found *f) {
        struct target *t = a->target;
        const struct py_layout *l;
        unsigned major = 0, minor = 0;

        int from_block = f->sym[SYM_RUNTIME] ? layout_from_runtime(t, f->module, f->sym[SYM_RUNTIME], &a->layout) : 0;

        if (from_block > 0) {
                a->py_major = a->layout.major;
                a->py_minor = a->layout.minor;
                return true;
        }
        if (from_block < 0)
                return false;   /* the interpreter said what it is: never guess past that */
        uint32_t hex;
        if (f->sym[SYM_VERSION] && target_read(t, f->sym[SYM_VERSION], &hex, sizeof(hex)) == 0 &&
            (hex >> 24) >= 2 && (hex >> 24) <= 3) {
                major = hex >> 24;
                minor = (hex >> 16) & 0xff;
        } else if (!version_from_name(f->module->path, &major, &minor) &&
                   !(t->exe && version_from_name(t->exe->path, &major, &minor)))
                return false;
        l = py_layout_for(major, minor);
        if (!l) {
                snprintf(unsupported, sizeof(unsupported), "Python %u.%u (%s) is not supported", major, minor,
                         f->module->path);
                return false;
        }
        a->layout = *l;
        py_layout_for_machine(&a->layout, a->core->arch->machine);
        a->py_major = major;
        a->py_minor = minor;
        return true;
}

static bool find_interp(struct analysis *a, struct py_found *f) {
        struct target *t = a->target;
        const struct py_layout *l = &a->layout;
        uint64_t interp = 0;

        if (l->runtime_kind == PY_RUNTIME_PYRUNTIME) {
                f->runtime = f->sym[SYM_RUNTIME];
                if (py_read_ptr(t, f->runtime, l->runtime.interpreters_head, &interp) < 0)
                        return false;
        } else if (!f->sym[SYM_INTERP_HEAD] || target_read_u64(t, f->sym[SYM_INTERP_HEAD], &interp) < 0)
                return false;
        if (!interp_valid(t, l, interp))
                return false;
        f->interp = interp;
        return true;
}

/*
 * Whether the core's thread ct is the one whose pthread_t is pthread_id: its
 * thread pointer says so (x86-64's fs base is the pthread_t, aarch64's
 * tpidr_el0 lies just past it) or, when the core did not record the thread
 * pointer (qemu-user's cores have no NT_ARM_TLS), the kernel tid glibc keeps
 * in that struct pthread is ct's.
 */
static bool is_pthread_of(struct analysis *a, const struct core_thread *ct, uint64_t pthread_id) {
        int32_t tid;

        if (!pthread_id)
                return false;
        if (ct->tp)
                return core_thread_pthread(a->core->arch, ct) == pthread_id;
        return target_read(a->target, pthread_id + a->core->arch->pthread_tid, &tid, sizeof(tid)) == 0 &&
               tid == ct->tid;
}

/*
 * A scanned candidate needs more proof than a symbol: its first thread must
 * also be one of the core's threads (its pthread_t is that thread's).
 */
static bool interp_proven(struct analysis *a, uint64_t interp) {
        struct target *t = a->target;
        const struct py_layout *l = &a->layout;
        uint64_t tstate, pthread_id;

        if (!interp_valid(t, l, interp) || py_read_ptr(t, interp, l->interp.tstate_head, &tstate) < 0 || !tstate ||
            py_read_ptr(t, tstate, l->tstate.thread_id, &pthread_id) < 0)
                return false;
        for (size_t i = 0; i < a->core->n_threads; i++)
                if (is_pthread_of(a, &a->core->threads[i], pthread_id))
                        return true;
        return false;
}

static uint64_t scan_segment(struct analysis *a, const struct core_segment *s) {
        const struct core_file *c = a->core;
        uint64_t buf[8192];

        for (uint64_t off = 0; off + 8 <= s->filesz; off += sizeof(buf)) {
                size_t n = MIN((uint64_t)sizeof(buf), s->filesz - off) / 8;

                if (c->src.pread(c->src.ctx, buf, n * 8, s->offset + off) < 0)
                        return 0;
                for (size_t k = 0; k < n; k++)
                        if (buf[k] && !(buf[k] & 7) && interp_proven(a, buf[k]))
                                return buf[k];
        }
        return 0;
}

/*
 * --exhaustive: no usable symbols (a stripped binary).  A pointer to the
 * interpreter is looked for in writable memory — the interpreter module's
 * own data first, where the runtime lives, then everything else; the runtime
 * is then the place in the module's data that points at it.
 */
static bool scan_for_interp(struct analysis *a, struct py_found *f) {
        struct target *t = a->target;
        const struct core_file *c = a->core;
        const struct py_layout *l = &a->layout;

        for (int pass = 0; pass < 2 && !f->interp; pass++)
                for (size_t i = 0; i < c->n_segments && !f->interp; i++) {
                        const struct core_segment *s = &c->segments[i];
                        bool own = f->module && s->vaddr >= f->module->start && s->vaddr < f->module->end;

                        if (!(s->flags & 2 /* PF_W */) || s->filesz == 0 || own != (pass == 0))
                                continue;
                        f->interp = scan_segment(a, s);
                }
        if (!f->interp)
                return false;
        if (l->runtime_kind == PY_RUNTIME_PYRUNTIME && f->module) {
                /* the runtime holds interpreters.head: find a word in the module's range equal to it */
                for (uint64_t p = f->module->start; p + 8 <= f->module->end && !f->runtime; p += 8) {
                        uint64_t v;
                        if (target_read_u64(t, p, &v) == 0 && v == f->interp &&
                            p >= (uint64_t)l->runtime.interpreters_head)
                                f->runtime = p - l->runtime.interpreters_head;
                }
        }
        strv_addf(&a->warnings, "interpreter found by scanning memory (--exhaustive) at 0x%llx",
                  (unsigned long long)f->interp);
        return true;
}

/*
 * 3.13+ without the runtime's symbol or section (stripped further than
 * Debian strips): _PyRuntime starts with its _Py_DebugOffsets, whose cookie
 * "xdebugpy" is looked for, 8-aligned, in the module's writable memory.  A
 * candidate is only believed when its block reads and its interpreter list
 * checks out (pick_layout, find_interp).  0 when none.
 */
static uint64_t find_cookie(struct analysis *a, const struct module *m, uint64_t after) {
        const struct core_file *c = a->core;
        static const char cookie[8] = "xdebugpy";
        uint64_t buf[4096];

        for (size_t i = 0; i < c->n_segments; i++) {
                const struct core_segment *s = &c->segments[i];

                if (!(s->flags & 2 /* PF_W */) || s->filesz == 0 || s->vaddr < m->start || s->vaddr >= m->end ||
                    s->vaddr + s->filesz <= after)
                        continue;
                for (uint64_t off = 0; off + 8 <= s->filesz; off += sizeof(buf)) {
                        size_t n = MIN((uint64_t)sizeof(buf), s->filesz - off) / 8;

                        if (c->src.pread(c->src.ctx, buf, n * 8, s->offset + off) < 0)
                                break;
                        for (size_t k = 0; k < n; k++)
                                if (memcmp(&buf[k], cookie, 8) == 0 && s->vaddr + off + k * 8 > after)
                                        return s->vaddr + off + k * 8;
                }
        }
        return 0;
}

static bool find_by_cookie(struct analysis *a, struct module *m, struct py_found *f) {
        char first_refusal[sizeof(unsupported)] = "";
        uint64_t at = 0;

        /* a few candidates at most; a planted copy of the cookie must not hide the real one */
        for (int tries = 0; tries < 16 && (at = find_cookie(a, m, at)) != 0; tries++) {
                *f = (struct py_found) {};
                lookup_symbols(a->target, m, f);
                f->module = m;
                f->sym[SYM_RUNTIME] = at;
                unsupported[0] = 0;
                if (pick_layout(a, f) && find_interp(a, f)) {
                        strv_addf(&a->warnings, "_PyRuntime found by its debug cookie at 0x%llx in %s",
                                  (unsigned long long)at, m->path);
                        return true;
                }
                if (unsupported[0] && !first_refusal[0])
                        memcpy(first_refusal, unsupported, sizeof(first_refusal));
        }
        /* nothing usable: the first block we could not read says why */
        memcpy(unsupported, first_refusal, sizeof(unsupported));
        return false;
}

/* Which thread state holds the GIL, or 0. */
static uint64_t gil_holder(struct analysis *a, const struct py_found *f, uint64_t interp) {
        struct target *t = a->target;
        const struct py_layout *l = &a->layout;
        uint64_t holder = 0, gil;
        int32_t locked;

        if (l->gil_kind == PY_GIL_TSTATE_CURRENT) {
                if (l->runtime_kind == PY_RUNTIME_PYRUNTIME)
                        py_read_ptr(t, f->runtime, l->runtime.gilstate_tstate_current, &holder);
                else if (f->sym[SYM_TSTATE_CURRENT])
                        target_read_u64(t, f->sym[SYM_TSTATE_CURRENT], &holder);
                return holder;
        }
        if (py_read_ptr(t, interp, l->interp.ceval_gil, &gil) < 0 ||
            py_read_i32(t, gil, l->gil.locked, &locked) < 0 || !locked ||
            py_read_ptr(t, gil, l->gil.last_holder, &holder) < 0)
                return 0;
        return holder;
}

static bool gc_collecting(struct analysis *a, const struct py_found *f, uint64_t interp) {
        struct target *t = a->target;
        const struct py_layout *l = &a->layout;
        int32_t v = 0;

        switch (l->gc_kind) {
        case PY_GC_STATIC_SYMBOL:
                if (f->sym[SYM_GC_COLLECTING])
                        target_read(t, f->sym[SYM_GC_COLLECTING], &v, sizeof(v));
                break;
        case PY_GC_RUNTIME:
                py_read_i32(t, f->runtime, l->runtime.gc_collecting, &v);
                break;
        case PY_GC_INTERP:
                py_read_i32(t, interp, l->interp.gc_collecting, &v);
                break;
        }
        return v != 0;
}

/*
 * 3.15+ (the fields its debug offsets publish): the exception the thread was
 * raising (current_exception) or, failing that, handling (its exception
 * state), as "TYPE: message" — the type's name and the first argument when
 * that is a str.  Anything unreadable leaves it unknown.
 */
static void thread_exception(struct analysis *a, struct thread_info *th) {
        struct target *t = a->target;
        const struct py_layout *l = &a->layout;
        uint64_t exc = 0, type, name, args, first = 0;
        _cleanup_free_ char *type_name = NULL, *message = NULL;
        bool handled = false;

        if (l->tstate.current_exception == PY_OFF_NONE)
                return;
        py_read_ptr(t, th->tstate, l->tstate.current_exception, &exc);
        if (!exc && l->tstate.exc_state != PY_OFF_NONE && l->err_stackitem.exc_value != PY_OFF_NONE) {
                py_read_ptr(t, th->tstate + (uint64_t)l->tstate.exc_state, l->err_stackitem.exc_value, &exc);
                handled = true;
        }
        if (!exc || py_read_ptr(t, exc, l->object.ob_type, &type) < 0 || !type ||
            py_read_ptr(t, type, l->object.tp_name, &name) < 0 || !name)
                return;
        char buf[256];

        if (!py_read_cstring(t, name, buf, sizeof(buf)) || strcmp(buf, "NoneType") == 0)
                return;
        type_name = strdup(buf);
        if (!type_name)
                return;
        int64_t count = 0;
        if (l->exc.args != PY_OFF_NONE && py_read_ptr(t, exc, l->exc.args, &args) == 0 && args &&
            py_read_i64(t, args, l->object.ob_size, &count) == 0 && count > 0 &&
            py_read_ptr(t, args, l->seq.tuple_items, &first) == 0 && first)
                py_read_text(t, l, first, 1024, &message);  /* not a str: no message */
        if (asprintf(&th->exception, "%s%s%s", type_name, message ? ": " : "", message ? message : "") < 0)
                th->exception = NULL;
        th->exception_handled = handled;
}

/* The innermost frame of a thread: 0 and *frame (0 when it runs no Python), or -EFAULT. */
static int first_frame(struct analysis *a, uint64_t tstate, uint64_t *frame) {
        struct target *t = a->target;
        const struct py_layout *l = &a->layout;
        uint64_t cframe;

        *frame = 0;
        switch (l->frame_kind) {
        case PY_FRAMES_OBJECTS:
                return py_read_ptr(t, tstate, l->tstate.frame, frame);
        case PY_FRAMES_CFRAME:
                if (py_read_ptr(t, tstate, l->tstate.cframe, &cframe) < 0)
                        return -EFAULT;
                return cframe ? py_read_ptr(t, cframe, l->cframe.current_frame, frame) : 0;
        case PY_FRAMES_CURRENT:
                return py_read_ptr(t, tstate, l->tstate.current_frame, frame);
        }
        return -EFAULT;
}

/* The kernel thread of a pthread_t, or else of a native thread id (3.8+). */
static const struct core_thread *core_thread_of(struct analysis *a, uint64_t pthread_id, int32_t native) {
        const struct core_file *c = a->core;

        for (size_t i = 0; i < c->n_threads; i++)
                if (is_pthread_of(a, &c->threads[i], pthread_id))
                        return &c->threads[i];
        for (size_t i = 0; i < c->n_threads; i++)
                if (native > 0 && c->threads[i].tid == native)
                        return &c->threads[i];
        return NULL;
}

/*
 * The thread whose stack holds addr, or NULL: of the threads whose stack
 * pointer lies in the same mapping as addr, the one with the highest stack
 * pointer at or below it (stacks grow down, and small thread stacks share a
 * mapping, one after another).
 */
static const struct core_thread *stack_owner(struct analysis *a, uint64_t addr) {
        const struct core_file *c = a->core;
        const struct core_segment *seg = NULL;
        const struct core_thread *best = NULL;

        for (size_t k = 0; k < c->n_segments && !seg; k++)
                if (addr >= c->segments[k].vaddr && addr - c->segments[k].vaddr < c->segments[k].memsz)
                        seg = &c->segments[k];
        if (!seg)
                return NULL;
        for (size_t i = 0; i < c->n_threads; i++) {
                uint64_t sp = c->threads[i].sp;

                /* below sp only by the red zone (x86-64's 128 bytes) */
                if (sp < seg->vaddr || sp - seg->vaddr >= seg->memsz || sp > addr + c->arch->red_zone)
                        continue;
                if (!best || sp > best->sp)
                        best = &c->threads[i];
        }
        return best;
}

/*
 * A thread state names its thread (thread_id, native_thread_id), but up to
 * 3.12 a subinterpreter's code run from another thread borrows a thread
 * state that names the thread that created the interpreter.  Where a
 * thread's C stack shows through — 3.12+ enter Python through a frame on the
 * C stack, 3.10 to 3.12 keep the running loop's _PyCFrame there — that
 * stack says which thread really runs it.  0 when there is no such sign.
 */
static uint64_t stack_sign(struct analysis *a, const struct thread_info *th) {
        const struct py_layout *l = &a->layout;
        uint64_t cframe = 0;

        for (size_t k = th->n_frames; k-- > 0;)
                if (th->frames[k].shim)
                        return th->frames[k].shim;
        if (py_read_ptr(a->target, th->tstate, l->tstate.cframe, &cframe) == 0 &&
            cframe - th->tstate >= 4096)    /* not the root frame inside the thread state */
                return cframe;
        return 0;
}

static int add_thread(struct analysis *a, size_t *allocated, struct thread_info **ret) {
        if (a->n_threads >= MAX_THREADS)
                return -E2BIG;
        if (grow_array(&a->threads, allocated, a->n_threads + 1, sizeof(*a->threads)) < 0)
                return -ENOMEM;
        *ret = &a->threads[a->n_threads++];
        **ret = (struct thread_info) {};
        return 0;
}

static int collect_threads(struct analysis *a, const struct py_found *f, const struct analysis_options *opts) {
        struct target *t = a->target;
        const struct py_layout *l = &a->layout;
        _cleanup_(addr_set_clear) struct addr_set seen = {};
        size_t allocated = 0, n_interps = 0, last_first = 0;
        uint64_t interp = f->interp;

        while (interp) {
                uint64_t holder = gil_holder(a, f, interp), tstate = 0, next;
                bool collecting = gc_collecting(a, f, interp);
                size_t first = a->n_threads;
                int64_t id = -1;

                int added = addr_set_add(&seen, interp);
                if (added < 0)
                        return -ENOMEM;
                if (++n_interps > MAX_INTERPRETERS || added == 0) {
                        strv_addf(&a->warnings, "interpreter list is corrupt (cycle or too long): stopped");
                        break;
                }
                /* 3.7+ number their interpreters (0 is the main one); a negative id is no id */
                if (py_read_i64(t, interp, l->interp.id, &id) < 0)
                        id = -1;
                if (id < 0)
                        id = -1;
                last_first = first;
                py_read_ptr(t, interp, l->interp.tstate_head, &tstate);
                while (tstate) {
                        struct thread_info *th;
                        const struct core_thread *ct;
                        int32_t native = 0;
                        int r;

                        r = addr_set_add(&seen, tstate);
                        if (r < 0)
                                return r;
                        if (r == 0) {
                                strv_addf(&a->warnings, "thread list of interpreter 0x%llx cycles: stopped",
                                          (unsigned long long)interp);
                                break;
                        }
                        r = add_thread(a, &allocated, &th);
                        if (r == -E2BIG) {
                                strv_addf(&a->warnings, "more than %d threads: the rest are not shown", MAX_THREADS);
                                break;
                        }
                        if (r < 0)
                                return r;
                        th->tstate = tstate;
                        th->interp = interp;
                        th->interp_id = id;
                        py_read_ptr(t, tstate, l->tstate.thread_id, &th->pthread_id);
                        py_read_i32(t, tstate, l->tstate.native_thread_id, &native);
                        int32_t holds = 0;
                        /* 3.15 says per thread; before, the interpreter's GIL names its last holder */
                        if (l->tstate.holds_gil != PY_OFF_NONE && py_read_i32(t, tstate, l->tstate.holds_gil, &holds) == 0)
                                th->has_gil = holds != 0;
                        else
                                th->has_gil = holder && holder == tstate;
                        th->gc_collecting = collecting && th->has_gil;
                        uint64_t frame;
                        if (first_frame(a, tstate, &frame) < 0) {
                                if (asprintf(&th->truncated, "unreadable thread state at 0x%llx",
                                             (unsigned long long)tstate) < 0)
                                        th->truncated = NULL;
                        } else
                                py_frames_walk(a, th, frame, opts->max_frames);
                        ct = core_thread_of(a, th->pthread_id, native);
                        uint64_t sign = stack_sign(a, th);
                        const struct core_thread *runs = sign ? stack_owner(a, sign) : NULL;
                        if (runs && runs != ct) {
                                ct = runs;
                                th->pthread_id = core_thread_pthread(a->core->arch, runs);
                        }
                        th->tid = ct ? ct->tid : native;
                        th->crashed = ct && ct == core_crashed_thread(a->core);
                        thread_exception(a, th);
                        if (py_read_ptr(t, tstate, l->tstate.next, &next) < 0) {
                                strv_addf(&a->warnings, "thread state 0x%llx is unreadable: thread list cut short",
                                          (unsigned long long)tstate);
                                break;
                        }
                        tstate = next;
                }
                /* GC runs in the thread that holds the GIL; without a known holder, credit the crashed thread */
                if (collecting && !holder)
                        for (size_t i = first; i < a->n_threads; i++)
                                a->threads[i].gc_collecting = a->threads[i].crashed;
                if (py_read_ptr(t, interp, l->interp.next, &next) < 0)
                        break;
                interp = next;
        }
        /* 2.7 and 3.6 have no ids: new interpreters are put at the head of the list, so the main one
         * is the last */
        if (l->interp.id == PY_OFF_NONE)
                for (size_t i = last_first; i < a->n_threads; i++)
                        a->threads[i].interp_id = 0;
        return 0;
}

/*
 * Where the outermost Python frame of a thread entry was entered from C
 * (3.12+: the entry frame lives on the C stack, so a larger address is an
 * outer call), 0 when unknown.
 */
static uint64_t stack_anchor(const struct thread_info *th) {
        return th->n_frames ? th->frames[th->n_frames - 1].shim : 0;
}

/* Crashed thread first, then the order of the core's NT_PRSTATUS notes, unknown tids last. */
static int core_order(const struct analysis *a, const struct thread_info *th) {
        const struct core_thread *crashed = core_crashed_thread(a->core);

        if (th->tid > 0 && crashed && th->tid == crashed->tid)
                return -1;
        for (size_t i = 0; i < a->core->n_threads; i++)
                if (th->tid > 0 && a->core->threads[i].tid == th->tid)
                        return (int)i;
        return (int)a->core->n_threads;
}

/*
 * Order of two entries of one OS thread that ran several interpreters:
 * outermost call first — by where they entered the interpreter on the C
 * stack, else the main interpreter first, then by id.
 */
static int same_thread_order(const struct thread_info *x, const struct thread_info *y) {
        uint64_t ax = stack_anchor(x), ay = stack_anchor(y);

        if (ax && ay && ax != ay)
                return ax > ay ? -1 : 1;
        if (x->interp_id != y->interp_id)
                return (uint64_t)x->interp_id < (uint64_t)y->interp_id ? -1 : 1;     /* -1 (none) last */
        return 0;
}

static bool before(const struct analysis *a, const struct thread_info *x, const struct thread_info *y) {
        int kx = core_order(a, x), ky = core_order(a, y);

        if (kx != ky)
                return kx < ky;
        return x->tid > 0 && x->tid == y->tid && same_thread_order(x, y) < 0;
}

static void sort_threads(struct analysis *a) {
        size_t crashed = SIZE_MAX;
        int64_t first_id = -2;

        /* insertion sort: stable, and thread counts are small */
        for (size_t i = 1; i < a->n_threads; i++) {
                struct thread_info x = a->threads[i];
                size_t j = i;

                while (j > 0 && before(a, &x, &a->threads[j - 1])) {
                        a->threads[j] = a->threads[j - 1];
                        j--;
                }
                a->threads[j] = x;
        }
        /* The crash came in the innermost interpreter the crashed thread was running: only that
         * entry is the crashed one. */
        for (size_t i = 0; i < a->n_threads; i++)
                if (a->threads[i].crashed) {
                        if (crashed != SIZE_MAX)
                                a->threads[crashed].crashed = false;
                        crashed = i;
                }
        for (size_t i = 0; i < a->n_threads; i++) {
                if (a->threads[i].interp_id < 0)
                        continue;
                if (first_id == -2)
                        first_id = a->threads[i].interp_id;
                else if (a->threads[i].interp_id != first_id)
                        a->multiple_interpreters = true;
        }
}

int py_runtime_analyze(struct analysis *a, const struct analysis_options *opts, const char **error) {
        struct target *t = a->target;
        struct py_found f = {};
        bool found = false;

        unsupported[0] = 0;
        for (size_t pass = 0; pass < 3 && !found; pass++)
                for (size_t i = 0; i < t->n_modules && !found; i++) {
                        struct module *m = &t->modules[i];

                        if (!search_pass(t, m, pass))
                                continue;
                        f = (struct py_found) {};
                        if (lookup_symbols(t, m, &f) < 0)
                                continue;
                        if (!f.sym[SYM_RUNTIME] && !f.sym[SYM_INTERP_HEAD])
                                continue;
                        found = pick_layout(a, &f) && find_interp(a, &f);
                }

        for (size_t i = 0; i < t->n_modules && !found && !unsupported[0]; i++) {
                struct module *m = &t->modules[i];

                if (is_python_module(m) || m == t->exe)
                        found = find_by_cookie(a, m, &f);
        }
        if (!found && opts->exhaustive) {
                /* the version must still come from somewhere: the file names */
                for (size_t i = 0; i < t->n_modules && !found; i++) {
                        struct module *m = &t->modules[i];

                        if (!is_python_module(m) && m != t->exe)
                                continue;
                        f = (struct py_found) { .module = m };
                        lookup_symbols(t, m, &f);
                        found = pick_layout(a, &f) && scan_for_interp(a, &f);
                }
        }
        if (!found) {
                a->py_major = a->py_minor = 0;
                if (unsupported[0])
                        return *error = unsupported, -ENOENT;
                *error = opts->exhaustive ?
                        "no Python interpreter found in the core" :
                        "no Python interpreter found in the core (try --exhaustive for stripped binaries)";
                return -ENOENT;
        }
        a->py_module = f.module;
        int r = collect_threads(a, &f, opts);
        if (r < 0)
                return *error = "out of memory", r;
        sort_threads(a);
        return 0;
}
