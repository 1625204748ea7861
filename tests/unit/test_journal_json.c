/* SPDX-License-Identifier: MIT */
/* Unit test: daemon/pystackd/journal_json.c, the report as PYSTACK_REPORT_JSON carries it: what is
 * left out, what is cut in which order to fit a size, and that every cut is valid JSON. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "journal_json.h"
#include "json.h"
#include "tap.h"
#include "util.h"

/* A report with a crashed thread of `frames` frames (each with locals) and `others` other threads. */
static char *report(size_t frames, size_t others) {
        struct buf b = {};
        char num[128];

        buf_puts(&b, "{\"schema_version\":2,\"python_version\":\"3.11\",\"signature\":\"0123456789abcdef\","
                     "\"frame\":{\"function\":\"f\",\"file\":\"/srv/w.py\",\"line\":9},\"threads\":[");
        for (size_t t = 0; t <= others; t++) {
                snprintf(num, sizeof(num), "%s{\"tid\":%zu,\"crashed\":%s,\"frames\":[", t ? "," : "", 100 + t,
                         t == 0 ? "true" : "false");
                buf_puts(&b, num);
                for (size_t f = 0; f < frames; f++) {
                        snprintf(num, sizeof(num), "%s{\"kind\":\"python\",\"function\":\"fn%zu\",\"line\":%zu,",
                                 f ? "," : "", f, f);
                        buf_puts(&b, num);
                        buf_puts(&b, "\"arguments\":[{\"name\":\"password\",\"repr\":\"'hunter2'\"}],"
                                     "\"locals\":[{\"name\":\"x\",\"repr\":\"1\"}],\"locals_error\":null}");
                }
                buf_puts(&b, "],\"merged\":true}");
        }
        buf_puts(&b, "],\"modules\":[{\"path\":\"/usr/lib/libc.so.6\",\"build_id\":\"ab\"}],"
                     "\"warnings\":[\"w\"],\"text\":\"Traceback ... \\u001b[31m\"}");
        char *text = strdup(buf_str(&b));
        buf_free(&b);
        return text;
}

static struct json_doc *parse(const char *s) {
        struct json_doc *d = NULL;

        return json_parse(s, strlen(s), &d) == 0 ? d : NULL;
}

/* Run it on text: 0 and the parsed result in *out_doc, or the error. */
static int cut_to(const char *text, bool locals, size_t max, struct json_doc **out_doc, unsigned *cut,
                  size_t *len) {
        struct json_doc *in = parse(text);
        struct buf b = {};
        int r;

        *out_doc = NULL;
        if (!in)
                return -999;
        r = journal_report_json(json_root(in), locals, max, &b, cut);
        *len = b.n;
        if (r == 0)
                *out_doc = parse(buf_str(&b));
        buf_free(&b);
        json_free(in);
        return r;
}

static const struct json_value *thread(const struct json_doc *d, size_t i) {
        return json_at(json_get(json_root(d), "threads"), i);
}

int main(void) {
        _cleanup_free_ char *small = report(3, 1);
        struct json_doc *d;
        unsigned cut;
        size_t len;

        /* it fits: everything but the text and (by default) the locals */
        TAP_EQ_INT(cut_to(small, false, 1 << 20, &d, &cut, &len), 0, "a small report: fits");
        tap_ok(d && cut == 0 && !json_get(json_root(d), "text") && !json_get(json_root(d), "journal_cut"),
               "no text member, nothing cut, no journal_cut");
        const struct json_value *f0 = json_at(json_get(thread(d, 0), "frames"), 0);
        tap_ok(f0 && json_str(json_get(f0, "function")) && !strcmp(json_str(json_get(f0, "function")), "fn0") &&
               !json_get(f0, "arguments") && !json_get(f0, "locals") && !json_get(f0, "locals_error"),
               "a frame keeps its fields but not its arguments and locals (JournalLocals=no)");
        tap_ok(json_len(json_get(thread(d, 1), "frames")) == 3 && json_len(json_get(json_root(d), "modules")) == 1 &&
               json_int(json_get(json_root(d), "schema_version"), 0) == 2,
               "other threads, modules and the schema version are there");
        json_free(d);

        TAP_EQ_INT(cut_to(small, true, 1 << 20, &d, &cut, &len), 0, "JournalLocals=yes: fits");
        f0 = json_at(json_get(thread(d, 0), "frames"), 0);
        tap_ok(d && cut == 0 && json_len(json_get(f0, "arguments")) == 1 && json_len(json_get(f0, "locals")) == 1,
               "the locals are in");
        json_free(d);

        /* the sizes of each stage, to aim between them */
        _cleanup_free_ char *big = report(200, 20);
        size_t full, no_locals, no_others;
        cut_to(big, true, SIZE_MAX, &d, &cut, &full);
        json_free(d);
        cut_to(big, false, SIZE_MAX, &d, &cut, &no_locals);
        json_free(d);
        tap_ok(full > no_locals, "locals take room (%zu > %zu bytes)", full, no_locals);

        TAP_EQ_INT(cut_to(big, true, no_locals + 64, &d, &cut, &len), 0, "with locals, just over the size without");
        tap_ok(d && cut == JOURNAL_CUT_LOCALS && len <= no_locals + 64 &&
               json_len(json_get(thread(d, 5), "frames")) == 200, "locals go first, nothing else (%zu bytes)", len);
        const struct json_value *jc = json_get(json_root(d), "journal_cut");
        tap_ok(json_len(jc) == 1 && !strcmp(json_str(json_at(jc, 0)), "locals"), "journal_cut says \"locals\"");
        json_free(d);

        TAP_EQ_INT(cut_to(big, false, no_locals / 4, &d, &cut, &no_others), 0, "a quarter of that");
        tap_ok(d && cut == JOURNAL_CUT_OTHER_THREADS && no_others <= no_locals / 4,
               "then the other threads' frames (%zu bytes)", no_others);
        tap_ok(json_len(json_get(thread(d, 0), "frames")) == 200 && json_len(json_get(thread(d, 3), "frames")) == 0 &&
               json_int(json_get(thread(d, 3), "frames_omitted"), 0) == 200 &&
               json_int(json_get(thread(d, 3), "tid"), 0) == 103,
               "the crashed thread whole; the others keep their members, frames [] and frames_omitted 200");
        json_free(d);

        /* the crashed thread's outer frames */
        TAP_EQ_INT(cut_to(big, false, no_others / 3, &d, &cut, &len), 0, "a third of that");
        size_t kept = json_len(json_get(thread(d, 0), "frames"));
        tap_ok(d && (cut & JOURNAL_CUT_OUTER_FRAMES) && (cut & JOURNAL_CUT_MODULES) && len <= no_others / 3 &&
               kept > 0 && kept < 200 &&
               json_int(json_get(thread(d, 0), "frames_omitted"), 0) == (int64_t)(200 - kept),
               "then modules and the crashed thread's outermost frames: %zu kept, %zu bytes", kept, len);
        const struct json_value *last = json_at(json_get(thread(d, 0), "frames"), kept - 1);
        tap_ok(last && !strcmp(json_str(json_get(last, "function")), "fn199"), "the innermost frame is kept");
        tap_ok(json_len(json_get(json_root(d), "modules")) == 0 && json_len(json_get(json_root(d), "warnings")) == 0,
               "modules and warnings emptied");
        jc = json_get(json_root(d), "journal_cut");
        tap_ok(json_len(jc) == 3, "journal_cut names three cuts");
        json_free(d);

        /* the most frames that fit: one more would not */
        struct buf b = {};
        struct json_doc *in = parse(big);
        journal_report_json(json_root(in), false, len, &b, &cut);
        tap_ok(b.n <= len, "the limit exactly: fits (%zu <= %zu)", b.n, len);
        buf_free(&b);
        json_free(in);

        /* asyncio tasks go right after the locals, before any thread's frames */
        {
                struct buf t = {};
                size_t plain;

                cut_to(small, false, SIZE_MAX / 2, &d, &cut, &plain);
                json_free(d);
                buf_put(&t, small, strlen(small) - 1);
                buf_puts(&t, ",\"tasks\":[");
                for (int i = 0; i < 200; i++)
                        buf_puts(&t, i ? ",{\"address\":1,\"name\":\"Task-1\",\"frames\":[{\"function\":\"worker\"}]}" :
                                         "{\"address\":1,\"name\":\"Task-1\",\"frames\":[{\"function\":\"worker\"}]}");
                buf_puts(&t, "],\"tasks_note\":null}");
                int r = cut_to(buf_str(&t), false, plain + 64, &d, &cut, &len);
                const struct json_value *tc = d ? json_get(json_root(d), "journal_cut") : NULL;
                tap_ok(r == 0 && d && cut == JOURNAL_CUT_TASKS && json_len(json_get(json_root(d), "tasks")) == 0 &&
                       json_get(json_root(d), "tasks")->type == JSON_ARRAY && json_len(tc) == 1 &&
                       !strcmp(json_str(json_at(tc, 0)), "asyncio tasks") &&
                       json_len(json_get(thread(d, 1), "frames")) > 0,
                       "200 asyncio tasks over the limit: the tasks go (\"tasks\":[]), the threads' frames stay");
                json_free(d);
                buf_free(&t);
        }

        TAP_EQ_INT(cut_to(big, false, 100, &d, &cut, &len), -E2BIG, "100 bytes: not even one frame fits: -E2BIG");
        tap_ok(len == 0, "and nothing written");

        /* every limit from 150 to 3000 bytes: valid JSON within the limit, or -E2BIG */
        bool all_ok = true;
        for (size_t max = 150; max <= 3000; max += 7) {
                int r = cut_to(small, true, max, &d, &cut, &len);
                if ((r == 0 && (!d || len > max)) || (r != 0 && r != -E2BIG))
                        all_ok = false;
                json_free(d);
        }
        tap_ok(all_ok, "every limit from 150 to 3000: valid JSON within it, or -E2BIG");

        /* hostile shapes: whatever the analyzer's schema says, a document is written back valid */
        static const char *const odd[] = {
                "{\"threads\":7}", "{\"threads\":[1,\"x\",null,{\"frames\":3}]}",
                "{\"threads\":[{\"crashed\":true,\"frames\":[1,[2],{\"locals\":5}]}]}",
                "{\"text\":1,\"journal_cut\":[\"forged\"],\"x\":\"\\u001b]0;title\\u0007\\udcff\"}",
        };
        for (size_t i = 0; i < sizeof(odd) / sizeof(*odd); i++) {
                int r = cut_to(odd[i], false, 1 << 20, &d, &cut, &len);
                tap_ok(r == 0 && d && !json_get(json_root(d), "journal_cut"), "odd document %zu: written back valid, "
                       "no journal_cut of its own", i);
                json_free(d);
        }
        d = NULL;
        in = parse("{\"x\":\"\\u001b]0;t\\u0007\\udcff\"}");
        journal_report_json(json_root(in), false, 1 << 20, &b, &cut);
        tap_ok(b.p && strstr(buf_str(&b), "\\u001b]0;t\\u0007\\udcff"), "control characters and a non-UTF-8 byte "
               "stay escaped: %s", buf_str(&b));
        buf_free(&b);
        json_free(in);
        in = parse("[1]");
        TAP_EQ_INT(journal_report_json(json_root(in), false, 1 << 20, &b, &cut), -EINVAL, "a root that is not an "
                   "object: -EINVAL");
        json_free(in);
        return tap_done();
}
