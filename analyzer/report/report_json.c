/* SPDX-License-Identifier: MIT */
#include <signal.h>
#include <string.h>

#include "cmdline.h"
#include "escape.h"
#include "json.h"
#include "report.h"
#include "report_text.h"
#include "py_object.h"
#include "source_lines.h"
#include "stack_merge.h"

void fput_json_string(FILE *out, const char *s) {
        esc_fput_json(out, s, strlen(s));
}

/* Text from notes is fixed-size and may hold anything, kept byte for byte (escape.h). */
static void put_note_string(FILE *out, const char *s, bool trim) {
        size_t n = strlen(s);

        while (trim && n && s[n - 1] == ' ')
                n--;
        esc_fput_json(out, s, n);
}

static bool fault_signal(int signo) {
        return signo == SIGSEGV || signo == SIGBUS || signo == SIGILL || signo == SIGFPE;
}

static void put_vars(FILE *out, const struct py_frame_info *f, bool arguments) {
        bool first = true;

        fputs(arguments ? ",\"arguments\":[" : ",\"locals\":[", out);
        for (size_t i = 0; i < f->n_vars; i++) {
                if (f->vars[i].argument != arguments)
                        continue;
                fputs(first ? "{\"name\":" : ",{\"name\":", out);
                first = false;
                fput_json_string(out, f->vars[i].name);
                fputs(",\"repr\":", out);
                fput_json_string(out, f->vars[i].repr);
                fputc('}', out);
        }
        fputc(']', out);
}

/* vars: the arguments and locals members (--locals; a task's coroutine frames have none read) */
static void put_python_frame(FILE *out, const struct analysis *a, const struct py_frame_info *f,
                             struct source_cache *src, bool vars) {
        const char *line = src ? source_line(src, f->file, f->line) : NULL;

        fputs("{\"kind\":\"python\",\"function\":", out);
        fput_json_string(out, f->function);
        fputs(",\"file\":", out);
        fput_json_string(out, f->file);
        fprintf(out, ",\"line\":%d,\"address\":%llu,\"source\":", f->line, (unsigned long long)f->addr);
        if (line && *line)
                fput_json_string(out, line);
        else
                fputs("null", out);
        if (a->locals && vars) {
                put_vars(out, f, true);
                put_vars(out, f, false);
                fputs(",\"locals_error\":", out);
                if (f->vars_error)
                        fput_json_string(out, f->vars_error);
                else
                        fputs("null", out);
        }
        fputc('}', out);
}

static void put_json_or_null(FILE *out, const char *s) {
        if (s)
                fput_json_string(out, s);
        else
                fputs("null", out);
}

/* A number, or null when there is none (present false). */
static void put_number_or_null(FILE *out, long long v, bool present) {
        if (present)
                fprintf(out, "%lld", v);
        else
                fputs("null", out);
}

static void put_native_frame(FILE *out, const struct native_frame_info *f) {
        fputs("{\"kind\":\"native\",\"function\":", out);
        put_json_or_null(out, f->function);
        fputs(",\"file\":", out);
        put_json_or_null(out, f->file);
        fprintf(out, ",\"line\":%d,\"library\":", f->line);
        put_json_or_null(out, f->library);
        fprintf(out, ",\"address\":%llu,\"inlined\":%s,\"eval\":%s}", (unsigned long long)f->pc,
                f->inlined ? "true" : "false", f->eval ? "true" : "false");
}

static uint64_t fnv_bytes(uint64_t h, const unsigned char *s, size_t n) {
        for (size_t i = 0; i < n; i++) {
                h ^= s[i];
                h *= 0x100000001b3ULL;
        }
        return h;
}

/*
 * FNV-1a, 64 bits, with a separator after each string: stable across runs and builds, which is
 * all a signature needs ("ab","c" and "a","bc" differ).  The text is hashed as pystackd once
 * read it back from the report with SQLite: a byte that is not UTF-8, which the report writes
 * as "\udcNN", as the UTF-8 of U+DCNN.
 */
static uint64_t fnv(uint64_t h, const char *s) {
        size_t n = s ? strlen(s) : 0;
        struct esc_piece p;

        for (size_t i = 0; i < n; i += p.consumed) {
                esc_next(s + i, n - i, ESC_JSON, &p);
                if (p.len == 6 && !memcmp(p.text, "\\udc", 4)) {
                        unsigned cp = 0xdc00 + (unsigned char)s[i];
                        unsigned char u[3] = { 0xed, (unsigned char)(0x80 | ((cp >> 6) & 0x3f)),
                                               (unsigned char)(0x80 | (cp & 0x3f)) };
                        h = fnv_bytes(h, u, 3);
                } else
                        h = fnv_bytes(h, (const unsigned char *)s + i, p.consumed);
        }
        h ^= 0xff;
        return h * 0x100000001b3ULL;
}

/* What the report says about the crash as a whole, derived once, here. */
struct crash_summary {
        char signature[17];
        char summary[512];
        const struct py_frame_info *frame;      /* the crashed thread's innermost Python frame */
};

/* The thread the signal hit (the first one when no thread says so). */
static const struct thread_info *crashed_thread(const struct analysis *a) {
        for (size_t i = 0; i < a->n_threads; i++)
                if (a->threads[i].crashed)
                        return &a->threads[i];
        return a->n_threads ? &a->threads[0] : NULL;
}

/*
 * The signature: the signal and the crashed thread's eight innermost named frames of the
 * report (kind, function, and the file name of a Python frame or the library of a native one),
 * not their lines, so that it survives an edit elsewhere.  The summary: the signal, the
 * innermost Python frame, and the C function through which the Python code around it called
 * it.  pystackd grouped crashes by exactly this before the analyzer computed it: a change here
 * splits every group a store holds.
 */
static void summarize(const struct analysis *a, int signo, struct crash_summary *c) {
        const struct thread_info *th = crashed_thread(a);
        _cleanup_free_ struct stack_item *items = NULL;
        uint64_t h = fnv(0xcbf29ce484222325ULL, signal_full_name(signo));
        const char *via = NULL, *gap = NULL;
        bool gap_done = false, merged;
        size_t n = 0, counted = 0;

        c->frame = NULL;
        if (th && stack_merge(a, th, a->native, &items, &n, &merged) < 0) {
                a->target->out_of_memory = true;        /* a signature of no frames would be wrong */
                n = 0;
        }
        for (size_t k = n; k-- > 0;) {
                const struct py_frame_info *pf = items[k].python ? &th->frames[items[k].index] : NULL;
                const struct native_frame_info *nf = pf ? NULL : &th->native[items[k].index];
                const char *function = pf ? pf->function : nf->function;

                if (function && counted < 8) {
                        h = fnv(h, pf ? "python" : "native");
                        h = fnv(h, function);
                        h = fnv(h, pf ? path_base_name(pf->file) : nf->library);
                        counted++;
                }
                if (pf && !c->frame)
                        c->frame = pf;
                else if (pf && !gap_done) {
                        gap_done = true;
                        via = gap;
                } else if (c->frame && !gap_done && function)
                        gap = function;
        }
        snprintf(c->signature, sizeof(c->signature), "%016llx", (unsigned long long)h);
        if (c->frame)
                snprintf(c->summary, sizeof(c->summary), "%s in %s (%s:%d)%s%s", signal_full_name(signo),
                         c->frame->function, path_base_name(c->frame->file), c->frame->line, via ? " via " : "",
                         via ? via : "");
        else
                snprintf(c->summary, sizeof(c->summary), "%s", signal_full_name(signo));
}

/* The script as the command line names it: the core keeps the first 79 bytes of the arguments,
 * each followed by a space, so at that length the last one may be cut and is then not used. */
#define PSARGS_KERNEL_MAX 79     /* ELF_PRARGSZ - 1: what the kernel copies of the arguments */

static char *script_from_core(const struct analysis *a) {
        const struct core_process *p = &a->core->process;
        char args[sizeof(p->psargs) + 1];
        const char *argv[64];
        size_t argc = 0;

        snprintf(args, sizeof(args), "%s", p->present ? p->psargs : "");
        /* the separator after the last argument made it in: that one is whole */
        bool cut = strlen(args) >= PSARGS_KERNEL_MAX && args[PSARGS_KERNEL_MAX - 1] != ' ';
        for (char *save = NULL, *t = strtok_r(args, " ", &save); t && argc < ELEMENTSOF(argv);
             t = strtok_r(NULL, " ", &save))
                argv[argc++] = t;
        if (cut && argc > 1)
                argc--;
        return cmdline_script(argv, argc, a->target->exe_display, p->present ? p->fname : NULL);
}

static void put_frames(FILE *out, const struct analysis *a, const struct thread_info *th,
                       struct source_cache *src) {
        _cleanup_free_ struct stack_item *items = NULL;
        size_t n = 0;
        bool merged = false;

        fputs("\"frames\":[", out);
        if (stack_merge(a, th, a->native, &items, &n, &merged) < 0)
                a->target->out_of_memory = true;
        else
                for (size_t i = 0; i < n; i++) {
                        if (i)
                                fputc(',', out);
                        if (items[i].python)
                                put_python_frame(out, a, &th->frames[items[i].index], src, true);
                        else
                                put_native_frame(out, &th->native[items[i].index]);
                }
        fputc(']', out);
        if (a->native != NATIVE_OFF) {
                fputs(",\"native_error\":", out);
                put_json_or_null(out, th->native_error);
                fprintf(out, ",\"merged\":%s", merged || !th->n_frames || !th->n_native ? "true" : "false");
        }
}

static void put_thread(FILE *out, const struct analysis *a, const struct thread_info *th,
                       struct source_cache *src) {
        fprintf(out, "{\"tid\":%d,\"thread_state\":%llu,\"pthread_id\":", th->tid,
                (unsigned long long)th->tstate);
        if (th->pthread_id)
                fprintf(out, "%llu", (unsigned long long)th->pthread_id);
        else
                fputs("null", out);
        fprintf(out, ",\"interpreter_address\":%llu", (unsigned long long)th->interp);
        fputs(",\"interpreter_id\":", out);
        put_number_or_null(out, (long long)th->interp_id, th->interp_id >= 0);
        fprintf(out, ",\"crashed\":%s,\"python\":%s,\"has_gil\":%s,\"gc_collecting\":%s,\"status\":[",
                th->crashed ? "true" : "false", th->tstate ? "true" : "false",
                th->has_gil ? "true" : "false", th->gc_collecting ? "true" : "false");
        const char *status[3];
        size_t n_status = thread_status(th, status);
        for (size_t k = 0; k < n_status; k++)
                fprintf(out, "%s\"%s\"", k ? "," : "", status[k]);
        fputs("],", out);
        fputs("\"exception\":", out);
        if (th->exception) {
                fputs("{\"text\":", out);
                fput_json_string(out, th->exception);
                fprintf(out, ",\"handled\":%s},", th->exception_handled ? "true" : "false");
        } else
                fputs("null,", out);
        put_frames(out, a, th, src);
        fputs(",\"truncated\":", out);
        if (th->truncated)
                fput_json_string(out, th->truncated);
        else
                fputs("null", out);
        fputc('}', out);
}

/* Frames written for all tasks together: 100,000 tasks of deep chains would make a report larger
 * than pystackd takes (64 MiB); past this, a task is written without its frames, and says why. */
#define TASK_FRAMES_MAX 50000

/* --tasks: every asyncio task, its coroutine chain, who awaits it and what it awaits; null unasked */
static void put_tasks(FILE *out, const struct analysis *a, struct source_cache *src) {
        size_t frames_left = TASK_FRAMES_MAX;

        fputs(",\"tasks\":", out);
        if (!a->tasks_asked) {
                fputs("null,\"tasks_note\":null", out);
                return;
        }
        fputc('[', out);
        for (size_t i = 0; i < a->n_tasks; i++) {
                const struct task_info *ti = &a->tasks[i];

                fprintf(out, "%s{\"address\":%llu,\"name\":", i ? "," : "", (unsigned long long)ti->addr);
                put_json_or_null(out, ti->name);
                fputs(",\"type\":", out);
                put_json_or_null(out, ti->type);
                fprintf(out, ",\"c_task\":%s", ti->c_task ? "true" : "false");
                fputs(",\"thread\":", out);
                put_number_or_null(out, ti->tid, ti->tid != 0);
                fputs(",\"interpreter_id\":", out);
                put_number_or_null(out, (long long)ti->interp_id, ti->interp_id >= 0);
                fputs(",\"running_in\":", out);
                put_number_or_null(out, ti->running_in, ti->running_in != 0);
                fputs(",\"frames\":[", out);
                bool cut = ti->stack.n_frames > frames_left;
                for (size_t k = 0; !cut && k < ti->stack.n_frames; k++) {
                        if (k)
                                fputc(',', out);
                        put_python_frame(out, a, &ti->stack.frames[k], src, false);
                }
                if (!cut)
                        frames_left -= ti->stack.n_frames;
                fputs("],\"awaited_by\":[", out);
                for (size_t k = 0; k < ti->n_awaited_by; k++)
                        fprintf(out, "%s%llu", k ? "," : "", (unsigned long long)ti->awaited_by[k]);
                fputs("],\"awaits\":", out);
                if (ti->awaits) {
                        fprintf(out, "{\"address\":%llu,\"type\":", (unsigned long long)ti->awaits);
                        put_json_or_null(out, ti->awaits_type);
                        fputc('}', out);
                } else
                        fputs("null", out);
                fputs(",\"truncated\":", out);
                if (cut)
                        fputs("\"frames not written: the report's tasks reached 50,000 frames\"", out);
                else
                        put_json_or_null(out, ti->stack.truncated);
                fputc('}', out);
        }
        fputs("],\"tasks_note\":", out);
        put_json_or_null(out, a->tasks_note);
}

int report_json(FILE *out, const struct analysis *a, const struct report_options *o) {
        const struct core_process *p = &a->core->process;
        const struct core_signal *s = &a->core->signal;
        struct source_cache *src = !o->source ? NULL : o->source_root ? source_cache_new(o->source_root, true) :
                                  source_cache_new(a->target->opts->lib_search_root, false);
        const struct core_thread *crashed = core_crashed_thread(a->core);
        int signo = s->present ? s->signo : crashed ? crashed->cursig : 0;

        struct crash_summary sum;
        _cleanup_free_ char *script = script_from_core(a);

        if (!script)    /* cmdline_script() names something whatever the command line: "?" at least */
                a->target->out_of_memory = true;

        summarize(a, signo, &sum);
        fputs("{\"schema_version\":2,\"core\":", out);
        if (a->core_path)
                put_note_string(out, a->core_path, false);
        else
                fputs("null", out);
        /* a running process (pystack remote): which, and whether it was stopped while read */
        if (a->core->live_pid)
                fprintf(out, ",\"live\":{\"pid\":%d,\"stopped\":%s,\"stopped_usec\":%lld}", a->core->live_pid,
                        a->core->live_stopped ? "true" : "false", (long long)a->core->live_held_usec);
        else
                fputs(",\"live\":null", out);
        fprintf(out, ",\"architecture\":\"%s\"", a->core->arch->name);
        fputs(",\"executable\":", out);
        put_note_string(out, a->target->exe_display ? a->target->exe_display : "", false);
        fprintf(out, ",\"executable_source\":\"%s\"", a->target->opts->executable ? "argument" : "core");
        if (a->py_major)
                fprintf(out, ",\"python_version\":\"%u.%u\",\"free_threaded\":%s", a->py_major, a->py_minor,
                        a->layout.free_threaded ? "true" : "false");
        else
                fputs(",\"python_version\":null", out);

        fprintf(out, ",\"core_truncated\":%s,\"signature\":\"%s\",\"summary\":", a->core->truncated ? "true" : "false",
                sum.signature);
        fput_json_string(out, sum.summary);
        fputs(",\"script\":", out);
        put_json_or_null(out, script);
        fputs(",\"frame\":", out);
        if (sum.frame) {
                fputs("{\"function\":", out);
                fput_json_string(out, sum.frame->function);
                fputs(",\"file\":", out);
                fput_json_string(out, sum.frame->file);
                fprintf(out, ",\"line\":%d}", sum.frame->line);
        } else
                fputs("null", out);
        fprintf(out, ",\"multiple_interpreters\":%s", a->multiple_interpreters ? "true" : "false");

        fputs(",\"process\":", out);
        if (p->present) {
                fprintf(out, "{\"pid\":%d,\"ppid\":%d,\"sid\":%d,\"pgrp\":%d,\"uid\":%u,\"gid\":%u,"
                        "\"state\":\"%c\",\"zombie\":%s,\"nice\":%d,\"comm\":",
                        p->pid, p->ppid, p->sid, p->pgrp, p->uid, p->gid,
                        p->state > ' ' && p->state < 0x7f && p->state != '"' && p->state != '\\' ? p->state : '?',
                        p->zombie ? "true" : "false", p->nice);
                put_note_string(out, p->fname, false);
                fputs(",\"args\":", out);
                put_note_string(out, p->psargs, true);
                fputc('}', out);
        } else
                fputs("null", out);

        fputs(",\"signal\":", out);
        if (signo) {
                const char *name = signal_name(signo);

                fprintf(out, "{\"number\":%d,\"name\":", signo);
                if (name)
                        fprintf(out, "\"%s\"", name);
                else
                        fputs("null", out);
                if (s->present) {
                        fprintf(out, ",\"code\":%d,\"fault_address\":", s->code);
                        if (fault_signal(signo))
                                fprintf(out, "%llu", (unsigned long long)s->addr);
                        else
                                fputs("null", out);
                        fputs(",\"sender_pid\":", out);
                        if (s->code <= 0 && !fault_signal(signo))
                                fprintf(out, "%d", s->pid);
                        else
                                fputs("null", out);
                } else
                        fputs(",\"code\":null,\"fault_address\":null,\"sender_pid\":null", out);
                fputc('}', out);
        } else
                fputs("null", out);

        fputs(",\"threads\":[", out);
        for (size_t i = 0; i < a->n_threads; i++) {
                if (i)
                        fputc(',', out);
                put_thread(out, a, &a->threads[i], src);
        }
        fputc(']', out);
        put_tasks(out, a, src);
        /* the files the process had mapped that were found and verified: what the frames came from */
        fputs(",\"modules\":[", out);
        bool first_module = true;
        for (size_t i = 0; i < a->target->n_modules; i++) {
                struct module *m = &a->target->modules[i];
                const uint8_t *id;
                size_t n;

                if (m->state <= 0 || !m->image)
                        continue;
                n = elf_image_build_id(m->image, &id);
                fputs(first_module ? "{\"path\":" : ",{\"path\":", out);
                first_module = false;
                put_note_string(out, m->path, false);
                fputs(",\"build_id\":", out);
                if (n) {
                        fputc('"', out);
                        for (size_t k = 0; k < n; k++)
                                fprintf(out, "%02x", id[k]);
                        fputc('"', out);
                } else
                        fputs("null", out);
                fprintf(out, ",\"start\":%llu,\"end\":%llu,\"package\":", (unsigned long long)m->start,
                        (unsigned long long)m->end);
                /* written again from the parsed copy: the file's bytes never reach the report */
                if (m->package)
                        json_fput(out, json_root(m->package));
                else
                        fputs("null", out);
                fputc('}', out);
        }
        fputs("],\"warnings\":[", out);
        const struct strv *w[] = { &a->target->warnings, &a->warnings };
        bool first = true;
        for (size_t k = 0; k < ELEMENTSOF(w); k++)
                for (size_t i = 0; i < w[k]->n; i++) {
                        if (!first)
                                fputc(',', out);
                        first = false;
                        put_note_string(out, w[k]->v[i], false);
                }
        fputc(']', out);
        if (o->text) {
                fputs(",\"text\":", out);
                fput_json_string(out, o->text);
        }
        fputs("}\n", out);
        if ((o->source && !src) || source_cache_out_of_memory(src))
                a->target->out_of_memory = true;
        source_cache_free(src);
        fflush(out);
        /* what a failed allocation left out would pass for what the core holds */
        if (a->target->out_of_memory)
                return -ENOMEM;
        return ferror(out) ? -EIO : 0;
}

int report_text(FILE *out, const struct analysis *a, const struct report_options *o) {
        _cleanup_free_ char *json = NULL;
        size_t len = 0;
        struct report_options jo = { .source = o->source };
        struct text_options to = { .color = o->color, .native = a->native != NATIVE_OFF, .locals = a->locals,
                                   .tasks = a->tasks_asked };
        struct json_doc *doc = NULL;
        FILE *mem = open_memstream(&json, &len);
        int r;

        /* the text is the document's: one format, whoever renders it */
        if (!mem)
                return -ENOMEM;
        r = report_json(mem, a, &jo);
        if (fclose(mem) != 0 || r < 0)
                return -ENOMEM;
        r = json_parse(json, len, &doc);
        if (r < 0)
                return r;
        r = report_text_render(out, json_root(doc), &to);
        json_free(doc);
        return r;
}
