/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "analysis.h"
#include "live_process.h"
#include "native_unwind.h"
#include "py_frame.h"
#include "py_locals.h"
#include "py_runtime.h"
#include "py_tasks.h"

/* Add the core's threads that the interpreter does not know (--native-all). 0 or -ENOMEM. */
static int add_native_threads(struct analysis *a) {
        for (size_t i = 0; i < a->core->n_threads; i++) {
                const struct core_thread *ct = &a->core->threads[i];
                bool known = false;
                size_t allocated = a->n_threads;  /* the array is exactly this full */

                for (size_t k = 0; k < a->n_threads && !known; k++)
                        known = a->threads[k].tid == ct->tid;
                if (known)
                        continue;
                if (grow_array(&a->threads, &allocated, a->n_threads + 1, sizeof(*a->threads)) < 0)
                        return -ENOMEM;
                struct thread_info th = { .tid = ct->tid, .interp_id = -1, .crashed = ct == core_crashed_thread(a->core) };
                if (th.crashed) {
                        /* a crash in a thread Python does not know still leads the report */
                        memmove(a->threads + 1, a->threads, a->n_threads * sizeof(*a->threads));
                        a->threads[0] = th;
                        for (size_t k = 1; k <= a->n_threads; k++)
                                a->threads[k].crashed = false;
                } else
                        a->threads[a->n_threads] = th;
                a->n_threads++;
        }
        return 0;
}

/*
 * The analysis of a core or process, once opening it gave open_r and core (path: the core's, NULL
 * for a process): the steps after the opening.
 */
static enum analysis_status analyze(const char *path, int open_r, struct core_file *core,
                                    const struct analysis_options *opts, struct analysis **ret, const char **error) {
        struct analysis *a;
        int r;

        if (open_r < 0)
                return open_r == -ENOMEM ? ANALYSIS_INTERNAL : ANALYSIS_BAD_CORE;
        a = calloc(1, sizeof(*a));
        if (!a) {
                core_file_free(core);   /* a process stopped for the read runs on */
                return *error = "out of memory", ANALYSIS_INTERNAL;
        }
        a->core_path = path;
        a->core = core;
        r = target_open(a->core, &opts->target, &a->target, error);
        if (r < 0) {
                analysis_free(a);
                return r == -ENOMEM ? ANALYSIS_INTERNAL : ANALYSIS_BAD_EXECUTABLE;
        }
        a->native = opts->native;
        a->locals = opts->locals;
        r = py_runtime_analyze(a, opts, error);
        *ret = a;
        if (r == -ENOMEM) {
                core_file_resume(a->core);
                return ANALYSIS_INTERNAL;
        }
        if (r == 0 && opts->locals)
                py_locals_read(a, &opts->locals_limits);
        if (r == 0 && opts->tasks && py_tasks_read(a) < 0)
                r = -ENOMEM;
        /* the analysis drives the steps: native_unwind only unwinds the threads it is given */
        if (r == 0 && opts->native == NATIVE_ALL && add_native_threads(a) < 0)
                r = -ENOMEM;
        if (r == 0 && opts->native != NATIVE_OFF && native_unwind(a) < 0)
                r = -ENOMEM;
        /* a live process has given what it had: it runs on while the report is written */
        core_file_resume(a->core);
        /* a warning lost is a report that says less than it should, as any other lost allocation */
        if (r == -ENOMEM || a->target->out_of_memory || a->target->warnings.lost || a->warnings.lost)
                return *error = "out of memory", ANALYSIS_INTERNAL;
        if (a->core->truncated) {
                /* what remains may still be worth printing, but the caller must learn the core is damaged */
                static char msg[160];

                snprintf(msg, sizeof(msg), "the core is truncated (%llu of %llu bytes)%s",
                         (unsigned long long)a->core->src.size, (unsigned long long)a->core->expected_size,
                         r < 0 ? ": no Python interpreter found in what remains" :
                                 ": the report is incomplete");
                *error = msg;
                return ANALYSIS_BAD_CORE;
        }
        return r < 0 ? ANALYSIS_NO_PYTHON : ANALYSIS_OK;
}

enum analysis_status analysis_run(const char *path, const struct analysis_options *opts,
                                  struct analysis **ret, const char **error) {
        struct core_file *core = NULL;
        int r = core_file_open(path, &core, error);

        return analyze(path, r, core, opts, ret, error);
}

enum analysis_status analysis_run_process(pid_t pid, bool stop, const struct analysis_options *opts,
                                          struct analysis **ret, const char **error) {
        struct core_file *core = NULL;
        int r = core_file_open_process(pid, stop, &core, error);

        return analyze(NULL, r, core, opts, ret, error);
}

void analysis_free(struct analysis *a) {
        if (!a)
                return;
        for (size_t i = 0; i < a->n_threads; i++) {
                struct thread_info *th = &a->threads[i];

                for (size_t k = 0; k < th->n_frames; k++) {
                        struct py_frame_info *f = &th->frames[k];

                        free(f->function);
                        free(f->file);
                        for (size_t v = 0; v < f->n_vars; v++) {
                                free(f->vars[v].name);
                                free(f->vars[v].repr);
                        }
                        free(f->vars);
                        free(f->vars_error);
                }
                free(th->frames);
                free(th->truncated);
                free(th->exception);
                for (size_t k = 0; k < th->n_native; k++) {
                        free(th->native[k].function);
                        free(th->native[k].file);
                }
                free(th->native);
                free(th->native_error);
        }
        free(a->threads);
        for (size_t i = 0; i < a->n_tasks; i++) {
                struct task_info *ti = &a->tasks[i];

                for (size_t k = 0; k < ti->stack.n_frames; k++) {
                        free(ti->stack.frames[k].function);
                        free(ti->stack.frames[k].file);
                }
                free(ti->stack.frames);
                free(ti->stack.truncated);
                free(ti->name);
                free(ti->type);
                free(ti->awaited_by);
                free(ti->awaits_type);
        }
        free(a->tasks);
        free(a->tasks_note);
        code_cache_free(a->codes);
        strv_clear(&a->warnings);
        target_free(a->target);
        core_file_free(a->core);
        free(a);
}

static bool has_native(const struct thread_info *th, const char *function) {
        for (size_t i = 0; i < th->n_native; i++)
                if (th->native[i].function && strcmp(th->native[i].function, function) == 0)
                        return true;
        return false;
}

size_t thread_status(const struct thread_info *th, const char *words[3]) {
        size_t n = 0;

        if (th->tid == 0)
                words[n++] = "Thread terminated";
        if (th->has_gil)
                words[n++] = "Has the GIL";
        else if (has_native(th, "take_gil"))
                words[n++] = "Waiting for the GIL";
        else if (has_native(th, "drop_gil"))
                words[n++] = "Dropping the GIL";
        if (th->gc_collecting)
                words[n++] = "Garbage collecting";
        return n;
}
