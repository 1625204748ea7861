/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "stack_merge.h"

struct builder {
        struct stack_item *v;
        size_t n, allocated;
};

static int add(struct builder *b, bool python, size_t index) {
        if (grow_array(&b->v, &b->allocated, b->n + 1, sizeof(*b->v)) < 0)
                return -ENOMEM;
        b->v[b->n++] = (struct stack_item) { .python = python, .index = index };
        return 0;
}

static void reverse(struct stack_item *v, size_t n) {
        for (size_t i = 0; i < n / 2; i++) {
                struct stack_item t = v[i];
                v[i] = v[n - 1 - i];
                v[n - 1 - i] = t;
        }
}

/* Python frames per eval-loop C frame: the index where each run ends (exclusive), innermost first. */
static size_t count_runs(const struct analysis *a, const struct thread_info *th, size_t *ends) {
        bool by_entry = a->py_major > 3 || (a->py_major == 3 && a->py_minor >= 11);
        size_t runs = 0;

        for (size_t i = 0; i < th->n_frames; i++)
                if (!by_entry || th->frames[i].entry || i + 1 == th->n_frames) {
                        if (ends)
                                ends[runs] = i + 1;
                        runs++;
                }
        return runs;
}

size_t stack_merge_runs(const struct analysis *a, const struct thread_info *th) {
        return count_runs(a, th, NULL);
}

int stack_merge(const struct analysis *a, const struct thread_info *th, enum native_mode mode,
                struct stack_item **items, size_t *n, bool *merged) {
        struct builder b = {};
        _cleanup_free_ size_t *ends = NULL;
        size_t evals = 0, runs = count_runs(a, th, NULL);
        bool all = mode == NATIVE_ALL;

        for (size_t i = 0; i < th->n_native; i++)
                evals += th->native[i].eval;
        *merged = mode != NATIVE_OFF && th->n_native > 0 && evals == runs;

        if (mode == NATIVE_OFF || !*merged) {
                /* Python frames, then (unmatched) native ones; each outermost first */
                for (size_t i = th->n_frames; i-- > 0;)
                        if (add(&b, true, i) < 0)
                                goto oom;
                if (mode != NATIVE_OFF)
                        for (size_t i = th->n_native; i-- > 0;)
                                if ((all || !th->native[i].hidden) && add(&b, false, i) < 0)
                                        goto oom;
                *items = b.v;
                *n = b.n;
                return 0;
        }

        size_t run = 0, next_py = 0;

        ends = malloc(MAX(runs, (size_t)1) * sizeof(size_t));
        if (!ends)
                goto oom;
        count_runs(a, th, ends);
        /* build innermost first, then turn it around */
        for (size_t i = 0; i < th->n_native; i++) {
                const struct native_frame_info *f = &th->native[i];

                if (f->eval) {
                        for (; next_py < ends[run]; next_py++)
                                if (add(&b, true, next_py) < 0)
                                        goto oom;
                        run++;
                        if (all && add(&b, false, i) < 0)
                                goto oom;
                } else if ((all || !f->hidden) && add(&b, false, i) < 0)
                        goto oom;
        }
        reverse(b.v, b.n);
        if (mode == NATIVE_LAST) {
                size_t last_py = b.n, w = 0;
                for (size_t i = 0; i < b.n; i++)
                        if (b.v[i].python)
                                last_py = i;
                for (size_t i = 0; i < b.n; i++)
                        if (b.v[i].python || last_py == b.n || i > last_py)
                                b.v[w++] = b.v[i];
                b.n = w;
        }
        *items = b.v;
        *n = b.n;
        return 0;
oom:
        free(b.v);
        return -ENOMEM;
}
