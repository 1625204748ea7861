/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "py_frame.h"
#include "py_object.h"
#include "py_tasks.h"

/* Modules/_asynciomodule.c's Py_AsyncioModuleDebugOffsets (3.14, 3.15): 13 words. */
enum {
        AD_TASK_SIZE, AD_TASK_NAME, AD_TASK_AWAITED_BY, AD_TASK_IS_TASK, AD_TASK_AWAITED_BY_IS_SET, AD_TASK_CORO,
        AD_TASK_NODE, AD_INTERP_SIZE, AD_INTERP_TASKS_HEAD, AD_THREAD_SIZE, AD_THREAD_RUNNING_LOOP,
        AD_THREAD_RUNNING_TASK, AD_THREAD_TASKS_HEAD, _AD_MAX
};

#define MAX_STRUCT (1u << 20)
#define MAX_TASK_NAME 256
#define TPFLAGS_HEAPTYPE (1u << 9)

/* Reads of coroutines and set slots for all tasks together: a hostile process cannot make the
 * analysis read forever (100,000 tasks with 1,024-deep chains would be 10^8) */
#define READ_BUDGET 4000000

/* What an awaited object's type makes of it: the awaits of 1,000 tasks meet the same few types,
 * whose names lie in read-only data the core has not (each byte read from the file). */
enum awaited_kind { AW_COROUTINE, AW_ASYNC_GEN_WRAPPER, AW_FUTURE_ITER, AW_GENERATOR, AW_OTHER };

struct type_seen {
        uint64_t type;
        enum awaited_kind kind;
        char name[64];
};

#define TYPES_SEEN 32

/* A task that awaits another, learnt from the other side: a task's _fut_waiter, a done-callback's self. */
struct edge {
        uint64_t awaited, awaiter;
        bool awaits;                    /* the awaiter's chain ends in the awaited task's __await__ */
};

#define MAX_CALLBACKS 64                /* done-callbacks of one task looked at */
#define MAX_EDGES (4 * PY_TASKS_MAX)    /* such edges kept in all */

struct reader {
        struct analysis *a;
        struct edge *edges;
        size_t n_edges, edges_allocated;
        struct type_seen types[TYPES_SEEN];
        size_t n_types;
        uint64_t off[_AD_MAX];
        struct addr_set seen;           /* task addresses already listed */
        size_t allocated;
        size_t budget;                  /* reads left (READ_BUDGET) */
};

/* Offsets that fit the structs they describe: a block that does not is not believed. */
static bool plausible(const uint64_t *o) {
        static const int task[] = { AD_TASK_NAME, AD_TASK_AWAITED_BY, AD_TASK_CORO, AD_TASK_NODE };

        if (!o[AD_TASK_SIZE] || o[AD_TASK_SIZE] > 4096 || !o[AD_INTERP_SIZE] || o[AD_INTERP_SIZE] > MAX_STRUCT ||
            !o[AD_THREAD_SIZE] || o[AD_THREAD_SIZE] > MAX_STRUCT)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(task); i++)
                if (o[task[i]] + 8 > o[AD_TASK_SIZE])
                        return false;
        return o[AD_TASK_NODE] + 16 <= o[AD_TASK_SIZE] && o[AD_TASK_IS_TASK] < o[AD_TASK_SIZE] &&
               o[AD_TASK_AWAITED_BY_IS_SET] < o[AD_TASK_SIZE] && o[AD_INTERP_TASKS_HEAD] + 16 <= o[AD_INTERP_SIZE] &&
               o[AD_THREAD_TASKS_HEAD] + 16 <= o[AD_THREAD_SIZE] && o[AD_THREAD_RUNNING_TASK] + 8 <= o[AD_THREAD_SIZE];
}

/*
 * The .AsyncioDebug section, read from the process: in the interpreter's own file (3.15) or in the
 * _asyncio extension (3.14, once imported).  0, -ENOENT (not there), -EBADMSG (not believable).
 */
static int find_offsets(struct reader *r) {
        struct target *t = r->a->target;

        for (size_t pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < t->n_modules; i++) {
                        struct module *m = &t->modules[i];
                        const char *base = path_base_name(m->path);
                        struct elf_image *img;
                        uint64_t addr, size;
                        uint8_t raw[_AD_MAX * 8];

                        /* the interpreter's file first, then the extension; no other file is opened */
                        if (pass == 0 ? m != r->a->py_module : strncmp(base, "_asyncio.", 9) != 0)
                                continue;
                        img = target_module_image(t, m);
                        if (!img || elf_image_section(img, ".AsyncioDebug", &addr, &size) < 0 || !addr)
                                continue;
                        if (size < sizeof(raw) || target_read(t, addr + target_module_bias(t, m), raw, sizeof(raw)) < 0)
                                return -EBADMSG;
                        for (int k = 0; k < _AD_MAX; k++)
                                r->off[k] = le64_get(raw + 8 * k);
                        return plausible(r->off) ? 0 : -EBADMSG;
                }
        return -ENOENT;
}

static const char *type_name(struct analysis *a, uint64_t type, char *buf, size_t size) {
        uint64_t name;

        buf[0] = 0;
        if (py_read_ptr(a->target, type, a->layout.object.tp_name, &name) == 0 && name)
                py_read_cstring(a->target, name, buf, size);
        return buf;
}

/*
 * The interpreter's own types, by name: a class of Python code is a heap type, so a heap type
 * named "coroutine" is not one; a dotted name ("_asyncio.FutureIter", a heap type itself) only
 * comes from C.  Each type is looked at once.
 */
static const struct type_seen *awaited_type(struct reader *r, uint64_t type) {
        struct type_seen *ts;
        uint64_t flags = 0;

        for (size_t i = 0; i < r->n_types; i++)
                if (r->types[i].type == type)
                        return &r->types[i];
        ts = &r->types[r->n_types < TYPES_SEEN ? r->n_types++ : TYPES_SEEN - 1];
        ts->type = type;
        py_read_ptr(r->a->target, type, r->a->layout.object.tp_flags, &flags);
        type_name(r->a, type, ts->name, sizeof(ts->name));
        bool heap = flags & TPFLAGS_HEAPTYPE;
        ts->kind = !heap && !strcmp(ts->name, "coroutine") ? AW_COROUTINE :
                   !heap && (!strcmp(ts->name, "async_generator_asend") ||
                             !strcmp(ts->name, "async_generator_athrow")) ? AW_ASYNC_GEN_WRAPPER :
                   !strcmp(ts->name, "_asyncio.FutureIter") ? AW_FUTURE_ITER :
                   !heap && !strcmp(ts->name, "generator") ? AW_GENERATOR : AW_OTHER;
        return ts;
}

/* A task's name: a str, or the number a nameless task got ("Task-N", as get_name() would say). */
static char *task_name(struct analysis *a, uint64_t obj) {
        const struct py_layout *l = &a->layout;
        uint64_t type, flags = 0, tag;
        char *s = NULL;

        obj &= ~(uint64_t)3;
        if (!obj || py_read_ptr(a->target, obj, l->object.ob_type, &type) < 0 ||
            py_read_ptr(a->target, type, l->object.tp_flags, &flags) < 0)
                return NULL;
        if (l->consts.tpf_unicode && (flags & l->consts.tpf_unicode))
                return py_read_text(a->target, l, obj, MAX_TASK_NAME, &s) == 0 ? s : NULL;
        if (l->consts.tpf_long && (flags & l->consts.tpf_long) && l->num.long_lv_tag != PY_OFF_NONE &&
            py_read_ptr(a->target, obj, l->num.long_lv_tag, &tag) == 0) {
                size_t n = (size_t)(tag >> 3);
                uint32_t d[2] = {};

                /* a non-negative number of 30-bit digits: two hold any counter a process reaches */
                if ((tag & 3) == 2 || n > 2 || l->num.long_digit_size != 4 ||
                    (n && target_read(a->target, obj + l->num.long_digits, d, 4 * n) < 0))
                        return NULL;
                if (asprintf(&s, "Task-%llu", d[0] | (unsigned long long)d[1] << l->num.long_shift) < 0)
                        s = NULL;
                return s;
        }
        return NULL;
}

static int add_edge(struct reader *r, uint64_t awaited, uint64_t awaiter, bool awaits) {
        if (!awaited || !awaiter || awaited == awaiter || r->n_edges >= MAX_EDGES)
                return 0;
        if (grow_array(&r->edges, &r->edges_allocated, r->n_edges + 1, sizeof(*r->edges)) < 0)
                return -ENOMEM;
        r->edges[r->n_edges++] = (struct edge) { awaited, awaiter, awaits };
        return 0;
}

/*
 * The coroutine chain of a task: each coroutine's (or async generator's) frame, and while it is
 * suspended in an await, what it awaits, until that is no coroutine.  CPython's own reader
 * (_remote_debugging) follows the same rule.
 */
static void read_chain(struct reader *r, struct task_info *ti, uint64_t coro) {
        struct analysis *a = r->a;
        const struct py_layout *l = &a->layout;
        _cleanup_(addr_set_clear) struct addr_set seen = {};
        uint64_t header = (uint64_t)l->object.ob_type + 8;      /* sizeof(PyObject) */

        for (size_t depth = 0; coro; depth++) {
                uint64_t type, frame, sp, awaited, atype;
                int8_t state;

                if (!r->budget) {
                        if (!ti->stack.truncated)
                                ti->stack.truncated = strdup("not read: the tasks before it used up what is read");
                        return;
                }
                r->budget--;
                if (depth >= PY_TASKS_MAX_CHAIN) {
                        if (!ti->stack.truncated)
                                ti->stack.truncated = strdup("the await chain is longer than 1024 coroutines");
                        return;
                }
                if (addr_set_add(&seen, coro) <= 0) {
                        if (!ti->stack.truncated && asprintf(&ti->stack.truncated, "a cycle in the await chain at 0x%llx",
                                                             (unsigned long long)coro) < 0)
                                ti->stack.truncated = NULL;
                        return;
                }
                if (py_read_ptr(a->target, coro, l->object.ob_type, &type) < 0 ||
                    target_read(a->target, coro + l->gen.frame_state, &state, 1) < 0) {
                        if (!ti->stack.truncated && asprintf(&ti->stack.truncated, "unreadable coroutine at 0x%llx",
                                                             (unsigned long long)coro) < 0)
                                ti->stack.truncated = NULL;
                        return;
                }
                if (state == l->gen.cleared)
                        return;
                frame = coro + l->gen.iframe;
                if (py_frame_add(a, &ti->stack, frame) < 0 || state != l->gen.yield_from)
                        return;
                /* suspended in an await: the awaited object is on the frame's stack */
                if (py_read_ptr(a->target, frame, l->iframe.stackpointer, &sp) < 0 || !(sp &= ~(uint64_t)3) ||
                    sp < 8u * (uint64_t)l->gen.awaited_slot ||
                    py_read_ptr(a->target, sp - 8u * (uint64_t)l->gen.awaited_slot, 0, &awaited) < 0 ||
                    !(awaited &= ~(uint64_t)3) || py_read_ptr(a->target, awaited, l->object.ob_type, &atype) < 0)
                        return;
                const struct type_seen *ts = awaited_type(r, atype);
                const char *what = ts->name;
                coro = 0;
                if (ts->kind == AW_COROUTINE)
                        coro = awaited;
                else if (ts->kind == AW_ASYNC_GEN_WRAPPER)
                        py_read_ptr(a->target, awaited, (py_off)header, &coro);     /* its generator */
                else if (ts->kind == AW_GENERATOR) {
                        /* `await task` of a Task class written in Python: its __await__, a generator
                         * suspended in `yield self`; the task, if it is one, is found by the edge */
                        uint64_t self;
                        int8_t gstate;

                        if (target_read(a->target, awaited + l->gen.frame_state, &gstate, 1) == 0 &&
                            gstate != l->gen.cleared &&
                            py_read_ptr(a->target, awaited + l->gen.iframe, l->iframe.localsplus, &self) == 0 &&
                            (self &= ~(uint64_t)3) && add_edge(r, self, ti->addr, true) < 0)
                                return;
                } else if (ts->kind == AW_FUTURE_ITER &&
                         py_read_ptr(a->target, awaited, (py_off)header, &awaited) == 0 && awaited &&
                         py_read_ptr(a->target, awaited, l->object.ob_type, &atype) == 0)
                        what = awaited_type(r, atype)->name;    /* `await future`: the future */
                if (!coro) {
                        ti->awaits = awaited;
                        ti->awaits_type = strdup(what[0] ? what : "?");
                }
        }
}

/* The tasks awaiting this one: nobody, one, or a set of them. */
static int read_awaiters(struct reader *r, struct task_info *ti, const uint8_t *task) {
        struct analysis *a = r->a;
        const struct py_layout *l = &a->layout;
        uint64_t by = le64_get(task + r->off[AD_TASK_AWAITED_BY]) & ~(uint64_t)3, mask, table;
        int64_t used;

        if (!by)
                return 0;
        if (!task[r->off[AD_TASK_AWAITED_BY_IS_SET]]) {
                if (!(ti->awaited_by = malloc(sizeof(*ti->awaited_by))))
                        return -ENOMEM;
                ti->awaited_by[ti->n_awaited_by++] = by;
                return 0;
        }
        if (l->set.table == PY_OFF_NONE || py_read_ptr(a->target, by, l->set.mask, &mask) < 0 ||
            py_read_ptr(a->target, by, l->set.table, &table) < 0 || py_read_i64(a->target, by, l->set.used, &used) < 0 ||
            mask >= (1u << 16) || used < 0 || (uint64_t)used > mask + 1 || !l->set.entry_size)
                return 0;       /* a set of 4,096 awaiters has 16,384 slots at most */
        if (!(ti->awaited_by = calloc(MIN((size_t)used, (size_t)PY_TASKS_MAX_AWAITERS) + 1, sizeof(uint64_t))))
                return -ENOMEM;
        for (uint64_t i = 0; i <= mask && ti->n_awaited_by < (size_t)used &&
                             ti->n_awaited_by < PY_TASKS_MAX_AWAITERS && r->budget; i++, r->budget--) {
                uint64_t e[2];
                /* setentry {key, hash}: empty slots hold NULL, deleted ones the dummy with hash -1 */
                if (target_read(a->target, table + i * l->set.entry_size, e, sizeof(e)) < 0)
                        break;
                if (e[0] && e[1] != UINT64_MAX)
                        ti->awaited_by[ti->n_awaited_by++] = e[0] & ~(uint64_t)3;
        }
        return 0;
}

/* A task's entry, once per address: 1 and *ret, 0 when it is listed already (a list that loops
 * back into another, a task on a list and in a set) or PY_TASKS_MAX are, -ENOMEM. */
static int new_task(struct reader *r, uint64_t addr, int32_t tid, int64_t interp_id, struct task_info **ret) {
        struct analysis *a = r->a;
        struct task_info *ti;
        int k = addr_set_add(&r->seen, addr);

        if (k <= 0)
                return k;
        if (a->n_tasks >= PY_TASKS_MAX)
                return 0;
        if (grow_array(&a->tasks, &r->allocated, a->n_tasks + 1, sizeof(*a->tasks)) < 0)
                return -ENOMEM;
        ti = &a->tasks[a->n_tasks++];
        *ti = (struct task_info) { .addr = addr, .tid = tid, .interp_id = interp_id };
        ti->stack.interp_id = interp_id;
        *ret = ti;
        return 1;
}

static int add_task(struct reader *r, uint64_t addr, int32_t tid, int64_t interp_id) {
        struct analysis *a = r->a;
        uint8_t task[4096];
        struct task_info *ti;
        int k = new_task(r, addr, tid, interp_id, &ti);

        if (k <= 0)
                return k;
        if (target_read(a->target, addr, task, r->off[AD_TASK_SIZE]) < 0) {
                if (asprintf(&ti->stack.truncated, "unreadable task at 0x%llx", (unsigned long long)addr) < 0)
                        ti->stack.truncated = NULL;
                return 0;
        }
        ti->c_task = true;
        ti->type = strdup(awaited_type(r, le64_get(task + a->layout.object.ob_type))->name);
        ti->name = task_name(a, le64_get(task + r->off[AD_TASK_NAME]));
        if (read_awaiters(r, ti, task) < 0)
                return -ENOMEM;
        read_chain(r, ti, le64_get(task + r->off[AD_TASK_CORO]) & ~(uint64_t)3);
        return 0;
}

/* One list of tasks: a circular list whose head (a sentinel) is at head. */
static int read_list(struct reader *r, uint64_t head, int32_t tid, int64_t interp_id) {
        _cleanup_(addr_set_clear) struct addr_set seen = {};
        uint64_t node;
        int k;

        if (py_read_ptr(r->a->target, head, 0, &node) < 0)
                return 0;
        while (node && node != head && r->a->n_tasks < PY_TASKS_MAX) {
                if ((k = addr_set_add(&seen, node)) <= 0)
                        return k;       /* a loop that does not pass the head */
                if (node < r->off[AD_TASK_NODE] || add_task(r, node - r->off[AD_TASK_NODE], tid, interp_id) < 0)
                        return node < r->off[AD_TASK_NODE] ? 0 : -ENOMEM;
                if (py_read_ptr(r->a->target, node, 0, &node) < 0)
                        break;
        }
        return 0;
}

/* ---- tasks that are not C tasks ---- */

/* An object's type, through the cache; NULL when unreadable. */
static const struct type_seen *type_of(struct reader *r, uint64_t obj) {
        uint64_t type;

        if (!obj || py_read_ptr(r->a->target, obj, r->a->layout.object.ob_type, &type) < 0 || !type)
                return NULL;
        return awaited_type(r, type);
}

static bool is_none(struct reader *r, uint64_t obj) {
        const struct type_seen *ts = type_of(r, obj);

        return !ts || !strcmp(ts->name, "NoneType");
}

/*
 * The tasks waiting for this one: each done-callback (a list of (callback, context) tuples) that
 * is a bound method -- a Python task's __wakeup, or the builtin method a C task adds -- names its
 * task as the object it is bound to, one word after the header in both.
 */
static int callback_edges(struct reader *r, uint64_t task) {
        struct analysis *a = r->a;
        const struct py_layout *l = &a->layout;
        uint64_t list, items, ptrs[MAX_CALLBACKS], header = (uint64_t)l->object.ob_type + 8;
        int64_t n;

        if (py_attr(a->target, l, task, "_callbacks", &list) < 0 || is_none(r, list) ||
            py_read_i64(a->target, list, l->object.ob_size, &n) < 0 ||
            py_read_ptr(a->target, list, l->seq.list_items, &items) < 0 || n <= 0)
                return 0;
        n = MIN(n, (int64_t)MAX_CALLBACKS);
        if (target_read(a->target, items, ptrs, 8 * (size_t)n) < 0)
                return 0;
        for (int64_t i = 0; i < n && r->budget; i++, r->budget--) {
                uint64_t fn, self;
                const struct type_seen *ts;

                if (py_read_ptr(a->target, ptrs[i], l->seq.tuple_items, &fn) < 0 || !(ts = type_of(r, fn)) ||
                    (strcmp(ts->name, "method") && strcmp(ts->name, "builtin_function_or_method")) ||
                    py_read_ptr(a->target, fn, (py_off)(header + 8), &self) < 0)
                        continue;
                if (add_edge(r, task, self, false) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* A task of asyncio's set: what its attributes say (asyncio's Task and Future name them). */
static int add_other_task(struct reader *r, uint64_t obj, int64_t interp_id) {
        struct analysis *a = r->a;
        const struct py_layout *l = &a->layout;
        const struct type_seen *ts = type_of(r, obj);
        struct task_info *ti;
        uint64_t v;
        int k;

        if (!ts || !strcmp(ts->name, "NoneType"))
                return 0;       /* the weak reference's task is gone */
        if ((k = new_task(r, obj, 0, interp_id, &ti)) <= 0)
                return k;
        ti->type = strdup(ts->name);
        if (py_attr(a->target, l, obj, "_name", &v) == 0)
                ti->name = task_name(a, v);
        /* a foreign task may keep its coroutine elsewhere, or have none: then it has no stack */
        if (py_attr(a->target, l, obj, "_coro", &v) == 0 && !is_none(r, v)) {
                if ((ts = type_of(r, v)) && ts->kind == AW_COROUTINE)
                        read_chain(r, ti, v);
                else if (asprintf(&ti->stack.truncated, "its _coro is no coroutine (%s)", ts ? ts->name : "?") < 0)
                        ti->stack.truncated = NULL;
        }
        /* the future it waits for says more than the chain's end (a Python future's __await__) */
        if (py_attr(a->target, l, obj, "_fut_waiter", &v) == 0 && !is_none(r, v)) {
                ts = type_of(r, v);
                free(ti->awaits_type);
                ti->awaits = v;
                ti->awaits_type = strdup(ts ? ts->name : "?");
                if (add_edge(r, v, obj, false) < 0)
                        return -ENOMEM;
        }
        return callback_edges(r, obj);
}

struct weak_refs {
        struct reader *r;
        uint64_t *refs;
        size_t n, max;
};

static bool collect_ref(void *ctx, uint64_t key, uint64_t value) {
        struct weak_refs *w = ctx;

        (void)value;
        if (w->n >= w->max || !w->r->budget)
                return false;
        w->r->budget--;
        w->refs[w->n++] = key;
        return true;
}

/* The tasks of a WeakSet of them: each weak reference's object that is still there. */
static int read_weak_set(struct reader *r, uint64_t set, int64_t interp_id, uint64_t *refs) {
        struct analysis *a = r->a;
        uint64_t data;
        struct weak_refs w = { .r = r, .refs = refs, .max = PY_TASKS_MAX - MIN(a->n_tasks, (size_t)PY_TASKS_MAX) };

        if (py_attr(a->target, &a->layout, set, "data", &data) < 0 ||
            (py_set_each(a->target, &a->layout, data, collect_ref, &w) < 0 && !w.n))
                return 0;
        for (size_t j = 0; j < w.n && r->budget; j++, r->budget--) {
                const struct type_seen *ts = type_of(r, refs[j]);
                uint64_t obj;

                /* a set's entries are weak references (weakref.ReferenceType, 3.x's "weakref"
                 * before): anything else is a damaged set, not a task */
                if (!ts || (strcmp(ts->name, "weakref.ReferenceType") && strcmp(ts->name, "weakref")))
                        continue;
                if (py_read_ptr(a->target, refs[j], a->layout.weakref.wr_object, &obj) == 0 &&
                    add_other_task(r, obj, interp_id) < 0)
                        return -ENOMEM;
        }
        return 0;
}

#define STATE_WORDS 64                  /* of _asyncio's module state, looked through for its WeakSet */

/*
 * The C module's own WeakSet: the objects registered through asyncio's _register_task that are no
 * Task (a third-party loop's).  It lies in the module's state, which nothing describes: the first
 * word there pointing at a WeakSet (the state holds one) is it.
 */
static uint64_t c_module_set(struct reader *r, uint64_t modules) {
        struct analysis *a = r->a;
        uint64_t mod, state, words[STATE_WORDS];

        if (a->layout.module.md_state == PY_OFF_NONE ||
            py_dict_get(a->target, &a->layout, modules, "_asyncio", &mod) < 0 ||
            py_read_ptr(a->target, mod, a->layout.module.md_state, &state) < 0 || !state ||
            target_read(a->target, state, words, sizeof(words)) < 0)
                return 0;
        for (size_t i = 0; i < STATE_WORDS; i++) {
                const struct type_seen *ts;

                if (words[i] && !(words[i] & 7) && (ts = type_of(r, words[i])) && !strcmp(ts->name, "WeakSet"))
                        return words[i];
        }
        return 0;
}

/*
 * Each interpreter's tasks that are not C tasks, read through its sys.modules: those of asyncio's
 * Task class in Python (asyncio.tasks._scheduled_tasks, a WeakSet: a task factory's, or all of them
 * when asyncio runs without its C module) and the C module's set of foreign ones.
 */
static int read_other_tasks(struct reader *r) {
        struct analysis *a = r->a;
        const struct py_layout *l = &a->layout;
        _cleanup_(addr_set_clear) struct addr_set interps = {};
        _cleanup_free_ uint64_t *refs = NULL;
        int k;

        if (l->interp.modules == PY_OFF_NONE || l->weakref.wr_object == PY_OFF_NONE)
                return 0;
        for (size_t i = 0; i < a->n_threads; i++) {
                uint64_t interp = a->threads[i].interp, modules, mod, set;

                if (!interp || (k = addr_set_add(&interps, interp)) == 0)
                        continue;
                if (k < 0)
                        return k;
                if (py_read_ptr(a->target, interp, l->interp.modules, &modules) < 0 ||
                    py_dict_get(a->target, l, modules, "asyncio.tasks", &mod) < 0)
                        continue;
                if (!refs && !(refs = calloc(PY_TASKS_MAX, sizeof(*refs))))
                        return -ENOMEM;
                if ((py_attr(a->target, l, mod, "_scheduled_tasks", &set) == 0 &&
                     read_weak_set(r, set, a->threads[i].interp_id, refs) < 0) ||
                    ((set = c_module_set(r, modules)) && read_weak_set(r, set, a->threads[i].interp_id, refs) < 0))
                        return -ENOMEM;
        }
        return 0;
}

struct task_ref {
        uint64_t addr;
        size_t index;                   /* in a->tasks */
};

static int by_ref(const void *x, const void *y) {
        const struct task_ref *p = x, *q = y;

        return p->addr < q->addr ? -1 : p->addr > q->addr;
}

static int by_edge(const void *x, const void *y) {
        const struct edge *p = x, *q = y;

        if (p->awaited != q->awaited)
                return p->awaited < q->awaited ? -1 : 1;
        return p->awaiter < q->awaiter ? -1 : p->awaiter > q->awaiter;
}

static int by_u64(const void *x, const void *y) {
        uint64_t p = *(const uint64_t *)x, q = *(const uint64_t *)y;

        return p < q ? -1 : p > q;
}

static struct task_info *task_by_addr(struct analysis *a, const struct task_ref *refs, uint64_t addr) {
        struct task_ref key = { .addr = addr };
        const struct task_ref *hit = bsearch(&key, refs, a->n_tasks, sizeof(*refs), by_ref);

        return hit ? &a->tasks[hit->index] : NULL;
}

/*
 * The edges learnt from the other side, sorted and each kept once, added to the awaited task's
 * awaiters when both ends are listed tasks and it does not have that awaiter yet (its own list,
 * sorted once, is searched): sorting, never comparing every pair.
 */
static int resolve_edges(struct reader *r) {
        struct analysis *a = r->a;
        _cleanup_free_ struct task_ref *refs = NULL;
        _cleanup_free_ uint64_t *had = NULL;
        size_t n_had = 0;
        uint64_t had_for = 0;           /* the task whose awaiters `had` holds */

        if (!r->n_edges)
                return 0;
        if (!(refs = malloc(a->n_tasks * sizeof(*refs))) ||
            !(had = malloc(PY_TASKS_MAX_AWAITERS * sizeof(*had))))
                return -ENOMEM;
        for (size_t i = 0; i < a->n_tasks; i++)
                refs[i] = (struct task_ref) { a->tasks[i].addr, i };
        qsort(refs, a->n_tasks, sizeof(*refs), by_ref);
        qsort(r->edges, r->n_edges, sizeof(*r->edges), by_edge);
        for (size_t e = 0; e < r->n_edges; e++) {
                const struct edge *ed = &r->edges[e];
                struct task_info *to = task_by_addr(a, refs, ed->awaited);
                struct task_info *from = task_by_addr(a, refs, ed->awaiter);
                bool awaits = ed->awaits;

                for (; e + 1 < r->n_edges && !by_edge(ed, &r->edges[e + 1]); e++)
                        awaits |= r->edges[e + 1].awaits;
                if (!to || !from)
                        continue;
                if (awaits) {
                        char *type = strdup(to->type ? to->type : "?");

                        if (!type)
                                return -ENOMEM;
                        free(from->awaits_type);
                        from->awaits = to->addr;
                        from->awaits_type = type;
                }
                /* the first edge to this task: what it had already, sorted */
                if (had_for != to->addr) {
                        had_for = to->addr;
                        n_had = to->awaited_by ? MIN(to->n_awaited_by, (size_t)PY_TASKS_MAX_AWAITERS) : 0;
                        if (n_had) {
                                memcpy(had, to->awaited_by, n_had * sizeof(*had));
                                qsort(had, n_had, sizeof(*had), by_u64);
                        }
                }
                if (bsearch(&ed->awaiter, had, n_had, sizeof(*had), by_u64) ||
                    to->n_awaited_by >= PY_TASKS_MAX_AWAITERS)
                        continue;
                uint64_t *by = realloc(to->awaited_by, (to->n_awaited_by + 1) * sizeof(*by));
                if (!by)
                        return -ENOMEM;
                to->awaited_by = by;
                to->awaited_by[to->n_awaited_by++] = ed->awaiter;
        }
        return 0;
}

/* a->tasks_note: what stands in for the tasks, with the interpreter's version */
static void note(struct analysis *a, const char *what) {
        if (asprintf(&a->tasks_note, "%s (CPython %u.%u)", what, a->py_major, a->py_minor) < 0)
                a->tasks_note = NULL;
}

struct running {
        uint64_t task;
        int32_t tid;
};

static int by_task(const void *x, const void *y) {
        const struct running *p = x, *q = y;

        return p->task < q->task ? -1 : p->task > q->task;
}

int py_tasks_read(struct analysis *a) {
        struct reader r = { .a = a, .budget = READ_BUDGET };
        int k;

        a->tasks_asked = true;
        if (!a->py_major)
                return 0;
        if (!a->layout.gen.present) {
                note(a, "the interpreter does not describe its asyncio tasks: 3.14 and later do");
                return 0;
        }
        /* without the C tasks' description, the others are still read */
        k = find_offsets(&r);
        if (k < 0 && k != -ENOENT)
                a->tasks_note = strdup("the _asyncio module's description of its tasks (.AsyncioDebug) is "
                                       "unreadable or not believable: its C tasks are not read");
        /* each thread's list, then each interpreter's (its gone threads' tasks); one OS thread that
         * ran several interpreters has entries sharing a thread state, and an interpreter has many:
         * each list is read once */
        _cleanup_(addr_set_clear) struct addr_set lists = {};
        for (int pass = 0; pass < 2 && k == 0; pass++)
                for (size_t i = 0; i < a->n_threads; i++) {
                        const struct thread_info *th = &a->threads[i];
                        uint64_t owner = pass == 0 ? th->tstate : th->interp;
                        uint64_t head = owner + r.off[pass == 0 ? AD_THREAD_TASKS_HEAD : AD_INTERP_TASKS_HEAD];
                        int added;

                        if (!owner || (added = addr_set_add(&lists, owner)) == 0)
                                continue;
                        if (added < 0 || read_list(&r, head, pass == 0 ? th->tid : 0, th->interp_id) < 0)
                                goto fail;
                }
        if (read_other_tasks(&r) < 0 || resolve_edges(&r) < 0)
                goto fail;
        if (k == -ENOENT && !a->n_tasks)
                note(a, "no asyncio tasks: the _asyncio module is not loaded");
        /* the task each thread was running: the threads' (address, tid) sorted, each task looked up */
        struct running *run = calloc(a->n_threads + 1, sizeof(*run));
        size_t n_run = 0;
        if (!run)
                goto fail;
        for (size_t i = 0; i < a->n_threads; i++) {
                uint64_t task;

                if (k == 0 && a->threads[i].tstate && py_read_ptr(a->target, a->threads[i].tstate,
                                                        (py_off)r.off[AD_THREAD_RUNNING_TASK], &task) == 0 &&
                    (task &= ~(uint64_t)3))
                        run[n_run++] = (struct running) { task, a->threads[i].tid };
        }
        qsort(run, n_run, sizeof(*run), by_task);
        for (size_t t = 0; n_run && t < a->n_tasks; t++) {
                struct running key = { a->tasks[t].addr, 0 };
                const struct running *hit = bsearch(&key, run, n_run, sizeof(*run), by_task);
                if (hit)
                        a->tasks[t].running_in = hit->tid;
        }
        free(run);
        addr_set_clear(&r.seen);
        free(r.edges);
        return 0;
fail:
        addr_set_clear(&r.seen);
        free(r.edges);
        return -ENOMEM;
}
