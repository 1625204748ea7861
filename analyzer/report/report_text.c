/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "escape.h"
#include "report_text.h"

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
        fflush(out);
        return ferror(out) ? -EIO : 0;
}
