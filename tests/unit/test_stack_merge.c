/* SPDX-License-Identifier: MIT */
/*
 * TAP tests for analyzer/native/stack_merge.c: threads built in memory
 * (Python frames and symbolized native frames as native_unwind.c marks
 * them: eval, hidden, inlined), merged in every native mode.
 *
 * A stack is written as the report prints it, outermost first: Python
 * frames by name, native ones in brackets ("[main] <module> f [crash]").
 * Besides the hand-written cases, random threads are checked against a
 * second implementation of the contract in stack_merge.h that walks the
 * native stack outermost first (no reversal), and against its invariants
 * (every index in range, none twice, the stated fallback order).
 */
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "stack_merge.h"
#include "tap.h"
#include "util.h"

/* ---- building threads ---- */

static void init(struct analysis *a, struct thread_info *th, unsigned major, unsigned minor) {
        memset(a, 0, sizeof(*a));
        memset(th, 0, sizeof(*th));
        a->py_major = major;
        a->py_minor = minor;
        th->interp_id = -1;
}

/* Frames are added innermost first, as the walkers store them. */
static void py(struct thread_info *th, const char *name, bool entry) {
        if (grow_array(&th->frames, &th->allocated, th->n_frames + 1, sizeof(*th->frames)) < 0)
                abort();
        th->frames[th->n_frames++] = (struct py_frame_info) {
                .function = (char *)name, .line = -1, .entry = entry,
        };
}

enum { EVAL = 1, HIDDEN = 2, INLINED = 4 };

static void c(struct thread_info *th, const char *name, unsigned flags) {
        if (grow_array(&th->native, &th->native_allocated, th->n_native + 1, sizeof(*th->native)) < 0)
                abort();
        th->native[th->n_native] = (struct native_frame_info) {
                .pc = 0x1000 + th->n_native, .sp = 0x7ffe0000 + 0x100 * th->n_native, .function = (char *)name,
                .eval = flags & EVAL, .hidden = flags & HIDDEN, .inlined = flags & INLINED,
        };
        th->n_native++;
}

static void release(struct thread_info *th) {
        free(th->frames);
        free(th->native);
        th->frames = NULL;
        th->native = NULL;
        th->n_frames = th->n_native = th->allocated = th->native_allocated = 0;
}

/* ---- rendering ---- */

static char out[4096];

/* The merged stack as text, or "ENOMEM"; *merged as stack_merge says (it starts as `preset`). */
static const char *render(const struct analysis *a, const struct thread_info *th, enum native_mode mode,
                          bool preset, bool *merged) {
        struct stack_item *items = NULL;
        size_t n = 99, len = 0;

        *merged = preset;
        if (stack_merge(a, th, mode, &items, &n, merged) < 0)
                return "ENOMEM";
        out[0] = 0;
        for (size_t i = 0; i < n; i++) {
                const char *name;
                bool ok = items[i].python ? items[i].index < th->n_frames : items[i].index < th->n_native;

                if (!ok) {
                        snprintf(out, sizeof(out), "index out of range");
                        break;
                }
                name = items[i].python ? th->frames[items[i].index].function : th->native[items[i].index].function;
                len += snprintf(out + len, sizeof(out) - len, items[i].python ? "%s%s" : "%s[%s]",
                                i ? " " : "", name);
                if (len >= sizeof(out))
                        break;
        }
        free(items);
        return out;
}

static const char *mode_name(enum native_mode m) {
        return m == NATIVE_OFF ? "off" : m == NATIVE_ON ? "native" : m == NATIVE_ALL ? "native-all" : "native-last";
}

/* One check per mode: the stack and the merged flag. */
static void expect(const char *what, const struct analysis *a, const struct thread_info *th, enum native_mode mode,
                   bool want_merged, const char *want) {
        bool merged;
        const char *got = render(a, th, mode, !want_merged, &merged);  /* the flag must be written */

        if (!tap_ok(strcmp(got, want) == 0 && merged == want_merged, "%s, %s: %s%s", what, mode_name(mode),
                    want_merged ? "merged" : "not merged", *want ? "" : ", empty"))
                printf("#   got  (%s) \"%s\"\n#   want (%s) \"%s\"\n", merged ? "merged" : "not merged", got,
                       want_merged ? "merged" : "not merged", want);
}

/* ---- hand-written stacks ---- */

/* 3.10 and older: one eval-loop frame per Python frame. */
static void per_frame(void) {
        struct analysis a;
        struct thread_info th;

        init(&a, &th, 3, 10);
        py(&th, "h", false);
        py(&th, "g", true);             /* entry flags mean nothing before 3.11 */
        py(&th, "f", false);
        py(&th, "<module>", true);
        c(&th, "crash", 0);
        c(&th, "PyCFunction_Call", HIDDEN);
        c(&th, "_PyEval_EvalFrameDefault", EVAL);       /* h */
        c(&th, "_PyFunction_Vectorcall", HIDDEN);
        c(&th, "_PyEval_EvalFrameDefault", EVAL);       /* g */
        c(&th, "_PyEval_EvalFrameDefault", EVAL);       /* f */
        c(&th, "_PyEval_EvalFrameDefault", EVAL);       /* <module> */
        c(&th, "run_mod", HIDDEN);
        c(&th, "Py_RunMain", 0);
        c(&th, "main", 0);
        TAP_EQ_INT(stack_merge_runs(&a, &th), 4, "3.10: one run per Python frame");
        expect("3.10", &a, &th, NATIVE_OFF, false, "<module> f g h");
        expect("3.10", &a, &th, NATIVE_ON, true, "[main] [Py_RunMain] <module> f g h [crash]");
        expect("3.10", &a, &th, NATIVE_ALL, true,
               "[main] [Py_RunMain] [run_mod] [_PyEval_EvalFrameDefault] <module> [_PyEval_EvalFrameDefault] f "
               "[_PyEval_EvalFrameDefault] g [_PyFunction_Vectorcall] [_PyEval_EvalFrameDefault] h "
               "[PyCFunction_Call] [crash]");
        expect("3.10", &a, &th, NATIVE_LAST, true, "<module> f g h [crash]");

        /* 2.7 (PyEval_EvalFrameEx) counts the same way */
        a.py_major = 2;
        a.py_minor = 7;
        TAP_EQ_INT(stack_merge_runs(&a, &th), 4, "2.7: one run per Python frame");
        expect("2.7", &a, &th, NATIVE_ON, true, "[main] [Py_RunMain] <module> f g h [crash]");
        /* no interpreter found (0.0): nothing to count by entry either */
        a.py_major = a.py_minor = 0;
        TAP_EQ_INT(stack_merge_runs(&a, &th), 4, "0.0: one run per Python frame");
        release(&th);
}

/* 3.11 and later: one eval-loop frame runs the frames up to and including an entry frame. */
static void by_entry(void) {
        struct analysis a;
        struct thread_info th;

        init(&a, &th, 3, 12);
        py(&th, "h", false);
        py(&th, "g", true);
        py(&th, "f", false);
        py(&th, "<module>", true);
        c(&th, "crash", 0);
        c(&th, "_PyEval_EvalFrameDefault", EVAL);       /* h, g */
        c(&th, "_PyObject_Vectorcall", HIDDEN);
        c(&th, "ext_call", 0);                          /* a C extension that called back into Python */
        c(&th, "_PyEval_EvalFrameDefault", EVAL);       /* f, <module> */
        c(&th, "main", 0);
        TAP_EQ_INT(stack_merge_runs(&a, &th), 2, "3.12: runs end at entry frames");
        expect("3.12", &a, &th, NATIVE_OFF, false, "<module> f g h");
        expect("3.12", &a, &th, NATIVE_ON, true, "[main] <module> f [ext_call] g h [crash]");
        expect("3.12", &a, &th, NATIVE_ALL, true,
               "[main] [_PyEval_EvalFrameDefault] <module> f [ext_call] [_PyObject_Vectorcall] "
               "[_PyEval_EvalFrameDefault] g h [crash]");
        /* only what lies below the innermost Python frame: ext_call, between two runs, goes */
        expect("3.12", &a, &th, NATIVE_LAST, true, "<module> f g h [crash]");

        /* 3.11 is the first version that counts by entry; a later major too */
        a.py_minor = 11;
        TAP_EQ_INT(stack_merge_runs(&a, &th), 2, "3.11: by entry frame");
        a.py_major = 4;
        a.py_minor = 0;
        TAP_EQ_INT(stack_merge_runs(&a, &th), 2, "4.0: by entry frame");
        a.py_major = 3;
        a.py_minor = 12;

        /* the outermost frame ends a run even when it is not marked entry (a truncated walk) */
        th.frames[3].entry = false;
        TAP_EQ_INT(stack_merge_runs(&a, &th), 2, "the outermost frame ends the last run");
        expect("3.12 unmarked outermost", &a, &th, NATIVE_ON, true, "[main] <module> f [ext_call] g h [crash]");
        /* no entry at all: one run */
        th.frames[1].entry = false;
        TAP_EQ_INT(stack_merge_runs(&a, &th), 1, "no entry frame: one run");
        release(&th);

        /* every frame an entry: as many runs as frames */
        init(&a, &th, 3, 13);
        py(&th, "b", true);
        py(&th, "a", true);
        c(&th, "_PyEval_EvalFrameDefault", EVAL);
        c(&th, "_PyEval_EvalFrameDefault", EVAL);
        TAP_EQ_INT(stack_merge_runs(&a, &th), 2, "every frame an entry");
        expect("3.13 all entries", &a, &th, NATIVE_ON, true, "a b");
        /* the same frames, all of them one run, need one eval-loop frame, not two */
        th.frames[0].entry = false;
        expect("3.13 one run, two eval frames", &a, &th, NATIVE_ON, false,
               "a b [_PyEval_EvalFrameDefault] [_PyEval_EvalFrameDefault]");
        release(&th);
}

/* The merge is refused when the counts differ: Python frames, then the native ones, each outermost first. */
static void mismatch(void) {
        struct analysis a;
        struct thread_info th;

        init(&a, &th, 3, 12);
        py(&th, "h", false);
        py(&th, "g", true);
        py(&th, "f", false);
        py(&th, "<module>", true);
        c(&th, "crash", 0);
        c(&th, "_PyObject_Vectorcall", HIDDEN);
        c(&th, "_PyEval_EvalFrameDefault", EVAL);       /* one eval frame for two runs */
        c(&th, "main", 0);
        expect("fewer eval frames than runs", &a, &th, NATIVE_OFF, false, "<module> f g h");
        expect("fewer eval frames than runs", &a, &th, NATIVE_ON, false,
               "<module> f g h [main] [_PyEval_EvalFrameDefault] [crash]");
        expect("fewer eval frames than runs", &a, &th, NATIVE_ALL, false,
               "<module> f g h [main] [_PyEval_EvalFrameDefault] [_PyObject_Vectorcall] [crash]");
        /* --native-last cannot tell which native frames lie below the last Python frame: all of them */
        expect("fewer eval frames than runs", &a, &th, NATIVE_LAST, false,
               "<module> f g h [main] [_PyEval_EvalFrameDefault] [crash]");

        c(&th, "_PyEval_EvalFrameDefault", EVAL);
        c(&th, "_PyEval_EvalFrameDefault", EVAL);       /* now three for two runs */
        expect("more eval frames than runs", &a, &th, NATIVE_ON, false,
               "<module> f g h [_PyEval_EvalFrameDefault] [_PyEval_EvalFrameDefault] [main] "
               "[_PyEval_EvalFrameDefault] [crash]");
        release(&th);

        /* Python frames lost (an unreadable thread state) but eval frames on the native stack */
        init(&a, &th, 3, 12);
        c(&th, "crash", 0);
        c(&th, "_PyEval_EvalFrameDefault", EVAL);
        c(&th, "main", 0);
        expect("eval frames without Python frames", &a, &th, NATIVE_ON, false,
               "[main] [_PyEval_EvalFrameDefault] [crash]");
        expect("eval frames without Python frames", &a, &th, NATIVE_LAST, false,
               "[main] [_PyEval_EvalFrameDefault] [crash]");
        release(&th);
}

static void empty(void) {
        struct analysis a;
        struct thread_info th;
        enum native_mode modes[] = { NATIVE_OFF, NATIVE_ON, NATIVE_ALL, NATIVE_LAST };

        /* nothing at all: no frames, and nothing to call merged (the report says "empty") */
        init(&a, &th, 3, 12);
        for (size_t m = 0; m < ELEMENTSOF(modes); m++)
                expect("no frames", &a, &th, modes[m], false, "");

        /* Python frames, no native ones (unwinding failed): the Python frames alone, not merged */
        py(&th, "f", false);
        py(&th, "<module>", true);
        for (size_t m = 0; m < ELEMENTSOF(modes); m++)
                expect("no native frames", &a, &th, modes[m], false, "<module> f");
        release(&th);

        /* a thread Python does not know (--native-all): native frames only, nothing to replace */
        init(&a, &th, 3, 12);
        c(&th, "epoll_wait", 0);
        c(&th, "_PyThread_run", HIDDEN);
        c(&th, "start_thread", 0);
        expect("native frames only", &a, &th, NATIVE_OFF, false, "");
        expect("native frames only", &a, &th, NATIVE_ON, true, "[start_thread] [epoll_wait]");
        expect("native frames only", &a, &th, NATIVE_ALL, true, "[start_thread] [_PyThread_run] [epoll_wait]");
        expect("native frames only", &a, &th, NATIVE_LAST, true, "[start_thread] [epoll_wait]");
        release(&th);

        /* native frames that are all hidden: merged, and nothing left to show */
        init(&a, &th, 3, 12);
        c(&th, "_PyThread_run", HIDDEN);
        expect("hidden frames only", &a, &th, NATIVE_ON, true, "");
        expect("hidden frames only", &a, &th, NATIVE_ALL, true, "[_PyThread_run]");
        release(&th);
}

/* Inlined frames are frames of their own: kept in place, hidden or not like any other. */
static void inlined(void) {
        struct analysis a;
        struct thread_info th;

        init(&a, &th, 3, 12);
        py(&th, "f", false);
        py(&th, "<module>", true);
        c(&th, "crash_helper", INLINED);                /* inlined into ext_func */
        c(&th, "ext_func", 0);
        c(&th, "_Py_INCREF", INLINED | HIDDEN);          /* inlined into the eval loop, plumbing */
        c(&th, "_PyEval_EvalFrameDefault", EVAL);
        c(&th, "main", 0);
        expect("inlined frames", &a, &th, NATIVE_ON, true, "[main] <module> f [ext_func] [crash_helper]");
        expect("inlined frames", &a, &th, NATIVE_ALL, true,
               "[main] [_PyEval_EvalFrameDefault] <module> f [_Py_INCREF] [ext_func] [crash_helper]");
        expect("inlined frames", &a, &th, NATIVE_LAST, true, "<module> f [ext_func] [crash_helper]");
        release(&th);
}

/*
 * One OS thread that ran two interpreters: native_unwind splits the shared
 * native stack into each entry's part (native_sp_end: where the part ends).
 * Each part merges with its own Python frames; when the split failed, the
 * outermost entry kept the whole stack and the others none, and no merge
 * may be guessed.
 */
static void subinterpreters(void) {
        struct analysis a;
        struct thread_info outer, inner;

        init(&a, &outer, 3, 12);
        init(&a, &inner, 3, 12);
        a.multiple_interpreters = true;
        outer.tid = inner.tid = 77;
        outer.interp_id = 0;
        inner.interp_id = 1;

        py(&outer, "run_sub", false);
        py(&outer, "<module>", true);
        py(&inner, "<script>", true);

        /* split: the inner part ends where the C call that switched interpreters begins */
        c(&inner, "crash", 0);
        c(&inner, "_PyEval_EvalFrameDefault", EVAL);
        c(&outer, "_interpreters_exec", 0);
        c(&outer, "_PyEval_EvalFrameDefault", EVAL);
        c(&outer, "main", 0);
        inner.native_sp_end = outer.native[0].sp;
        outer.native_sp_end = 0;
        expect("subinterpreter's part", &a, &inner, NATIVE_ON, true, "<script> [crash]");
        expect("subinterpreter's part", &a, &inner, NATIVE_LAST, true, "<script> [crash]");
        expect("main interpreter's part", &a, &outer, NATIVE_ON, true, "[main] <module> run_sub [_interpreters_exec]");
        expect("main interpreter's part", &a, &outer, NATIVE_LAST, true, "<module> run_sub [_interpreters_exec]");
        /* where the part ends is the unwinder's business, not the merge's */
        inner.native_sp_end = 0;
        expect("subinterpreter's part, native_sp_end 0", &a, &inner, NATIVE_ON, true, "<script> [crash]");

        /* the split failed: the outermost entry has the whole stack (two eval frames, one run) */
        release(&outer);
        release(&inner);
        py(&outer, "run_sub", false);
        py(&outer, "<module>", true);
        py(&inner, "<script>", true);
        c(&outer, "crash", 0);
        c(&outer, "_PyEval_EvalFrameDefault", EVAL);
        c(&outer, "_interpreters_exec", 0);
        c(&outer, "_PyEval_EvalFrameDefault", EVAL);
        c(&outer, "main", 0);
        expect("unsplit shared stack", &a, &outer, NATIVE_ON, false,
               "<module> run_sub [main] [_PyEval_EvalFrameDefault] [_interpreters_exec] "
               "[_PyEval_EvalFrameDefault] [crash]");
        expect("subinterpreter without its part", &a, &inner, NATIVE_ON, false, "<script>");
        expect("subinterpreter without its part", &a, &inner, NATIVE_ALL, false, "<script>");
        release(&outer);
        release(&inner);
}

/* ---- a second implementation of the contract, outermost first ---- */

struct ref {
        struct stack_item v[512];
        size_t n;
};

static void ref_add(struct ref *r, bool python, size_t index) {
        r->v[r->n++] = (struct stack_item) { .python = python, .index = index };
}

static bool ref_merge(const struct analysis *a, const struct thread_info *th, enum native_mode mode,
                      struct ref *r) {
        bool by_entry = a->py_major > 3 || (a->py_major == 3 && a->py_minor >= 11);
        size_t start[256], end[256], runs = 0, evals = 0;
        bool all = mode == NATIVE_ALL, merged;

        /* runs innermost first: [start, end) of frames */
        for (size_t i = 0; i < th->n_frames; i++) {
                if (i == 0 || (by_entry && th->frames[i - 1].entry) || !by_entry)
                        start[runs++] = i;
                end[runs - 1] = i + 1;
        }
        for (size_t i = 0; i < th->n_native; i++)
                evals += th->native[i].eval;
        merged = mode != NATIVE_OFF && th->n_native && evals == runs;
        r->n = 0;
        if (!merged) {
                for (size_t i = th->n_frames; i-- > 0;)
                        ref_add(r, true, i);
                for (size_t i = th->n_native; mode != NATIVE_OFF && i-- > 0;)
                        if (all || !th->native[i].hidden)
                                ref_add(r, false, i);
                return false;
        }
        /* the outermost eval frame runs the outermost run */
        size_t run = runs;
        for (size_t i = th->n_native; i-- > 0;) {
                const struct native_frame_info *f = &th->native[i];

                if (f->eval) {
                        if (all)
                                ref_add(r, false, i);
                        run--;
                        for (size_t k = end[run]; k-- > start[run];)
                                ref_add(r, true, k);
                } else if (all || !f->hidden)
                        ref_add(r, false, i);
        }
        if (mode == NATIVE_LAST && th->n_frames) {
                /* drop the native frames above the innermost Python frame (index 0) */
                size_t w = 0;
                bool below = false;

                for (size_t i = 0; i < r->n; i++) {
                        if (r->v[i].python || below)
                                r->v[w++] = r->v[i];
                        if (r->v[i].python && r->v[i].index == 0)
                                below = true;
                }
                r->n = w;
        }
        return true;
}

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint64_t next_rand(void) {
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        return rng * 0x2545f4914f6cdd1dull;
}

static void random_threads(void) {
        static const unsigned versions[][2] = { { 2, 7 }, { 3, 6 }, { 3, 10 }, { 3, 11 }, { 3, 12 }, { 3, 14 } };
        enum native_mode modes[] = { NATIVE_OFF, NATIVE_ON, NATIVE_ALL, NATIVE_LAST };
        size_t checked = 0, wrong = 0, merged_cases = 0, refused_cases = 0, bad_index = 0, twice = 0;

        for (int iter = 0; iter < 3000; iter++) {
                struct analysis a;
                struct thread_info th;
                const unsigned *v = versions[next_rand() % ELEMENTSOF(versions)];
                size_t nf = next_rand() % 12, nn = next_rand() % 16;

                init(&a, &th, v[0], v[1]);
                for (size_t i = 0; i < nf; i++)
                        py(&th, "p", next_rand() % 3 == 0);
                /* mostly as many eval frames as runs, sometimes one more or less */
                size_t runs = stack_merge_runs(&a, &th), evals = runs;
                int skew = (int)(next_rand() % 5) - 2;
                if (skew == -1 && evals > 0)
                        evals--;
                else if (skew == 1)
                        evals++;
                size_t total = nn + evals;
                for (size_t i = 0; i < total; i++) {
                        size_t left = total - i;
                        bool eval = evals > 0 && next_rand() % left < evals;
                        unsigned fl = eval ? EVAL : (next_rand() % 3 == 0 ? HIDDEN : 0) | (next_rand() % 4 == 0 ? INLINED : 0);

                        if (eval)
                                evals--;
                        c(&th, "n", fl);
                }
                for (size_t m = 0; m < ELEMENTSOF(modes); m++) {
                        struct stack_item *items = NULL;
                        size_t n = 0;
                        bool merged, want_merged;
                        struct ref r;
                        bool seen_py[16] = {}, seen_c[64] = {};

                        if (stack_merge(&a, &th, modes[m], &items, &n, &merged) < 0) {
                                wrong++;
                                continue;
                        }
                        checked++;
                        want_merged = ref_merge(&a, &th, modes[m], &r);
                        merged_cases += want_merged;
                        refused_cases += !want_merged && modes[m] != NATIVE_OFF && th.n_native && th.n_frames;
                        for (size_t i = 0; i < n; i++) {
                                size_t k = items[i].index;
                                if (items[i].python ? k >= th.n_frames : k >= th.n_native) {
                                        bad_index++;
                                        continue;
                                }
                                bool *seen = items[i].python ? &seen_py[k] : &seen_c[k];
                                twice += *seen;
                                *seen = true;
                        }
                        bool same = merged == want_merged && n == r.n;
                        for (size_t i = 0; same && i < n; i++)
                                same = items[i].python == r.v[i].python && items[i].index == r.v[i].index;
                        if (!same) {
                                if (wrong++ < 3) {
                                        printf("#   case %d (%u.%u, %s, %zu Python, %zu native) differs:\n#   got ",
                                               iter, a.py_major, a.py_minor, mode_name(modes[m]), th.n_frames,
                                               th.n_native);
                                        for (size_t i = 0; i < n; i++)
                                                printf(" %c%zu", items[i].python ? 'p' : 'n', items[i].index);
                                        printf("\n#   want");
                                        for (size_t i = 0; i < r.n; i++)
                                                printf(" %c%zu", r.v[i].python ? 'p' : 'n', r.v[i].index);
                                        printf("\n");
                                }
                        }
                        free(items);
                }
                release(&th);
        }
        tap_ok(wrong == 0, "random threads: %zu of %zu merges as the contract says", checked - wrong, checked);
        tap_ok(merged_cases > 1000 && refused_cases > 500, "random threads: both paths taken (%zu merged, %zu refused)",
               merged_cases, refused_cases);
        tap_ok(bad_index == 0 && twice == 0, "random threads: every index in range, no frame twice");
}

/* ---- sizes ---- */

static void large(void) {
        struct analysis a;
        struct thread_info th;
        const size_t runs = 100000;
        struct stack_item *items = NULL;
        size_t n = 0;
        bool merged = false, ok = true;

        /* 100000 runs of two Python frames, an eval frame and a hidden one each */
        init(&a, &th, 3, 12);
        for (size_t i = 0; i < runs; i++) {
                py(&th, "inner", false);
                py(&th, "outer", true);
        }
        c(&th, "crash", 0);
        for (size_t i = 0; i < runs; i++) {
                c(&th, "_PyEval_EvalFrameDefault", EVAL);
                c(&th, "_PyObject_Vectorcall", HIDDEN);
        }
        TAP_EQ_INT(stack_merge_runs(&a, &th), runs, "100000 runs counted");
        TAP_EQ_INT(stack_merge(&a, &th, NATIVE_ON, &items, &n, &merged), 0, "large stack merges");
        tap_ok(merged && n == 2 * runs + 1, "large stack: every Python frame and the crash site (%zu items)", n);
        for (size_t i = 0; ok && i + 1 < n; i++)
                ok = items[i].python && items[i].index == 2 * runs - 1 - i;
        tap_ok(ok && n && !items[n - 1].python && items[n - 1].index == 0, "large stack: in order");
        free(items);
        items = NULL;
        TAP_EQ_INT(stack_merge(&a, &th, NATIVE_ALL, &items, &n, &merged), 0, "large stack, native-all");
        tap_ok(merged && n == th.n_frames + th.n_native, "large stack, native-all: every frame once (%zu)", n);
        free(items);
        items = NULL;
        TAP_EQ_INT(stack_merge(&a, &th, NATIVE_LAST, &items, &n, &merged), 0, "large stack, native-last");
        tap_ok(merged && n == th.n_frames + 1, "large stack, native-last: Python frames and the crash site");
        free(items);
        items = NULL;
        /* one eval frame too many: refused, everything still there */
        c(&th, "_PyEval_EvalFrameDefault", EVAL);
        TAP_EQ_INT(stack_merge(&a, &th, NATIVE_ALL, &items, &n, &merged), 0, "large mismatched stack");
        tap_ok(!merged && n == th.n_frames + th.n_native && items[0].python && items[0].index == th.n_frames - 1 &&
               !items[th.n_frames].python && items[th.n_frames].index == th.n_native - 1,
               "large mismatched stack: Python frames, then native ones, outermost first");
        free(items);
        release(&th);
}

int main(void) {
        per_frame();
        by_entry();
        mismatch();
        empty();
        inlined();
        subinterpreters();
        random_threads();
        large();
        return tap_done();
}
