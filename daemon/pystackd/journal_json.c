/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "journal_json.h"

/* How much of the document one attempt writes. */
struct shape {
        bool locals, other_threads, modules, tasks;
        size_t keep_frames;             /* of the crashed thread: its innermost this many (SIZE_MAX: all) */
        unsigned cut;
};

static void put_key(struct buf *b, bool *first, const char *key) {
        if (!*first)
                buf_put(b, ",", 1);
        *first = false;
        buf_put_json_string(b, key, strlen(key));
        buf_put(b, ":", 1);
}

static void put_frame(struct buf *b, const struct json_value *f, const struct shape *s) {
        bool first = true;

        if (f->type != JSON_OBJECT) {
                json_write(b, f);
                return;
        }
        buf_put(b, "{", 1);
        for (size_t i = 0; i < f->n; i++) {
                const char *k = f->members[i].key;

                if (!s->locals && (!strcmp(k, "arguments") || !strcmp(k, "locals") || !strcmp(k, "locals_error")))
                        continue;
                put_key(b, &first, k);
                json_write(b, &f->members[i].value);
        }
        buf_put(b, "}", 1);
}

static void put_thread(struct buf *b, const struct json_value *t, const struct shape *s) {
        bool first = true, crashed = json_true(json_get(t, "crashed"));
        const struct json_value *frames = json_get(t, "frames");
        size_t n = frames && frames->type == JSON_ARRAY ? frames->n : 0;
        size_t keep = !crashed && !s->other_threads ? 0 : crashed ? (s->keep_frames < n ? s->keep_frames : n) : n;

        if (t->type != JSON_OBJECT) {
                json_write(b, t);
                return;
        }
        buf_put(b, "{", 1);
        for (size_t i = 0; i < t->n; i++) {
                const char *k = t->members[i].key;

                put_key(b, &first, k);
                if (strcmp(k, "frames") || !frames || frames->type != JSON_ARRAY) {
                        json_write(b, &t->members[i].value);
                        continue;
                }
                /* outermost first: the innermost `keep` are the last ones */
                buf_put(b, "[", 1);
                for (size_t f = n - keep; f < n; f++) {
                        if (f > n - keep)
                                buf_put(b, ",", 1);
                        put_frame(b, &frames->items[f], s);
                }
                buf_put(b, "]", 1);
        }
        if (keep < n) {
                char num[32];

                put_key(b, &first, "frames_omitted");
                snprintf(num, sizeof(num), "%zu", n - keep);
                buf_puts(b, num);
        }
        buf_put(b, "}", 1);
}

static void put_report(struct buf *b, const struct json_value *r, const struct shape *s) {
        static const char *const words[] = { "locals", "other threads' frames", "modules and warnings",
                                             "the crashed thread's outermost frames", "asyncio tasks" };
        bool first = true;

        buf_put(b, "{", 1);
        for (size_t i = 0; i < r->n; i++) {
                const char *k = r->members[i].key;
                const struct json_value *v = &r->members[i].value;

                if (!strcmp(k, "text") || !strcmp(k, "journal_cut"))
                        continue;
                put_key(b, &first, k);
                if (!strcmp(k, "threads") && v->type == JSON_ARRAY) {
                        buf_put(b, "[", 1);
                        for (size_t t = 0; t < v->n; t++) {
                                if (t)
                                        buf_put(b, ",", 1);
                                put_thread(b, &v->items[t], s);
                        }
                        buf_put(b, "]", 1);
                } else if (!s->modules && (!strcmp(k, "modules") || !strcmp(k, "warnings")))
                        buf_puts(b, "[]");
                else if (!s->tasks && !strcmp(k, "tasks") && v->type == JSON_ARRAY)
                        buf_puts(b, "[]");
                else
                        json_write(b, v);
        }
        if (s->cut) {
                bool w = true;

                put_key(b, &first, "journal_cut");
                buf_put(b, "[", 1);
                for (unsigned bit = 0; bit < sizeof(words) / sizeof(*words); bit++)
                        if (s->cut & (1u << bit)) {
                                if (!w)
                                        buf_put(b, ",", 1);
                                w = false;
                                buf_put_json_string(b, words[bit], strlen(words[bit]));
                        }
                buf_put(b, "]", 1);
        }
        buf_put(b, "}", 1);
}

/* One attempt: 1 when it fits (out holds it), 0 when not, -ENOMEM. */
static int attempt(const struct json_value *r, const struct shape *s, size_t max, struct buf *out) {
        buf_free(out);
        put_report(out, r, s);
        if (out->failed) {
                buf_free(out);
                return -ENOMEM;
        }
        return out->n <= max;
}

/* The crashed thread's frames: the most any thread of the report has that is marked crashed. */
static size_t crashed_frames(const struct json_value *r) {
        const struct json_value *threads = json_get(r, "threads");
        size_t most = 0;

        for (size_t t = 0; t < json_len(threads); t++) {
                const struct json_value *th = json_at(threads, t);

                if (json_true(json_get(th, "crashed")) && json_len(json_get(th, "frames")) > most)
                        most = json_len(json_get(th, "frames"));
        }
        return most;
}

int journal_report_json(const struct json_value *report, bool with_locals, size_t max, struct buf *out,
                        unsigned *cut) {
        struct shape s = { .locals = with_locals, .other_threads = true, .modules = true, .tasks = true,
                           .keep_frames = SIZE_MAX };
        int r;

        *cut = 0;
        if (!report || report->type != JSON_OBJECT)
                return -EINVAL;
        if ((r = attempt(report, &s, max, out)) != 0)
                return r < 0 ? r : 0;
        if (s.locals) {
                s.locals = false;
                s.cut |= JOURNAL_CUT_LOCALS;
                if ((r = attempt(report, &s, max, out)) != 0)
                        goto done;
        }
        if (json_len(json_get(report, "tasks"))) {
                s.tasks = false;
                s.cut |= JOURNAL_CUT_TASKS;
                if ((r = attempt(report, &s, max, out)) != 0)
                        goto done;
        }
        s.other_threads = false;
        s.cut |= JOURNAL_CUT_OTHER_THREADS;
        if ((r = attempt(report, &s, max, out)) != 0)
                goto done;
        s.modules = false;
        s.cut |= JOURNAL_CUT_MODULES;
        if ((r = attempt(report, &s, max, out)) != 0)
                goto done;
        /* the fewest outer frames cut: a binary search over how many innermost frames are kept */
        s.cut |= JOURNAL_CUT_OUTER_FRAMES;
        size_t lo = 1, hi = crashed_frames(report), best = 0;
        while (lo <= hi) {
                size_t mid = lo + (hi - lo) / 2;

                s.keep_frames = mid;
                r = attempt(report, &s, max, out);
                if (r < 0)
                        return r;
                if (r) {
                        best = mid;
                        lo = mid + 1;
                } else
                        hi = mid - 1;
        }
        if (!best) {
                buf_free(out);
                return -E2BIG;
        }
        s.keep_frames = best;
        r = attempt(report, &s, max, out);
done:
        if (r < 0)
                return r;
        *cut = s.cut;
        return 0;
}
