/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "report_text.h"
#include "util.h"

struct style {
        const char *bold, *reset, *py, *c, *fn;
};

/* s, or "???" as PyStack writes what is unknown */
static const char *or_unknown(const char *s) {
        return s ? s : "???";
}

static void python_frame(FILE *out, const struct json_value *f, const struct text_options *o,
                         const struct style *st) {
        const char *source = json_str(json_get(f, "source"));
        const struct json_value *args = json_get(f, "arguments");

        fprintf(out, "    %s(Python)%s File \"", st->py, st->reset);
        esc_fputs(out, or_unknown(json_str(json_get(f, "file"))));
        fprintf(out, "\", line %d, in %s", (int)json_int(json_get(f, "line"), -1), st->fn);
        esc_fputs(out, or_unknown(json_str(json_get(f, "function"))));
        fprintf(out, "%s\n", st->reset);
        if (source && *source) {
                fputs("        ", out);
                esc_fputs(out, source);
                fputc('\n', out);
        }
        if (!o->locals || !args)
                return;
        if (json_str(json_get(f, "locals_error"))) {
                fputs("      (locals unavailable: ", out);
                esc_fputs(out, json_str(json_get(f, "locals_error")));
                fputs(")\n", out);
                return;
        }
        for (int arguments = 1; arguments >= 0; arguments--) {
                const struct json_value *vars = arguments ? args : json_get(f, "locals");

                for (size_t i = 0; i < json_len(vars); i++) {
                        const struct json_value *v = json_at(vars, i);

                        if (i == 0)
                                fputs(arguments ? "      Arguments:\n" : "      Locals:\n", out);
                        fputs("        ", out);
                        esc_fputs(out, json_str(json_get(v, "name")));
                        fputs(": ", out);
                        esc_fputs(out, json_str(json_get(v, "repr")));
                        fputc('\n', out);
                }
        }
}

static void native_frame(FILE *out, const struct json_value *f, const struct style *st) {
        const char *function = json_str(json_get(f, "function")), *file = json_str(json_get(f, "file"));
        const char *library = json_str(json_get(f, "library"));

        fprintf(out, "    %s(C)%s File \"", st->c, st->reset);
        /* PyStack's words: a frame with no symbol names its library as the file */
        esc_fputs(out, file ? file : !function && library ? library : "???");
        fprintf(out, "\", line %d, in %s", (int)json_int(json_get(f, "line"), 0), st->fn);
        esc_fputs(out, or_unknown(function));
        fprintf(out, "%s%s (", st->reset, json_true(json_get(f, "inlined")) ? " (inlined)" : "");
        esc_fputs(out, or_unknown(library));
        fputs(")\n", out);
}

/*
 * PyStack's header: every status in one bracket, [] when there is none.
 * With threads of several interpreters (PyStack 1.7), the status moves to
 * a line per interpreter, and an OS thread that ran several interpreters
 * has one header and one such line per interpreter, outermost first.
 */
static void thread_header(FILE *out, const struct json_value *th, bool multiple, bool continued,
                          const struct style *st) {
        const struct json_value *status = json_get(th, "status");
        const struct json_value *interp = json_get(th, "interpreter_id");

        if (!continued) {
                fprintf(out, "%sTraceback for thread %d ", st->bold, (int)json_int(json_get(th, "tid"), 0));
                if (!multiple)
                        fputc('[', out);
        }
        if (multiple) {
                if (!continued)
                        fprintf(out, "(most recent call last):%s\n", st->reset);
                if (interp && json_int(interp, -1) == 0)
                        fputs("  In the main interpreter [", out);
                else if (interp && json_int(interp, -1) > 0)
                        fprintf(out, "  In interpreter %lld [", (long long)json_int(interp, -1));
                else if (json_true(json_get(th, "python")))
                        fprintf(out, "  In the interpreter at 0x%llx [",
                                (unsigned long long)json_uint(json_get(th, "interpreter_address"), 0));
                else
                        fputs("  Not currently attached to any interpreter [", out);
        }
        for (size_t i = 0; i < json_len(status); i++) {
                fputs(i ? "," : "", out);
                esc_fputs(out, json_str(json_at(status, i)));
        }
        if (multiple)
                fputs("]\n", out);
        else
                fprintf(out, "] (most recent call last):%s\n", st->reset);
}

static void thread_block(FILE *out, const struct json_value *th, bool multiple, bool continued,
                         const struct text_options *o, const struct style *st) {
        const struct json_value *frames = json_get(th, "frames"), *exception = json_get(th, "exception");
        const char *truncated = json_str(json_get(th, "truncated"));
        const char *native_error = o->native ? json_str(json_get(th, "native_error")) : NULL;

        if (json_len(frames) == 0 && !truncated && !native_error && !multiple) {
                fprintf(out, "The frame stack for thread %d is empty\n", (int)json_int(json_get(th, "tid"), 0));
                return;
        }
        thread_header(out, th, multiple, continued, st);
        if (json_str(json_get(exception, "text"))) {
                fputs("    Exception: ", out);
                esc_fputs(out, json_str(json_get(exception, "text")));
                fputs(json_true(json_get(exception, "handled")) ? " (being handled)\n" : "\n", out);
        }
        if (truncated) {
                fputs("    (Python frames missing: ", out);
                esc_fputs(out, truncated);
                fputs(")\n", out);
        }
        if (native_error) {
                fputs("    (native frames missing: ", out);
                esc_fputs(out, native_error);
                fputs(")\n", out);
        }
        /* PyStack's words; it then shows the Python frames only, we add the native ones after them */
        const struct json_value *merged = json_get(th, "merged");
        if (o->native && merged && merged->type == JSON_FALSE)
                fputs("* - Unable to merge native stack due to insufficient native information - *\n", out);
        for (size_t i = 0; i < json_len(frames); i++) {
                const struct json_value *f = json_at(frames, i);
                const char *kind = json_str(json_get(f, "kind"));

                if (!kind || !strcmp(kind, "python"))
                        python_frame(out, f, o, st);
                else if (o->native)
                        native_frame(out, f, st);
        }
}

/* ---- asyncio tasks: a tree of who awaits whom, in the shape of `python -m asyncio pstree` ---- */

#define TASK_TREE_MAX_DEPTH 256         /* tasks nested deeper are not drawn (said so) */
#define TASK_TREE_MAX_MARGIN 480        /* bytes of left margin: deeper lines are drawn at this depth */

struct tree {
        FILE *out;
        const struct json_value *tasks;
        size_t n;
        uint64_t *addr;                 /* task i's address */
        size_t *order;                  /* indices sorted by address, to find a task by its address */
        size_t **children;              /* the tasks awaiting-by this one: its children */
        size_t *n_children;
        uint8_t *state;                 /* 0 not drawn, 1 on the path being drawn, 2 drawn */
        char *prefix;                   /* the tree's left margin, grown and cut as it is drawn */
        size_t prefix_len, prefix_size;
};

static const uint64_t *sort_key;

static int by_address(const void *x, const void *y) {
        uint64_t a = sort_key[*(const size_t *)x], b = sort_key[*(const size_t *)y];

        return a < b ? -1 : a > b;
}

/* The task at addr, or n. */
static size_t task_at(const struct tree *t, uint64_t addr) {
        size_t lo = 0, hi = t->n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (t->addr[t->order[mid]] < addr)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo < t->n && t->addr[t->order[lo]] == addr ? t->order[lo] : t->n;
}

static bool push_prefix(struct tree *t, const char *s) {
        size_t n = strlen(s);

        if (t->prefix_len >= TASK_TREE_MAX_MARGIN)
                return true;    /* a line stays readable however deep the tree */
        if (t->prefix_len + n + 1 > t->prefix_size) {
                size_t size = MAX(2 * t->prefix_size, t->prefix_len + n + 64);
                char *p = realloc(t->prefix, size);
                if (!p)
                        return false;
                t->prefix = p;
                t->prefix_size = size;
        }
        memcpy(t->prefix + t->prefix_len, s, n + 1);
        t->prefix_len += n;
        return true;
}

static void branch(struct tree *t, bool last) {
        fputs(t->prefix, t->out);
        fputs(last ? "\u2514\u2500\u2500 " : "\u251c\u2500\u2500 ", t->out);
}

static void task_line(struct tree *t, size_t i, const char *note) {
        const struct json_value *task = json_at(t->tasks, i);
        const char *name = json_str(json_get(task, "name"));

        fputs("(T) ", t->out);
        if (name)
                esc_fputs(t->out, name);
        else
                fprintf(t->out, "<task at 0x%llx>", (unsigned long long)t->addr[i]);
        if (json_int(json_get(task, "running_in"), 0) > 0)
                fprintf(t->out, " [running in thread %d]", (int)json_int(json_get(task, "running_in"), 0));
        if (json_get(task, "c_task") && json_get(task, "c_task")->type == JSON_FALSE) {
                fputs(" [not a C task: ", t->out);
                esc_fputs(t->out, or_unknown(json_str(json_get(task, "type"))));
                fputc(']', t->out);
        }
        if (note)
                fprintf(t->out, " [%s]", note);
        fputc('\n', t->out);
}

static void draw_task(struct tree *t, size_t i, bool last, unsigned depth) {
        const struct json_value *task = json_at(t->tasks, i), *frames = json_get(task, "frames");
        const struct json_value *awaits = json_get(task, "awaits");
        const char *truncated = json_str(json_get(task, "truncated"));
        size_t mark = t->prefix_len, awaited = t->n;

        if (awaits && awaits->type != JSON_OBJECT)
                awaits = NULL;

        branch(t, last);
        if (t->state[i] == 1) {
                task_line(t, i, "awaited by a task it awaits: a cycle");
                return;
        }
        if (t->state[i] == 2) {
                task_line(t, i, "shown above");
                return;
        }
        if (depth >= TASK_TREE_MAX_DEPTH) {
                task_line(t, i, "more than 256 tasks deep: not drawn");
                return;
        }
        task_line(t, i, NULL);
        t->state[i] = 1;
        if (!push_prefix(t, last ? "    " : "\u2502   "))
                goto out;
        /* its coroutine chain, each awaiting the next; the tasks awaiting on it hang from the last */
        for (size_t k = 0; k < json_len(frames); k++) {
                const struct json_value *f = json_at(frames, k);

                branch(t, true);
                fputc(' ', t->out);
                esc_fputs(t->out, or_unknown(json_str(json_get(f, "function"))));
                fputc(' ', t->out);
                esc_fputs(t->out, or_unknown(json_str(json_get(f, "file"))));
                fprintf(t->out, ":%d\n", (int)json_int(json_get(f, "line"), -1));
                if (!push_prefix(t, "    "))
                        goto out;
        }
        if (truncated) {
                branch(t, !t->n_children[i] && !awaits);
                fputs("(stack cut: ", t->out);
                esc_fputs(t->out, truncated);
                fputs(")\n", t->out);
        }
        if (awaits)
                awaited = task_at(t, json_uint(json_get(awaits, "address"), 0));
        for (size_t k = 0; k < t->n_children[i]; k++)
                draw_task(t, t->children[i][k], k + 1 == t->n_children[i] && !(awaits && awaited == t->n),
                          depth + 1);
        /* a future (a task's own is drawn as that task, where it awaits) */
        if (awaits && awaited == t->n) {
                branch(t, true);
                fputs("awaiting ", t->out);
                esc_fputs(t->out, or_unknown(json_str(json_get(awaits, "type"))));
                fprintf(t->out, " at 0x%llx\n", (unsigned long long)json_uint(json_get(awaits, "address"), 0));
        }
out:
        t->prefix_len = mark;
        if (t->prefix)
                t->prefix[mark] = 0;
        t->state[i] = 2;
}

static void tasks_section(FILE *out, const struct json_value *r) {
        const struct json_value *tasks = json_get(r, "tasks");
        const char *note = json_str(json_get(r, "tasks_note"));
        struct tree t = { .out = out, .tasks = tasks, .n = json_len(tasks) };
        size_t *counts = NULL, *slots = NULL;

        fputc('\n', out);
        if (note) {
                fputs("asyncio tasks: ", out);
                esc_fputs(out, note);
                fputc('\n', out);
                if (!t.n)
                        return;
        }
        fprintf(out, "asyncio tasks (%zu):\n", t.n);
        if (!t.n)
                return;
        t.addr = calloc(t.n, sizeof(*t.addr));
        t.order = calloc(t.n, sizeof(*t.order));
        t.children = calloc(t.n, sizeof(*t.children));
        t.n_children = calloc(t.n, sizeof(*t.n_children));
        t.state = calloc(t.n, 1);
        counts = calloc(t.n, sizeof(*counts));
        if (!t.addr || !t.order || !t.children || !t.n_children || !t.state || !counts || !push_prefix(&t, ""))
                goto done;
        for (size_t i = 0; i < t.n; i++) {
                t.addr[i] = json_uint(json_get(json_at(tasks, i), "address"), 0);
                t.order[i] = i;
        }
        sort_key = t.addr;
        qsort(t.order, t.n, sizeof(*t.order), by_address);
        /* children: each task under every listed task that awaits it */
        size_t edges = 0;
        for (size_t i = 0; i < t.n; i++) {
                const struct json_value *by = json_get(json_at(tasks, i), "awaited_by");
                for (size_t k = 0; k < json_len(by); k++) {
                        size_t p = task_at(&t, json_uint(json_at(by, k), 0));
                        if (p < t.n) {
                                counts[p]++;
                                edges++;
                        }
                }
        }
        slots = calloc(edges + 1, sizeof(*slots));
        if (!slots)
                goto done;
        for (size_t i = 0, used = 0; i < t.n; i++) {
                t.children[i] = slots + used;
                used += counts[i];
        }
        for (size_t i = 0; i < t.n; i++) {
                const struct json_value *by = json_get(json_at(tasks, i), "awaited_by");
                for (size_t k = 0; k < json_len(by); k++) {
                        size_t p = task_at(&t, json_uint(json_at(by, k), 0));
                        if (p < t.n)
                                t.children[p][t.n_children[p]++] = i;
                }
        }
        /* the roots: tasks no listed task awaits; then what only cycles reach */
        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < t.n; i++) {
                        bool awaited = false;
                        const struct json_value *by = json_get(json_at(tasks, i), "awaited_by");
                        for (size_t k = 0; k < json_len(by) && !awaited; k++)
                                awaited = task_at(&t, json_uint(json_at(by, k), 0)) < t.n;
                        if (t.state[i] == 0 && (pass == 1 || !awaited))
                                draw_task(&t, i, true, 0);
                }
done:
        if (!slots && t.n)
                fputs("(out of memory drawing the tasks)\n", out);
        free(slots);
        free(counts);
        free(t.addr);
        free(t.order);
        free(t.children);
        free(t.n_children);
        free(t.state);
        free(t.prefix);
}

int report_text_render(FILE *out, const struct json_value *r, const struct text_options *o) {
        const struct json_value *process = json_get(r, "process"), *threads = json_get(r, "threads");
        const struct json_value *signal = json_get(r, "signal");
        const char *exe = json_str(json_get(r, "executable"));
        const char *source = json_str(json_get(r, "executable_source"));
        bool multiple = json_true(json_get(r, "multiple_interpreters"));
        struct style st = { "", "", "", "", "" };
        int32_t previous_tid = 0;
        bool shown = false;

        const struct json_value *live = json_get(r, "live");

        if (o->color)
                st = (struct style) { "\033[1m", "\033[0m", "\033[32m", "\033[34m", "\033[33m" };
        /* a running process's report is its threads, as PyStack's remote prints it */
        if (live && live->type == JSON_OBJECT) {
                if (!json_true(json_get(live, "stopped")))
                        fputs("Read without stopping the process (--no-block): the stacks may not hold "
                              "together.\n\n", out);
                process = signal = NULL;
        } else {
                fputs(source && !strcmp(source, "argument") ? "Using executable given on the command line: " :
                      "Using executable found in the core file: ", out);
                esc_fputs(out, exe && *exe ? exe : "(unknown)");
                fputs("\n\n", out);
        }
        if (process && process->type == JSON_OBJECT) {
                const char *state = json_str(json_get(process, "state"));

                fputs("Core file information:\n", out);
                fprintf(out, "state: %c zombie: %s niceness: %d\n",
                        state && state[0] > ' ' && (unsigned char)state[0] < 0x7f ? state[0] : '?',
                        json_true(json_get(process, "zombie")) ? "True" : "False",
                        (int)json_int(json_get(process, "nice"), 0));
                fprintf(out, "pid: %d ppid: %d sid: %d\n", (int)json_int(json_get(process, "pid"), 0),
                        (int)json_int(json_get(process, "ppid"), 0), (int)json_int(json_get(process, "sid"), 0));
                fprintf(out, "uid: %u gid: %u pgrp: %d\n", (unsigned)json_uint(json_get(process, "uid"), 0),
                        (unsigned)json_uint(json_get(process, "gid"), 0), (int)json_int(json_get(process, "pgrp"), 0));
                fputs("executable: ", out);
                esc_fputs(out, json_str(json_get(process, "comm")));
                fputs(" arguments: ", out);
                esc_fputs(out, json_str(json_get(process, "args")));
                fputs("\n\n", out);
        }
        if (signal && signal->type == JSON_OBJECT) {
                const char *name = json_str(json_get(signal, "name"));

                fputs("The process died due receiving signal ", out);
                if (name)
                        esc_fputs(out, name);
                else
                        fprintf(out, "%d", (int)json_int(json_get(signal, "number"), 0));
                fputc('\n', out);
        }
        for (size_t i = 0; i < json_len(threads); i++) {
                const struct json_value *th = json_at(threads, i);
                int32_t tid = (int32_t)json_int(json_get(th, "tid"), 0);
                /* one OS thread in several interpreters: one block */
                bool continued = shown && multiple && tid > 0 && tid == previous_tid;

                /* a stored --native report shown without native frames: the threads Python knows */
                if (!o->native && json_get(th, "python") && !json_true(json_get(th, "python")))
                        continue;
                if (shown && !continued)
                        fputc('\n', out);
                thread_block(out, th, multiple, continued, o, &st);
                previous_tid = tid;
                shown = true;
        }
        if (o->tasks && json_get(r, "tasks") && json_get(r, "tasks")->type == JSON_ARRAY)
                tasks_section(out, r);
        fflush(out);
        return ferror(out) ? -EIO : 0;
}
