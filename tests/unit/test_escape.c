/* SPDX-License-Identifier: MIT */
/*
 * The one escaping rule (analyzer/common/escape.h), table-driven: what a terminal and
 * a JSON reader get for every class of hostile text, how wide it is, how a
 * column is cut, and — over every byte pair and a pseudo-random corpus — that
 * no control character, C1 or invalid UTF-8 ever comes out.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "tap.h"
#include "utf8.h"

static char *capture(void (*fn)(FILE *, const char *, size_t), const char *s, size_t width) {
        char *text = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&text, &len);

        fn(m, s, width);
        fclose(m);
        return text;
}

static void put_terminal(FILE *out, const char *s, size_t width) {
        (void)width;
        esc_fputs(out, s);
}

static void put_json(FILE *out, const char *s, size_t width) {
        (void)width;
        esc_fput_json(out, s, strlen(s));
}

static void put_column(FILE *out, const char *s, size_t width) {
        esc_fput_column(out, s, width);
}

/* Is out safe for a terminal: valid UTF-8, no C0 but none at all, no DEL, no C1, no hidden format character? */
static bool safe_for_terminal(const char *out, size_t n, char *why, size_t whysz) {
        const uint8_t *u = (const uint8_t *)out;

        for (size_t i = 0; i < n;) {
                size_t l = utf8_valid_len(u + i, n - i);
                uint32_t cp;

                if (l == 0)
                        return snprintf(why, whysz, "invalid UTF-8 at %zu", i), false;
                cp = l == 1 ? u[i] : l == 2 ? (uint32_t)(u[i] & 0x1F) << 6 | (u[i + 1] & 0x3F)
                   : l == 3 ? (uint32_t)(u[i] & 0x0F) << 12 | (uint32_t)(u[i + 1] & 0x3F) << 6 | (u[i + 2] & 0x3F)
                   : (uint32_t)(u[i] & 0x07) << 18 | (uint32_t)(u[i + 1] & 0x3F) << 12 |
                     (uint32_t)(u[i + 2] & 0x3F) << 6 | (u[i + 3] & 0x3F);
                if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || (cp >= 0x202A && cp <= 0x202E) ||
                    (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200E || cp == 0x200F || cp == 0x061C)
                        return snprintf(why, whysz, "U+%04X at %zu", cp, i), false;
                i += l;
        }
        return true;
}

int main(void) {
        static const struct {
                const char *in, *terminal, *json;
                size_t width;
        } cases[] = {
                { "plain.py", "plain.py", "\"plain.py\"", 8 },
                { "", "", "\"\"", 0 },
                /* C0: the three short forms, the rest as \xNN */
                { "a\nb\tc\rd", "a\\nb\\tc\\rd", "\"a\\nb\\tc\\rd\"", 10 },
                { "x\x1b]0;owned\x07", "x\\x1b]0;owned\\x07", "\"x\\u001b]0;owned\\u0007\"", 17 },
                { "\x1b[2J\x01\x1f", "\\x1b[2J\\x01\\x1f", "\"\\u001b[2J\\u0001\\u001f\"", 15 },
                { "del\x7f", "del\\x7f", "\"del\\u007f\"", 7 },
                /* C1 as UTF-8 (U+009B is a one-character CSI) and as a raw byte */
                { "\xc2\x9b" "2J", "\\u009b2J", "\"\\u009b2J\"", 8 },
                { "\xc2\x80\xc2\x9f", "\\u0080\\u009f", "\"\\u0080\\u009f\"", 12 },
                { "\x9b" "2J", "\\x9b2J", "\"\\udc9b2J\"", 6 },
                /* invalid UTF-8: each byte; overlong, surrogate and cut sequences too */
                { "\xff\xfe", "\\xff\\xfe", "\"\\udcff\\udcfe\"", 8 },
                { "\xc0\xaf", "\\xc0\\xaf", "\"\\udcc0\\udcaf\"", 8 },
                { "\xe2\x82", "\\xe2\\x82", "\"\\udce2\\udc82\"", 8 },
                { "\xed\xa0\x80", "\\xed\\xa0\\x80", "\"\\udced\\udca0\\udc80\"", 12 },
                /* a byte surrogateescape kept, as SQLite writes JSON's \udcff back: the same byte */
                { "\xed\xb3\xbf" "\xed\xb2\x80", "\\xff\\x80", "\"\\udcff\\udc80\"", 8 },
                /* reordering and invisible characters */
                { "a\xe2\x80\xae" "cba", "a\\u202ecba", "\"a\\u202ecba\"", 10 },
                { "\xe2\x81\xa6x\xe2\x81\xa9", "\\u2066x\\u2069", "\"\\u2066x\\u2069\"", 13 },
                { "\xe2\x80\x8b\xe2\x80\x8f\xef\xbb\xbf", "\\u200b\\u200f\\ufeff", "\"\\u200b\\u200f\\ufeff\"", 18 },
                { "\xe2\x80\xa8", "\\u2028", "\"\\u2028\"", 6 },
                { "\xc2\xad", "\\u00ad", "\"\\u00ad\"", 6 },
                { "\xf3\xa0\x80\x81", "\\U000e0001", "\"\\udb40\\udc01\"", 10 },
                /* text that passes: quotes and backslashes are the terminal's own */
                { "say \"hi\" \\x1b", "say \"hi\" \\x1b", "\"say \\\"hi\\\" \\\\x1b\"", 13 },
                { "caf\xc3\xa9", "caf\xc3\xa9", "\"caf\xc3\xa9\"", 4 },
                { "e\xcc\x81", "e\xcc\x81", "\"e\xcc\x81\"", 1 },
                { "\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac", "\"\xe6\x97\xa5\xe6\x9c\xac\"", 4 },
                { "\xf0\x9f\x92\xa5", "\xf0\x9f\x92\xa5", "\"\xf0\x9f\x92\xa5\"", 2 },
                { "\xef\xbc\xa1", "\xef\xbc\xa1", "\"\xef\xbc\xa1\"", 2 },
                { "\xc2\xa0\xc2\xbf", "\xc2\xa0\xc2\xbf", "\"\xc2\xa0\xc2\xbf\"", 2 },
        };
        char why[64];

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char *t = capture(put_terminal, cases[i].in, 0);
                char *j = capture(put_json, cases[i].in, 0);

                tap_ok(!strcmp(t, cases[i].terminal), "case %zu: terminal text %s", i, cases[i].terminal);
                if (strcmp(t, cases[i].terminal))
                        printf("#   got %s\n", t);
                tap_ok(!strcmp(j, cases[i].json), "case %zu: JSON %s", i, cases[i].json);
                if (strcmp(j, cases[i].json))
                        printf("#   got %s\n", j);
                TAP_EQ_INT(esc_width(cases[i].in), cases[i].width, "case %zu: %zu columns", i, cases[i].width);
                free(t);
                free(j);
        }

        /* columns: padded, or cut before what does not fit and ended with one ellipsis column */
        static const struct {
                const char *in;
                size_t width;
                const char *out;
        } columns[] = {
                { "ab", 5, "ab   " },
                { "abcdef", 5, "abcd…" },
                { "abcde", 5, "abcde" },
                { "\x1b[2J", 5, "\\x1b…" },             /* an escape is never split */
                { "\x1b[2J", 4, "…   " },
                { "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 5, "\xe6\x97\xa5\xe6\x9c\xac…" },
                { "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 4, "\xe6\x97\xa5…" " " },  /* a wide character is never split */
                { "e\xcc\x81" "e\xcc\x81", 2, "e\xcc\x81" "e\xcc\x81" },
                { NULL, 3, "   " },
        };
        for (size_t i = 0; i < sizeof(columns) / sizeof(columns[0]); i++) {
                char *c = capture(put_column, columns[i].in, columns[i].width);

                tap_ok(!strcmp(c, columns[i].out), "column %zu: '%s' in %zu columns", i, columns[i].out,
                       columns[i].width);
                if (strcmp(c, columns[i].out))
                        printf("#   got '%s'\n", c);
                free(c);
        }

        /* a stored document with raw C1, a stray byte and a bidi override inside its strings */
        {
                char *doc = NULL;
                size_t doclen = 0;
                FILE *dm = open_memstream(&doc, &doclen);

                esc_fput_json_document(dm, "[\"a\xc2\x9b\", {\"k\": \"\xff\xe2\x80\xae" "b\\n\"}]");
                fclose(dm);
                tap_ok(!strcmp(doc, "[\"a\\u009b\", {\"k\": \"\\udcff\\u202eb\\n\"}]"),
                       "json document: ASCII kept, the rest escaped inside its strings (%s)", doc);
                free(doc);
        }

        /* bounded copies: never cut inside an escape, always terminated */
        char small[8];
        TAP_EQ_INT(esc_snprint(small, sizeof(small), "ab\x1b" "cd"), 7, "snprint: 'ab\\x1bc' fits 7 bytes");
        tap_ok(!strcmp(small, "ab\\x1bc"), "snprint: cut after a whole piece (%s)", small);
        TAP_EQ_INT(esc_snprint(small, 4, "ab\x1b"), 2, "snprint: an escape that does not fit is left out");
        char *dup = esc_strdup("a\x1b\xc2\x9b\xff");
        tap_ok(dup && !strcmp(dup, "a\\x1b\\u009b\\xff"), "strdup: %s", dup ? dup : "(null)");
        free(dup);
        char *text = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&text, &len);
        esc_fprintf(m, "crash of %s (%d)", "x\x1b]0;t\x07", 42);
        fclose(m);
        tap_ok(!strcmp(text, "crash of x\\x1b]0;t\\x07 (42)"), "fprintf: the arguments escaped (%s)", text);
        free(text);

        /* every one- and two-byte input, and a corpus of random ones: nothing unsafe comes out */
        bool all_safe = true;
        char in[8], first_bad[96] = "";
        for (unsigned a = 1; a < 256 && all_safe; a++)
                for (unsigned b = 0; b < 256 && all_safe; b++) {
                        in[0] = (char)a, in[1] = (char)b, in[2] = 0;
                        char *t = capture(put_terminal, in, 0);
                        if (!safe_for_terminal(t, strlen(t), why, sizeof(why))) {
                                all_safe = false;
                                snprintf(first_bad, sizeof(first_bad), "%02x %02x: %s", a, b, why);
                        }
                        free(t);
                }
        uint64_t x = 0x9e3779b97f4a7c15ULL;
        for (int round = 0; round < 200000 && all_safe; round++) {
                size_t n = 1 + round % 7;
                for (size_t k = 0; k < n; k++) {
                        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                        /* bias towards the interesting lead bytes */
                        static const uint8_t leads[] = { 0x1b, 0x7f, 0x9b, 0xc2, 0xe2, 0xed, 0xef, 0xf0, 0xf3, 0xf4 };
                        uint8_t v = (uint8_t)(x >> 24);
                        in[k] = (char)((x & 3) == 0 ? leads[(x >> 8) % sizeof(leads)] : v ? v : 'a');
                }
                in[n] = 0;
                char *t = capture(put_terminal, in, 0);
                if (!safe_for_terminal(t, strlen(t), why, sizeof(why))) {
                        all_safe = false;
                        snprintf(first_bad, sizeof(first_bad), "round %d: %s", round, why);
                }
                free(t);
        }
        tap_ok(all_safe, "65,280 byte pairs and 200,000 random strings: the terminal text is valid UTF-8 "
               "with no control, C1 or reordering character %s", first_bad);
        return tap_done();
}
