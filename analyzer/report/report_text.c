/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "escape.h"
#include "report.h"
#include "source_lines.h"
#include "stack_merge.h"

/* psargs is padded with NULs and may end in a space */
static void put_args(FILE *out, const char *s) {
        size_t n = strlen(s);
        char buf[96];

        while (n && s[n - 1] == ' ')
                n--;
        snprintf(buf, sizeof(buf), "%.*s", (int)n, s);
        esc_fputs(out, buf);
}

struct style {
        const char *bold, *reset, *py, *c, *fn;
};

static void python_frame(FILE *out, const struct analysis *a, const struct py_frame_info *f,
                         const struct report_options *o, const struct style *st, struct source_cache *src) {
        const char *line;

        fprintf(out, "    %s(Python)%s File \"", st->py, st->reset);
        esc_fputs(out, f->file);
        fprintf(out, "\", line %d, in %s", f->line, st->fn);
        esc_fputs(out, f->function);
        fprintf(out, "%s\n", st->reset);
        line = o->source ? source_line(src, f->file, f->line) : NULL;
        if (line && *line) {
                fputs("        ", out);
                esc_fputs(out, line);
                fputc('\n', out);
        }
        if (!a->locals)
                return;
        if (f->vars_error) {
                fputs("      (locals unavailable: ", out);
                esc_fputs(out, f->vars_error);
                fputs(")\n", out);
                return;
        }
        for (int args = 1; args >= 0; args--) {
                bool header = false;

                for (size_t i = 0; i < f->n_vars; i++) {
                        if (f->vars[i].argument != (bool)args)
                                continue;
                        if (!header)
                                fputs(args ? "      Arguments:\n" : "      Locals:\n", out);
                        header = true;
                        fputs("        ", out);
                        esc_fputs(out, f->vars[i].name);
                        fputs(": ", out);
                        esc_fputs(out, f->vars[i].repr);
                        fputc('\n', out);
                }
        }
}

static void native_frame(FILE *out, const struct native_frame_info *f, const struct style *st) {
        fprintf(out, "    %s(C)%s File \"", st->c, st->reset);
        /* PyStack's words: a frame with no symbol names its library as the file */
        esc_fputs(out, f->file ? f->file : !f->function && f->library ? f->library : "???");
        fprintf(out, "\", line %d, in %s", f->line, st->fn);
        esc_fputs(out, f->function ? f->function : "???");
        fprintf(out, "%s%s (", st->reset, f->inlined ? " (inlined)" : "");
        esc_fputs(out, f->library ? f->library : "???");
        fputs(")\n", out);
}

/*
 * PyStack's header: every status in one bracket, [] when there is none.
 * With threads of several interpreters (PyStack 1.7), the status moves to
 * a line per interpreter, and an OS thread that ran several interpreters
 * has one header and one such line per interpreter, outermost first.
 */
static void thread_header(FILE *out, const struct analysis *a, const struct thread_info *th, bool continued,
                          const struct style *st) {
        const char *status[3];
        size_t n_status = thread_status(th, status);

        if (!continued) {
                fprintf(out, "%sTraceback for thread %d ", st->bold, th->tid);
                if (!a->multiple_interpreters)
                        fputc('[', out);
        }
        if (a->multiple_interpreters) {
                if (!continued)
                        fprintf(out, "(most recent call last):%s\n", st->reset);
                if (th->interp_id == 0)
                        fputs("  In the main interpreter [", out);
                else if (th->interp_id > 0)
                        fprintf(out, "  In interpreter %lld [", (long long)th->interp_id);
                else if (th->tstate)
                        fprintf(out, "  In the interpreter at 0x%llx [", (unsigned long long)th->interp);
                else
                        fputs("  Not currently attached to any interpreter [", out);
        }
        for (size_t i = 0; i < n_status; i++)
                fprintf(out, "%s%s", i ? "," : "", status[i]);
        if (a->multiple_interpreters)
                fputs("]\n", out);
        else
                fprintf(out, "] (most recent call last):%s\n", st->reset);
}

static void thread_block(FILE *out, const struct analysis *a, const struct thread_info *th, bool continued,
                         const struct report_options *o, struct source_cache *src) {
        struct style st = { "", "", "", "", "" };
        _cleanup_free_ struct stack_item *items = NULL;
        size_t n = 0;
        bool merged = false;

        if (o->color)
                st = (struct style) { "\033[1m", "\033[0m", "\033[32m", "\033[34m", "\033[33m" };
        if (th->n_frames == 0 && th->n_native == 0 && !th->truncated && !th->native_error &&
            !a->multiple_interpreters) {
                fprintf(out, "The frame stack for thread %d is empty\n", th->tid);
                return;
        }
        thread_header(out, a, th, continued, &st);
        if (th->exception) {
                fputs("    Exception: ", out);
                esc_fputs(out, th->exception);
                fputs(th->exception_handled ? " (being handled)\n" : "\n", out);
        }
        if (th->truncated) {
                fputs("    (Python frames missing: ", out);
                esc_fputs(out, th->truncated);
                fputs(")\n", out);
        }
        if (th->native_error) {
                fputs("    (native frames missing: ", out);
                esc_fputs(out, th->native_error);
                fputs(")\n", out);
        }
        if (stack_merge(a, th, a->native, &items, &n, &merged) < 0) {
                fputs("    (out of memory)\n", out);
                return;
        }
        /* PyStack's words; it then shows the Python frames only, we add the native ones after them */
        if (a->native != NATIVE_OFF && !merged && th->n_native && th->n_frames)
                fputs("* - Unable to merge native stack due to insufficient native information - *\n", out);
        for (size_t i = 0; i < n; i++) {
                if (items[i].python)
                        python_frame(out, a, &th->frames[items[i].index], o, &st, src);
                else
                        native_frame(out, &th->native[items[i].index], &st);
        }
}

int report_text(FILE *out, const struct analysis *a, const struct report_options *o) {
        const struct core_process *p = &a->core->process;
        const struct core_signal *s = &a->core->signal;
        struct source_cache *src = o->source ? source_cache_new(a->target->opts->lib_search_root) : NULL;
        int signo;

        fputs(a->target->opts->executable ? "Using executable given on the command line: " :
              "Using executable found in the core file: ", out);
        esc_fputs(out, a->target->exe_display ? a->target->exe_display : "(unknown)");
        fputs("\n\n", out);
        if (p->present) {
                fputs("Core file information:\n", out);
                fprintf(out, "state: %c zombie: %s niceness: %d\n",
                        p->state > ' ' && p->state < 0x7f ? p->state : '?', p->zombie ? "True" : "False", p->nice);
                fprintf(out, "pid: %d ppid: %d sid: %d\n", p->pid, p->ppid, p->sid);
                fprintf(out, "uid: %u gid: %u pgrp: %d\n", p->uid, p->gid, p->pgrp);
                fputs("executable: ", out);
                esc_fputs(out, p->fname);
                fputs(" arguments: ", out);
                put_args(out, p->psargs);
                fputs("\n\n", out);
        }
        signo = s->present ? s->signo : core_crashed_thread(a->core)->cursig;
        if (signo) {
                const char *name = signal_name(signo);

                if (name)
                        fprintf(out, "The process died due receiving signal %s\n", name);
                else
                        fprintf(out, "The process died due receiving signal %d\n", signo);
        }
        for (size_t i = 0; i < a->n_threads; i++) {
                const struct thread_info *th = &a->threads[i];
                /* one OS thread in several interpreters: one block */
                bool continued = i && a->multiple_interpreters && th->tid > 0 && th->tid == a->threads[i - 1].tid;

                if (i && !continued)
                        fputc('\n', out);
                thread_block(out, a, th, continued, o, src);
        }
        source_cache_free(src);
        fflush(out);
        return ferror(out) ? -EIO : 0;
}
