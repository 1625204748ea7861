/* SPDX-License-Identifier: MIT */
/*
 * TAP tests for daemon/ctl/query.c (matches, times, the wire form) and answer.c (what
 * query_run() prints for list, info, show, groups and analyze), against a store in a temporary
 * directory filled through the store API, with TZ=UTC so that times print the same everywhere.
 *
 * The crashes of the store (now: Thu 2025-11-27 17:47:05 UTC, crash 1's time):
 *   1  17:47:05  uid 1000, dumpable 1, SIGSEGV, worker.py, core present, analysed (report R1)
 *   2  17:48:05  uid 0, SIGABRT, -m pkg.tool, core too large, 3 suppressed, in a Docker container
 *   3  17:49:05  uid 1000, dumpable 2 (set-uid), SIGSEGV, admin.py, core present, analysed (R1)
 *   4  17:50:05  uid 1000, dumpable 1, SIGBUS, a long script name, its core file missing, pending
 *   5  17:51:05  uid 1001, dumpable 1, SIGSEGV, job.py, core present, analysed (report R2)
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "query.h"
#include "report_text.h"
#include "store.h"
#include "tap.h"
#include "util.h"

#define SEC 1000000LL
#define NOW (1764265625LL * SEC)        /* Thu 2025-11-27 17:47:05 UTC */

static char tmpdir[] = "/tmp/test-query-XXXXXX";
static int cores_fd = -1;               /* tmpdir/cores, opened for reading: tells a missing core */

__attribute__((format(printf, 3, 4)))
static int eq_str(const char *got, const char *want, const char *fmt, ...) {
        char name[512];
        va_list ap;
        bool same = got && want ? !strcmp(got, want) : got == want;

        va_start(ap, fmt);
        vsnprintf(name, sizeof(name), fmt, ap);
        va_end(ap);
        tap_ok(same, "%s", name);
        if (!same)
                printf("#   got:\n%s\n#   want:\n%s\n", got ? got : "(null)", want ? want : "(null)");
        return same;
}

static bool starts_with(const char *s, const char *prefix) {
        return s && !strncmp(s, prefix, strlen(prefix));
}

/* ---- matches ---- */

static void test_matches(void) {
        struct query q;
        char err[256], big[300];

        query_init(&q);
        tap_ok(q.since == INT64_MIN && q.until == INT64_MAX && q.n_matches == 0 && q.limit == 0 && q.verb == VERB_LIST &&
               !q.json && !q.reverse && !q.native && !q.locals && !q.no_legend, "query_init: no match, no window");

        static const struct { const char *arg; enum match_key key; const char *value; } good[] = {
                { "ID=42", MATCH_ID, "42" }, { "PID=618", MATCH_PID, "618" }, { "COMM=python3", MATCH_COMM, "python3" },
                { "EXE=/usr/bin/python3.11", MATCH_EXE, "/usr/bin/python3.11" }, { "UID=1000", MATCH_UID, "1000" },
                { "SIG=11", MATCH_SIG, "11" }, { "SIG=SIGSEGV", MATCH_SIG, "11" }, { "SIG=segv", MATCH_SIG, "11" },
                { "SIG=abrt", MATCH_SIG, "6" }, { "SIG=64", MATCH_SIG, "64" }, { "SIG=1", MATCH_SIG, "1" },
                { "SIGNATURE=3f1c0d6e9a2b4c87", MATCH_SIGNATURE, "3f1c0d6e9a2b4c87" },
                { "618", MATCH_PID, "618" }, { "/usr/bin/python3", MATCH_EXE, "/usr/bin/python3" },
                { "./run", MATCH_EXE, "./run" }, { "python3", MATCH_COMM, "python3" },
                { "COMM=a=b", MATCH_COMM, "a=b" }, { "COMM=with space", MATCH_COMM, "with space" },
                { "-x", MATCH_COMM, "-x" },
        };
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                query_init(&q);
                err[0] = 0;
                int r = query_add_match(&q, good[i].arg, err, sizeof(err));
                tap_ok(r == 0 && q.n_matches == 1 && q.matches[0].key == good[i].key &&
                       !strcmp(q.matches[0].value, good[i].value), "query_add_match '%s': key %d, value '%s' %s",
                       good[i].arg, good[i].key, good[i].value, err);
        }

        static const struct { const char *arg, *err; } bad[] = {
                { "ID=abc", "ID= takes a number: 'abc'" }, { "ID=-1", "ID= takes a number: '-1'" },
                { "PID=1.5", "PID= takes a number: '1.5'" }, { "UID=root", "UID= takes a number: 'root'" },
                { "ID=12345678901234567890", "ID= takes a number: '12345678901234567890'" },
                { "ID=", "bad match value for ID=" }, { "COMM=", "bad match value for COMM=" },
                { "SIG=0", "unknown signal '0'" }, { "SIG=65", "unknown signal '65'" },
                { "SIG=SIGFOO", "unknown signal 'SIGFOO'" }, { "SIG=", "bad match value for SIG=" },
                { "SIGNATURE=3F1C", "SIGNATURE= takes a hex signature: '3F1C'" },
                { "SIGNATURE=xyz", "SIGNATURE= takes a hex signature: 'xyz'" },
                { "MACHINE_ID=xyz", "MACHINE_ID= takes 32 hex digits: 'xyz'" },
                { "MACHINE_ID=0123456789ABCDEF0123456789ABCDEF", "MACHINE_ID= takes 32 hex digits: "
                  "'0123456789ABCDEF0123456789ABCDEF'" },
                { "FOO=1", "unknown match 'FOO=' (ID, PID, COMM, EXE, UID, SIG, SIGNATURE, CONTAINER, HOST, MACHINE_ID)" },
                { "id=1", "unknown match 'id=' (ID, PID, COMM, EXE, UID, SIG, SIGNATURE, CONTAINER, HOST, MACHINE_ID)" },
                { "=1", "unknown match '=' (ID, PID, COMM, EXE, UID, SIG, SIGNATURE, CONTAINER, HOST, MACHINE_ID)" },
                { "COMM=a\nverb=vacuum", "bad match value for COMM=" },
                { "/a\nb", "bad match value for EXE=" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char shown[64];
                size_t o = 0;

                /* a newline written as \n: TAP reads lines */
                for (const char *p = bad[i].arg; *p && o + 3 < sizeof(shown); p++)
                        o += (size_t)snprintf(shown + o, sizeof(shown) - o, *p == '\n' ? "\\n" : "%c", *p);
                query_init(&q);
                err[0] = 0;
                TAP_EQ_INT(query_add_match(&q, bad[i].arg, err, sizeof(err)), -EINVAL, "query_add_match refuses '%s'",
                           shown);
                eq_str(err, bad[i].err, "with the message '%s'", bad[i].err);
                TAP_EQ_INT(q.n_matches, 0, "and adds no match");
        }

        memset(big, 'a', sizeof(big));
        memcpy(big, "COMM=", 5);
        big[5 + 255] = 0;
        query_init(&q);
        TAP_EQ_INT(query_add_match(&q, big, err, sizeof(err)), 0, "a value of 255 bytes");
        big[5 + 255] = 'a';
        big[5 + 256] = 0;
        TAP_EQ_INT(query_add_match(&q, big, err, sizeof(err)), -EINVAL, "a value of 256 bytes is refused");

        query_init(&q);
        for (int i = 0; i < QUERY_MAX_MATCHES; i++)
                if (query_add_match(&q, "PID=1", err, sizeof(err)) < 0)
                        abort();
        TAP_EQ_INT(query_add_match(&q, "PID=2", err, sizeof(err)), -EINVAL, "a match more than %d is refused",
                   QUERY_MAX_MATCHES);
        eq_str(err, "at most 16 matches", "with a message");
        TAP_EQ_INT(q.n_matches, QUERY_MAX_MATCHES, "the query keeps %d", QUERY_MAX_MATCHES);

        static const char *const verbs[] = { "list", "info", "show", "dump", "debug", "analyze", "groups", "vacuum" };
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                int v = query_verb_from_name(verbs[i]);
                tap_ok(v == (int)i && !strcmp(query_verb_name((enum query_verb)v), verbs[i]),
                       "verb '%s' is %zu and back", verbs[i], i);
        }
        TAP_EQ_INT(query_verb_from_name("core"), -1, "'core' is no verb of the command line");
        eq_str(query_verb_name(VERB_CORE), "core", "but has a name on the wire");
        TAP_EQ_INT(query_verb_from_name("List"), -1, "verbs are lower case");
        TAP_EQ_INT(query_verb_from_name(""), -1, "'' is no verb");
        eq_str(query_verb_name(_VERB_MAX), "?", "an unknown verb's name is '?'");
}

/* ---- times ---- */

static void test_times(void) {
        static const struct { const char *s; int64_t usec; } good[] = {
                { "now", NOW },
                { "today", 1764201600 * SEC },
                { "yesterday", 1764115200 * SEC },
                { "tomorrow", 1764288000 * SEC },
                { "@1764265625", NOW }, { "@0", 0 }, { "@9223372036854", 9223372036854 * SEC },
                { "-1h", NOW - 3600 * SEC }, { "+30min", NOW + 1800 * SEC }, { "2d ago", NOW - 2 * 86400 * SEC },
                { "1h 30min ago", NOW - 5400 * SEC }, { "-1h30min", NOW - 5400 * SEC },
                { "-1 h", NOW - 3600 * SEC }, { "-2 weeks", NOW - 14 * 86400 * SEC },
                { "+1M", NOW + 30 * 86400 * SEC }, { "-1y", NOW - 365 * 86400 * SEC },
                { "-500ms", NOW - 500000 }, { "-10us", NOW - 10 }, { "+1s", NOW + SEC },
                { "-5sec", NOW - 5 * SEC }, { "-2 seconds", NOW - 2 * SEC }, { "-3m", NOW - 180 * SEC },
                { "-1 minute", NOW - 60 * SEC }, { "-2 minutes", NOW - 120 * SEC }, { "-1 hour", NOW - 3600 * SEC },
                { "-2 hours", NOW - 7200 * SEC }, { "-1day", NOW - 86400 * SEC }, { "-2 days", NOW - 172800 * SEC },
                { "-1w", NOW - 604800 * SEC }, { "1 week ago", NOW - 604800 * SEC },
                { "1 month ago", NOW - 2592000 * SEC }, { "2 months ago", NOW - 5184000 * SEC },
                { "1 year ago", NOW - 31536000 * SEC }, { "2 years ago", NOW - 63072000 * SEC },
                { "-0s", NOW },
                { "2025-11-27 17:47:05", NOW }, { "2025-11-27 17:47", NOW - 5 * SEC },
                { "2025-11-27", 1764201600 * SEC }, { "17:47", NOW - 5 * SEC }, { "17:47:05", NOW },
                { "00:00", 1764201600 * SEC }, { "23:59:59", 1764287999 * SEC },
                { "2024-02-29", 1709164800 * SEC }, { "1970-01-01 00:00:00", 0 },
        };
        static const char *const bad[] = {
                "", "Now", "today ", " now", "@", "@x", "@-1", "@1x", "@9223372036855", "-", "+", "-1", "-h", "-1x",
                "-1h x", "-1h-1h", "ago", " ago", "x ago", "1h", "-1H", "2025-02-29", "2025-02-30", "2025-13-01",
                "2025-11-31", "24:00", "2025-11-27 25:00", "2025-11-27T17:47", "17:47:05 UTC", "-9999999999999999999h",
                "-53375996d", "+53375995d 53375995d", "-53375995d 53375995d 53375995d", "+146236y",
                "+146235y 146235y 146235y",
        };
        int64_t t;

        setenv("TZ", "UTC", 1);
        tzset();
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                t = -42;
                int r = parse_time(good[i].s, NOW, &t);
                tap_ok(r == 0 && t == good[i].usec, "parse_time '%s' is %lld (%d, %lld)", good[i].s,
                       (long long)good[i].usec, r, (long long)t);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                t = -42;
                int r = parse_time(bad[i], NOW, &t);
                tap_ok(r == -EINVAL && t == -42, "parse_time refuses '%s' (%d, %lld)", bad[i], r, (long long)t);
        }
        t = 0;
        TAP_EQ_INT(parse_time("+53375995d", NOW, &t), 0, "the longest span of one term (half of INT64_MAX)");
        TAP_EQ_INT(t, NOW + 53375995LL * 86400 * SEC, "is added");
        TAP_EQ_INT(parse_time("-53375995d 53375995d", NOW, &t), 0, "two of them back from now");
        TAP_EQ_INT(t, NOW - 2 * 53375995LL * 86400 * SEC, "are subtracted");

        /* local time: two hours east of UTC */
        setenv("TZ", "XXX-2", 1);
        tzset();
        static const struct { const char *s; int64_t usec; } local[] = {
                { "today", (1764201600 - 7200) * SEC }, { "yesterday", (1764115200 - 7200) * SEC },
                { "17:47", NOW - 7205 * SEC }, { "2025-11-27 17:47:05", NOW - 7200 * SEC },
                { "2025-11-27", (1764201600 - 7200) * SEC }, { "now", NOW }, { "@1764265625", NOW },
                { "-1h", NOW - 3600 * SEC },
        };
        for (size_t i = 0; i < ELEMENTSOF(local); i++) {
                t = -42;
                int r = parse_time(local[i].s, NOW, &t);
                tap_ok(r == 0 && t == local[i].usec, "in UTC+2, parse_time '%s' is %lld (%d, %lld)", local[i].s,
                       (long long)local[i].usec, r, (long long)t);
        }
        /* 23:30 UTC is already tomorrow at UTC+2 */
        TAP_EQ_INT(parse_time("today", (1764201600 + 84600) * SEC, &t), 0, "in UTC+2 at 23:30 UTC");
        TAP_EQ_INT(t, (1764288000 - 7200) * SEC, "today is the next day");
        setenv("TZ", "UTC", 1);
        tzset();
}

/* ---- the wire ---- */

static char *to_wire(const struct query *q) {
        char *text = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&text, &len);

        if (!m || query_to_wire(q, m) != 0)
                abort();
        fclose(m);
        return text;
}

static bool same_query(const struct query *a, const struct query *b) {
        if (a->verb != b->verb || a->n_matches != b->n_matches || a->since != b->since || a->until != b->until ||
            a->limit != b->limit || a->reverse != b->reverse || a->json != b->json || a->native != b->native ||
            a->locals != b->locals || a->no_legend != b->no_legend || a->tasks != b->tasks)
                return false;
        for (size_t i = 0; i < a->n_matches; i++)
                if (a->matches[i].key != b->matches[i].key || strcmp(a->matches[i].value, b->matches[i].value))
                        return false;
        return true;
}

static int from_wire(struct query *q, const char *text) {
        return query_from_wire(q, text, strlen(text));
}

static void test_wire(void) {
        struct query q, back;
        char err[256], *text;

        query_init(&q);
        text = to_wire(&q);
        eq_str(text, "verb=list\nlimit=0\nflags=00000\n\n", "query_to_wire of an empty query");
        free(text);

        q.verb = VERB_SHOW;
        query_add_match(&q, "PID=5", err, sizeof(err));
        query_add_match(&q, "COMM=python3", err, sizeof(err));
        query_add_match(&q, "SIG=SIGSEGV", err, sizeof(err));
        q.since = 100;
        q.until = 200;
        q.limit = 3;
        q.reverse = q.native = q.locals = true;
        text = to_wire(&q);
        eq_str(text, "verb=show\nmatch=PID=5\nmatch=COMM=python3\nmatch=SIG=11\nsince=100\nuntil=200\nlimit=3\n"
               "flags=10110\n\n", "query_to_wire of a full query: every line");
        TAP_EQ_INT(query_from_wire(&back, text, strlen(text)), 0, "query_from_wire reads it");
        tap_ok(same_query(&q, &back), "the same query");
        free(text);

        /* every verb, every flag, every key, the extremes of the window */
        static const char *const matches[] = {
                "ID=1", "PID=2", "COMM=a=b c", "EXE=/usr/bin/python3", "UID=0", "SIG=abrt", "SIGNATURE=0123456789abcdef",
        };
        bool all_ok = true;
        size_t n = 0;
        for (int verb = 0; verb < _VERB_MAX; verb++)
                for (int flags = 0; flags < 64; flags++) {
                        query_init(&q);
                        q.verb = (enum query_verb)verb;
                        q.reverse = flags & 1, q.json = flags & 2, q.native = flags & 4, q.locals = flags & 8;
                        q.no_legend = flags & 16, q.tasks = flags & 32;
                        for (int k = 0; k < flags % 8; k++)
                                query_add_match(&q, matches[(k + verb) % ELEMENTSOF(matches)], err, sizeof(err));
                        if (flags % 3 == 1)
                                q.since = INT64_MIN + 1, q.until = INT64_MAX - 1, q.limit = INT64_MAX;
                        else if (flags % 3 == 2)
                                q.since = -5, q.until = 0, q.limit = 1;
                        text = to_wire(&q);
                        if (query_from_wire(&back, text, strlen(text)) != 0 || !same_query(&q, &back)) {
                                printf("# not the same after the wire:\n%s", text);
                                all_ok = false;
                        }
                        free(text);
                        n++;
                }
        tap_ok(all_ok, "query_from_wire(query_to_wire(q)) is q for %zu queries (every verb and flag)", n);
        char longest[5 + 10 + 255 + 1] = "SIGNATURE=";
        for (int i = 0; i < 255; i++)
                longest[10 + i] = "0123456789abcdef"[i % 16];
        query_init(&q);
        for (int i = 0; i < QUERY_MAX_MATCHES; i++)
                query_add_match(&q, longest, err, sizeof(err));
        text = to_wire(&q);
        tap_ok(q.n_matches == QUERY_MAX_MATCHES && query_from_wire(&back, text, strlen(text)) == 0 &&
               same_query(&q, &back), "the largest query the command line makes (%zu bytes) goes through", strlen(text));
        free(text);

        /* what pystackd accepts */
        TAP_EQ_INT(from_wire(&q, "verb=core\n\n"), 0, "verb=core");
        TAP_EQ_INT(q.verb, VERB_CORE, "is VERB_CORE");
        TAP_EQ_INT(from_wire(&q, "verb=groups\n\n"), 0, "only a verb");
        tap_ok(q.verb == VERB_GROUPS && q.since == INT64_MIN && q.until == INT64_MAX && q.limit == 0,
               "the rest as query_init() leaves it");
        TAP_EQ_INT(from_wire(&q, "limit=2\nverb=list\nmatch=618\n\n"), 0, "any order; a bare match");
        tap_ok(q.limit == 2 && q.n_matches == 1 && q.matches[0].key == MATCH_PID, "read as on the command line");

        /* and what it refuses */
        static const struct { const char *text; const char *why; } bad[] = {
                { "", "nothing" },
                { "\n", "a blank line without a verb" },
                { "limit=0\n\n", "no verb" },
                { "verb=list\n", "no blank line at the end" },
                { "verb=list", "no newline at all" },
                { "verb=list\nlimit=0", "a last line without its newline" },
                { "verb=lists\n\n", "an unknown verb" },
                { "verb=\n\n", "an empty verb" },
                { "verb=List\n\n", "a verb in capitals" },
                { "verb=list\nfoo=1\n\n", "an unknown key" },
                { "verb=list\nmatch=HOST=web-1\n\n", "HOST= (journals only: never asked of pystackd)" },
                { "verb=list\nmatch=MACHINE_ID=0123456789abcdef0123456789abcdef\n\n", "MACHINE_ID= (journals only)" },
                { "verb=list\nVerb=list\n\n", "a key in capitals" },
                { "verb=list\nlimit\n\n", "a line without '='" },
                { "verb=list\n=list\n\n", "an empty key" },
                { "verb=list\nflags=0000\n\n", "flags of 4 digits" },
                { "verb=list\nflags=0000000\n\n", "flags of 7 digits" },
                { "verb=list\nflags=000002\n\n", "a sixth flag of 2" },
                { "verb=list\nflags=00200\n\n", "a flag of 2" },
                { "verb=list\nflags=\n\n", "empty flags" },
                { "verb=list\nflags=1111x\n\n", "a flag of x" },
                { "verb=list\nsince=\n\n", "an empty since" },
                { "verb=list\nsince=1x\n\n", "since=1x" },
                { "verb=list\nuntil=x\n\n", "until=x" },
                { "verb=list\nsince=99999999999999999999\n\n", "since out of range" },
                { "verb=list\nlimit=-1\n\n", "a negative limit" },
                { "verb=list\nlimit=1.5\n\n", "limit=1.5" },
                { "verb=list\nmatch=FOO=1\n\n", "an unknown match" },
                { "verb=list\nmatch=ID=x\n\n", "a bad match value" },
                { "verb=list\nmatch=\n\n", "an empty match" },
                { "verb=list\r\n\r\n", "CRLF" },
                { "verb=list\n\nverb=vacuum\n\n", "more after the blank line" },
                { "verb=list\n\n\n", "a second blank line" },
                { "verb=list\nverb=vacuum\n\n", "a second verb" },
                { "verb=list\nsince=1\nsince=2\n\n", "since twice" },
                { "verb=list\nuntil=1\nuntil=1\n\n", "until twice, even the same" },
                { "verb=list\nlimit=1\nlimit=0\n\n", "limit twice" },
                { "verb=list\nflags=00000\nflags=01000\n\n", "flags twice" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                TAP_EQ_INT(from_wire(&q, bad[i].text), -EINVAL, "query_from_wire refuses %s", bad[i].why);
        TAP_EQ_INT(query_from_wire(&q, "verb=list\n\0\n\n", 12), -EINVAL, "query_from_wire refuses a NUL");
        TAP_EQ_INT(query_from_wire(&q, "verb=list\n\n", 11), 0, "(the same without the NUL is fine)");

        char *many = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&many, &len);
        fputs("verb=list\n", m);
        for (int i = 0; i <= QUERY_MAX_MATCHES; i++)
                fputs("match=PID=1\n", m);
        fputs("\n", m);
        fclose(m);
        TAP_EQ_INT(from_wire(&q, many), -EINVAL, "query_from_wire refuses %d matches", QUERY_MAX_MATCHES + 1);
        free(many);

        /* lines up to 511 bytes: since=000...0 */
        char line[600];
        snprintf(line, sizeof(line), "verb=list\nsince=%0505d\n\n", 7);
        TAP_EQ_INT(from_wire(&q, line), 0, "query_from_wire reads a line of 511 bytes");
        TAP_EQ_INT(q.since, 7, "(since=7)");
        snprintf(line, sizeof(line), "verb=list\nsince=%0506d\n\n", 7);
        TAP_EQ_INT(from_wire(&q, line), -EINVAL, "and refuses one of 512");

        char *huge = malloc(QUERY_MAX_WIRE + 2);
        memset(huge, '\n', QUERY_MAX_WIRE + 1);
        memcpy(huge, "verb=list\n", 10);
        huge[QUERY_MAX_WIRE + 1] = 0;
        for (size_t i = 10; i + 12 < QUERY_MAX_WIRE; i += 12)
                memcpy(huge + i, "limit=00001\n", 12);
        TAP_EQ_INT(query_from_wire(&q, huge, QUERY_MAX_WIRE + 1), -EINVAL,
                   "query_from_wire refuses more than QUERY_MAX_WIRE bytes");
        free(huge);
}

/* ---- answers ---- */

/* Report R1: pystack core --native --locals --json of crash 1 (and 3): three threads, the third
 * one native only. */
static const char r1[] =
        "{\"schema_version\":2,\"core\":\"/dev/fd/3\",\"executable\":\"/usr/bin/python3.11\","
        "\"executable_source\":\"core\",\"python_version\":\"3.11\",\"free_threaded\":false,\"core_truncated\":false,"
        "\"signature\":\"3f1c0d6e9a2b4c87\",\"summary\":\"SIGSEGV in element_types (worker.py:41) via PySequence_Tuple\","
        "\"script\":\"worker.py\",\"frame\":{\"function\":\"element_types\",\"file\":\"/srv/worker.py\",\"line\":41},"
        "\"multiple_interpreters\":false,"
        "\"process\":{\"pid\":618,\"ppid\":473,\"sid\":473,\"pgrp\":618,\"uid\":1000,\"gid\":1000,\"state\":\"R\","
        "\"zombie\":true,\"nice\":0,\"comm\":\"python3\",\"args\":\"python3 /srv/worker.py\"},"
        "\"signal\":{\"number\":11,\"name\":\"SIGSEGV\",\"code\":1,\"fault_address\":0,\"sender_pid\":null},"
        "\"threads\":["
        "{\"tid\":618,\"thread_state\":94123,\"pthread_id\":140123,\"interpreter_address\":94000,\"interpreter_id\":0,"
        "\"crashed\":true,\"python\":true,\"has_gil\":true,\"gc_collecting\":false,\"status\":[\"Has the GIL\"],"
        "\"exception\":null,\"frames\":["
        "{\"kind\":\"python\",\"function\":\"<module>\",\"file\":\"/srv/worker.py\",\"line\":50,\"address\":4096,"
        "\"source\":\"main()\",\"arguments\":[],\"locals\":[{\"name\":\"data\",\"repr\":\"[1, 2]\"}],"
        "\"locals_error\":null},"
        "{\"kind\":\"python\",\"function\":\"element_types\",\"file\":\"/srv/worker.py\",\"line\":41,\"address\":8192,"
        "\"source\":\"return tuple(obj)\",\"arguments\":[{\"name\":\"obj\",\"repr\":\"<invalid object at 0x0>\"}],"
        "\"locals\":[],\"locals_error\":null},"
        "{\"kind\":\"native\",\"function\":\"PySequence_Tuple\",\"file\":\"Objects/abstract.c\",\"line\":2080,"
        "\"library\":\"libpython3.11.so.1.0\",\"address\":12288,\"inlined\":false,\"eval\":false},"
        "{\"kind\":\"native\",\"function\":\"list_iter\",\"file\":null,\"line\":0,\"library\":\"libpython3.11.so.1.0\","
        "\"address\":12300,\"inlined\":true,\"eval\":false},"
        "{\"kind\":\"native\",\"function\":null,\"file\":null,\"line\":0,\"library\":\"libcrash.so\",\"address\":16384,"
        "\"inlined\":false,\"eval\":false}],"
        "\"truncated\":null,\"native_error\":null,\"merged\":true},"
        "{\"tid\":619,\"thread_state\":95000,\"pthread_id\":140200,\"interpreter_address\":94000,\"interpreter_id\":0,"
        "\"crashed\":false,\"python\":true,\"has_gil\":false,\"gc_collecting\":false,\"status\":[],\"exception\":null,"
        "\"frames\":[{\"kind\":\"python\",\"function\":\"run\",\"file\":\"/usr/lib/python3.11/threading.py\","
        "\"line\":975,\"address\":20480,\"source\":null,\"arguments\":[],\"locals\":[],"
        "\"locals_error\":\"cannot read the frame's locals\"}],"
        "\"truncated\":\"depth limit\",\"native_error\":null,\"merged\":false},"
        "{\"tid\":620,\"thread_state\":0,\"pthread_id\":null,\"interpreter_address\":0,\"interpreter_id\":null,"
        "\"crashed\":false,\"python\":false,\"has_gil\":false,\"gc_collecting\":false,\"status\":[],\"exception\":null,"
        "\"frames\":[{\"kind\":\"native\",\"function\":\"epoll_wait\",\"file\":null,\"line\":0,\"library\":\"libc.so.6\","
        "\"address\":24576,\"inlined\":false,\"eval\":false}],"
        "\"truncated\":null,\"native_error\":\"no unwind information\",\"merged\":true}],"
        "\"modules\":[{\"path\":\"/usr/lib/libpython3.11.so.1.0\",\"build_id\":\"93ac61\",\"start\":1,\"end\":2}],"
        "\"warnings\":[]}";

/* Report R2 of crash 5: the executable given on the command line, no process block. */
static const char r2[] =
        "{\"schema_version\":2,\"executable\":\"/usr/bin/python3.12\",\"executable_source\":\"argument\","
        "\"python_version\":\"3.12\",\"signature\":\"00000000deadbeef\",\"summary\":\"SIGSEGV in job (job.py:3)\","
        "\"frame\":{\"function\":\"job\",\"file\":\"/home/u/job.py\",\"line\":3},"
        "\"signal\":{\"number\":11,\"name\":\"SIGSEGV\"},"
        "\"threads\":[{\"tid\":1000,\"crashed\":true,\"python\":true,\"status\":[\"Has the GIL\"],"
        "\"frames\":[{\"kind\":\"python\",\"function\":\"job\",\"file\":\"/home/u/job.py\",\"line\":3}]}]}";

static const char show_head[] =
        "Using executable found in the core file: /usr/bin/python3.11\n"
        "\n"
        "Core file information:\n"
        "state: R zombie: True niceness: 0\n"
        "pid: 618 ppid: 473 sid: 473\n"
        "uid: 1000 gid: 1000 pgrp: 618\n"
        "executable: python3 arguments: python3 /srv/worker.py\n"
        "\n"
        "The process died due receiving signal SIGSEGV\n";

static const char show_plain[] =
        "Traceback for thread 618 [Has the GIL] (most recent call last):\n"
        "    (Python) File \"/srv/worker.py\", line 50, in <module>\n"
        "        main()\n"
        "    (Python) File \"/srv/worker.py\", line 41, in element_types\n"
        "        return tuple(obj)\n"
        "\n"
        "Traceback for thread 619 [] (most recent call last):\n"
        "    (Python frames missing: depth limit)\n"
        "    (Python) File \"/usr/lib/python3.11/threading.py\", line 975, in run\n";

static const char show_native[] =
        "Traceback for thread 618 [Has the GIL] (most recent call last):\n"
        "    (Python) File \"/srv/worker.py\", line 50, in <module>\n"
        "        main()\n"
        "    (Python) File \"/srv/worker.py\", line 41, in element_types\n"
        "        return tuple(obj)\n"
        "    (C) File \"Objects/abstract.c\", line 2080, in PySequence_Tuple (libpython3.11.so.1.0)\n"
        "    (C) File \"???\", line 0, in list_iter (inlined) (libpython3.11.so.1.0)\n"
        "    (C) File \"libcrash.so\", line 0, in ??? (libcrash.so)\n"
        "\n"
        "Traceback for thread 619 [] (most recent call last):\n"
        "    (Python frames missing: depth limit)\n"
        "* - Unable to merge native stack due to insufficient native information - *\n"
        "    (Python) File \"/usr/lib/python3.11/threading.py\", line 975, in run\n"
        "\n"
        "Traceback for thread 620 [] (most recent call last):\n"
        "    (native frames missing: no unwind information)\n"
        "    (C) File \"???\", line 0, in epoll_wait (libc.so.6)\n";

static const char show_locals[] =
        "Traceback for thread 618 [Has the GIL] (most recent call last):\n"
        "    (Python) File \"/srv/worker.py\", line 50, in <module>\n"
        "        main()\n"
        "      Locals:\n"
        "        data: [1, 2]\n"
        "    (Python) File \"/srv/worker.py\", line 41, in element_types\n"
        "        return tuple(obj)\n"
        "      Arguments:\n"
        "        obj: <invalid object at 0x0>\n"
        "\n"
        "Traceback for thread 619 [] (most recent call last):\n"
        "    (Python frames missing: depth limit)\n"
        "    (Python) File \"/usr/lib/python3.11/threading.py\", line 975, in run\n"
        "      (locals unavailable: cannot read the frame's locals)\n";

static const char list_header[] =
        "TIME                            ID     PID   UID SIG     PYTHON    CORE         SCRIPT               FRAME"
        "                                    STATE\n";
static const char *const list_rows[] = {
        "",
        "Thu 2025-11-27 17:47:05 UTC      1     618  1000 SIGSEGV 3.11      present      worker.py            "
        "element_types (worker.py:41)             done\n",
        "Thu 2025-11-27 17:48:05 UTC      2     700     0 SIGABRT -         too-large    -m pkg.tool          "
        "-                                        done\n",
        "Thu 2025-11-27 17:49:05 UTC      3     800  1000 SIGSEGV 3.11      present      admin.py             "
        "element_types (worker.py:41)             done\n",
        "Thu 2025-11-27 17:50:05 UTC      4     900  1000 SIGBUS  -         missing      a_script_with_a_ver… "
        "-                                        pending\n",
        "Thu 2025-11-27 17:51:05 UTC      5    1000  1001 SIGSEGV 3.12      present      job.py               "
        "job (job.py:3)                           done\n",
};

static const char groups_header[] =
        "SIGNATURE         COUNT FIRST                       LAST                        SUMMARY\n";
static const char group_r1[] =
        "3f1c0d6e9a2b4c87      2 Thu 2025-11-27 17:47:05 UTC Thu 2025-11-27 17:49:05 UTC "
        "SIGSEGV in element_types (worker.py:41) via PySequence_Tuple\n";
static const char group_r2[] =
        "00000000deadbeef      1 Thu 2025-11-27 17:51:05 UTC Thu 2025-11-27 17:51:05 UTC SIGSEGV in job (job.py:3)\n";

/* The output, return value and message of one query. */
struct answer {
        int r;
        char *out;
        char err[512];
};

static struct answer ask_q(sqlite3 *db, const struct query *q, int64_t uid) {
        struct answer a = { .err = "" };
        size_t len = 0;
        FILE *m = open_memstream(&a.out, &len);

        if (!m)
                abort();
        struct query_store qs = { .db = db, .dir = tmpdir, .cores_fd = cores_fd };
        a.r = query_run(&qs, q, uid, m, a.err, sizeof(a.err));
        fclose(m);
        return a;
}

/* verb, then matches, then flags: "json", "native", "locals", "reverse", "no-legend", "n=N", "since=T" */
__attribute__((sentinel))
static struct answer ask(sqlite3 *db, int64_t uid, enum query_verb verb, ...) {
        struct query q;
        char err[256];
        va_list ap;
        const char *arg;

        query_init(&q);
        q.verb = verb;
        va_start(ap, verb);
        while ((arg = va_arg(ap, const char *))) {
                if (!strcmp(arg, "json"))
                        q.json = true;
                else if (!strcmp(arg, "native"))
                        q.native = true;
                else if (!strcmp(arg, "locals"))
                        q.locals = true;
                else if (!strcmp(arg, "reverse"))
                        q.reverse = true;
                else if (!strcmp(arg, "no-legend"))
                        q.no_legend = true;
                else if (!strncmp(arg, "n=", 2))
                        q.limit = atoll(arg + 2);
                else if (!strncmp(arg, "since=", 6) || !strncmp(arg, "until=", 6)) {
                        if (parse_time(arg + 6, NOW, arg[0] == 's' ? &q.since : &q.until) < 0)
                                abort();
                } else if (query_add_match(&q, arg, err, sizeof(err)) < 0) {
                        printf("# %s\n", err);
                        abort();
                }
        }
        va_end(ap);
        return ask_q(db, &q, uid);
}

/* An answer is what was expected: its return value, output and message. */
static void expect(struct answer a, int r, const char *out, const char *err, const char *what) {
        TAP_EQ_INT(a.r, r, "%s: returns %d", what, r);
        eq_str(a.out, out, "%s: the output", what);
        if (err)
                eq_str(a.err, err, "%s: the message", what);
        free(a.out);
}

__attribute__((sentinel))
static char *cat(const char *first, ...) {
        va_list ap;
        char *s = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&s, &len);

        va_start(ap, first);
        for (const char *p = first; p; p = va_arg(ap, const char *))
                fputs(p, m);
        va_end(ap);
        fclose(m);
        return s;
}

/* What the renderer prints for a report document. */
static char *render(const char *json, bool native, bool locals) {
        struct text_options o = { .native = native, .locals = locals };
        struct json_doc *doc = NULL;
        char *s = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&s, &len);

        if (json_parse(json, strlen(json), &doc) < 0 || report_text_render(m, json_root(doc), &o) < 0)
                abort();
        json_free(doc);
        fclose(m);
        return s;
}

static int64_t add_crash(sqlite3 *db, struct crash_record r, const char *core_file) {
        struct rate_limit none = {};
        int64_t id = 0;

        if (store_begin_capture(db, &r, &none, &id) != 0)
                abort();
        r.core_state = r.core_path ? CORE_PRESENT : CORE_TOO_LARGE;
        if (store_finish_capture(db, &r, &id) != 0)
                abort();
        if (core_file) {
                char path[PATH_MAX];
                snprintf(path, sizeof(path), "%s/%s", tmpdir, core_file);
                int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
                if (fd < 0)
                        abort();
                close(fd);
        }
        return id;
}

static sqlite3 *fill_store(void) {
        char err[512], path[PATH_MAX];
        sqlite3 *db = NULL;
        struct claim c = {};
        int64_t id;

        snprintf(path, sizeof(path), "%s/cores", tmpdir);
        if (mkdir(path, 0700) < 0 || store_open(tmpdir, &db, err, sizeof(err)) < 0 ||
            (cores_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
                abort();
        struct crash_record base = {
                .boot_id = "0123456789abcdef0123456789abcdef", .hostname = "box", .cwd = "/srv", .rlimit_core = -1,
                .core_size = -1, .exe = "/usr/bin/python3.11", .comm = "python3", .signal = 11, .dumpable = 1,
                .uid = 1000, .gid = 1000,
        };
        struct crash_record r = base;
        r.time_usec = NOW, r.pid = 618, r.pid_ns = 18;
        r.cmdline_json = "[\"python3\",\"/srv/worker.py\"]", r.script = "worker.py";
        r.cgroup = "/user.slice/user-1000.slice/session-3.scope", r.unit = "session-3.scope";
        r.thread_names_json = "[[618,\"MainThread\"],[619,\"worker\"]]";
        r.core_path = "cores/core.1.zst", r.core_size = 4194304, r.core_stored_size = 1048576;
        add_crash(db, r, r.core_path);

        /* recorded late (id 0), after 3 suppressed */
        r = base;
        r.time_usec = NOW + 60 * SEC, r.pid = 700, r.uid = r.gid = 0, r.signal = 6, r.exe = "/usr/bin/python3.12";
        r.cmdline_json = "[\"python3\",\"-m\",\"pkg.tool\"]", r.script = "-m pkg.tool", r.container = true;
        r.container_runtime = "docker", r.container_id = "c0ffee0123456789abcdef0123456789abcdef0123456789abcdef0123456789";
        r.cgroup = "/system.slice/tool.service", r.unit = "tool.service", r.rlimit_core = 0;
        r.core_size = 8589934592, r.core_state = CORE_TOO_LARGE, r.capture_note = "larger than MaxCoreSize";
        r.suppressed = 3;
        id = 0;
        if (store_finish_capture(db, &r, &id) != 0)
                abort();

        r = base;
        r.time_usec = NOW + 120 * SEC, r.pid = 800, r.dumpable = 2, r.comm = "sudo-py", r.script = "admin.py";
        r.core_path = "cores/core.3.zst", r.core_stored_size = 10;
        add_crash(db, r, r.core_path);

        r = base;
        r.time_usec = NOW + 180 * SEC, r.pid = 900, r.signal = 7, r.script = "a_script_with_a_very_long_name.py";
        r.core_path = "cores/core.4.zst", r.core_stored_size = 10;
        add_crash(db, r, NULL);

        r = base;
        r.time_usec = NOW + 240 * SEC, r.pid = 1000, r.uid = r.gid = 1001, r.comm = "python3.12";
        r.exe = "/usr/bin/python3.12", r.script = "job.py", r.core_path = "cores/core.5.zst", r.core_stored_size = 10;
        add_crash(db, r, r.core_path);

        if (store_claim_next(db, &c) != 1 || c.id != 1)
                abort();
        claim_done(&c);
        if (store_file_report(db, 1, r1, strlen(r1), NULL, NOW + 10 * SEC) != 0 ||
            store_file_report(db, 3, r1, strlen(r1), NULL, NOW + 130 * SEC) != 0 ||
            store_file_report(db, 5, r2, strlen(r2), NULL, NOW + 250 * SEC) != 0)
                abort();
        return db;
}

static void test_list(sqlite3 *db) {
        const char *const *row = list_rows;
        char *want;

        want = cat(list_header, row[1], row[2], row[3], row[4], row[5], "\n5 crashes listed.\n", NULL);
        expect(ask(db, -1, VERB_LIST, NULL), 0, want, "", "list");
        free(want);
        want = cat(row[1], row[2], row[3], row[4], row[5], NULL);
        expect(ask(db, -1, VERB_LIST, "no-legend", NULL), 0, want, NULL, "list --no-legend");
        free(want);
        want = cat(list_header, row[5], row[4], row[3], row[2], row[1], "\n5 crashes listed.\n", NULL);
        expect(ask(db, -1, VERB_LIST, "reverse", NULL), 0, want, NULL, "list -r");
        free(want);
        want = cat(list_header, row[4], row[5], "\n2 crashes listed.\n", NULL);
        expect(ask(db, -1, VERB_LIST, "n=2", NULL), 0, want, NULL, "list -n 2: the last two, oldest first");
        free(want);
        want = cat(list_header, row[5], row[4], "\n2 crashes listed.\n", NULL);
        expect(ask(db, -1, VERB_LIST, "n=2", "reverse", NULL), 0, want, NULL, "list -n 2 -r: newest first");
        free(want);
        want = cat(list_header, row[1], row[3], row[5], "\n3 crashes listed.\n", NULL);
        expect(ask(db, -1, VERB_LIST, "SIG=SIGSEGV", NULL), 0, want, NULL, "list SIG=SIGSEGV");
        free(want);
        want = cat(list_header, row[2], row[5], "\n2 crashes listed.\n", NULL);
        expect(ask(db, -1, VERB_LIST, "/usr/bin/python3.12", NULL), 0, want, NULL, "list /usr/bin/python3.12 (EXE)");
        free(want);
        want = cat(list_header, row[3], "\n1 crash listed.\n", NULL);
        expect(ask(db, -1, VERB_LIST, "800", NULL), 0, want, NULL, "list 800 (PID): one crash");
        free(want);
        want = cat(list_header, row[2], row[3], row[4], "\n3 crashes listed.\n", NULL);
        expect(ask(db, -1, VERB_LIST, "since=17:48", "until=2025-11-27 17:50:05", NULL), 0, want, NULL,
               "list --since 17:48 --until '2025-11-27 17:50:05'");
        free(want);
        expect(ask(db, -1, VERB_LIST, "COMM=nothing", NULL), 1, "", "No crashes match.", "list COMM=nothing");
        want = cat(list_header, row[2], "\n1 crash listed.\n", NULL);
        expect(ask(db, -1, VERB_LIST, "CONTAINER=c0ffee012345", NULL), 0, want, NULL,
               "list CONTAINER=<12 digits>: the container's crash");
        expect(ask(db, -1, VERB_LIST, "CONTAINER=c0ffee0123456789abcdef0123456789abcdef0123456789abcdef0123456789", NULL), 0, want, NULL, "list CONTAINER=<the whole id>");
        free(want);
        expect(ask(db, -1, VERB_LIST, "CONTAINER=0ffee012345", NULL), 1, "", "No crashes match.",
               "list CONTAINER=<digits from the middle>: none");
        expect(ask(db, -1, VERB_LIST, "CONTAINER=%", NULL), 1, "", "No crashes match.",
               "list CONTAINER=%: no LIKE pattern");
        expect(ask(db, -1, VERB_LIST, "COMM=nothing", "json", NULL), 1, "[]\n", "No crashes match.",
               "list --json COMM=nothing: still a document");

        /* a user: their own crashes that the kernel let them dump */
        want = cat(list_header, row[1], row[4], "\n2 crashes listed.\n", NULL);
        expect(ask(db, 1000, VERB_LIST, NULL), 0, want, NULL, "list as uid 1000: not the set-uid crash 3");
        free(want);
        want = cat(list_header, row[5], "\n1 crash listed.\n", NULL);
        expect(ask(db, 1001, VERB_LIST, NULL), 0, want, NULL, "list as uid 1001");
        free(want);
        expect(ask(db, 1000, VERB_LIST, "ID=3", NULL), 1, "", "No crashes match.", "list ID=3 as uid 1000");
        expect(ask(db, 1000, VERB_LIST, "UID=0", NULL), 1, "", "No crashes match.", "list UID=0 as uid 1000");
        expect(ask(db, 4242, VERB_LIST, NULL), 1, "", "No crashes match.", "list as a user with no crash");

        expect(ask(db, 1000, VERB_LIST, "json", NULL), 0,
               "[{\"id\":1,\"time_usec\":1764265625000000,\"pid\":618,\"uid\":1000,\"gid\":1000,\"signal\":11,"
               "\"signal_name\":\"SIGSEGV\",\"python_version\":\"3.11\",\"core\":\"present\",\"comm\":\"python3\","
               "\"exe\":\"/usr/bin/python3.11\",\"script\":\"worker.py\",\"frame\":{\"function\":\"element_types\","
               "\"file\":\"/srv/worker.py\",\"line\":41},\"state\":\"done\",\"error\":null,"
               "\"signature\":\"3f1c0d6e9a2b4c87\"},"
               "{\"id\":4,\"time_usec\":1764265805000000,\"pid\":900,\"uid\":1000,\"gid\":1000,\"signal\":7,"
               "\"signal_name\":\"SIGBUS\",\"python_version\":null,\"core\":\"missing\",\"comm\":\"python3\","
               "\"exe\":\"/usr/bin/python3.11\",\"script\":\"a_script_with_a_very_long_name.py\",\"frame\":null,"
               "\"state\":\"pending\",\"error\":null,\"signature\":null}]\n", "", "list --json as uid 1000");
        expect(ask(db, -1, VERB_LIST, "json", "n=1", NULL), 0,
               "[{\"id\":5,\"time_usec\":1764265865000000,\"pid\":1000,\"uid\":1001,\"gid\":1001,\"signal\":11,"
               "\"signal_name\":\"SIGSEGV\",\"python_version\":\"3.12\",\"core\":\"present\",\"comm\":\"python3.12\","
               "\"exe\":\"/usr/bin/python3.12\",\"script\":\"job.py\",\"frame\":{\"function\":\"job\","
               "\"file\":\"/home/u/job.py\",\"line\":3},\"state\":\"done\",\"error\":null,"
               "\"signature\":\"00000000deadbeef\"}]\n", "", "list --json -n 1");
        struct answer a = ask(db, -1, VERB_LIST, "json", NULL);
        size_t objects = 0;
        for (const char *p = a.out; (p = strstr(p, "{\"id\":")); p++)
                objects++;
        tap_ok(a.r == 0 && objects == 5 && starts_with(a.out, "[{\"id\":1,") && strstr(a.out, "\"core\":\"too-large\""),
               "list --json: five objects, oldest first");
        free(a.out);
}

static void test_info(sqlite3 *db) {
        char *want = NULL;

        if (asprintf(&want,
                     "           Crash: 1\n"
                     "             PID: 618 (python3)\n"
                     "PID in container: 18\n"
                     "  Crashed thread: 618\n"
                     "             UID: 1000\n"
                     "             GID: 1000\n"
                     "          Signal: 11 (SIGSEGV)\n"
                     "       Timestamp: Thu 2025-11-27 17:47:05 UTC\n"
                     "    Command Line: python3 /srv/worker.py\n"
                     "      Executable: /usr/bin/python3.11\n"
                     "     Working Dir: /srv\n"
                     "   Control Group: /user.slice/user-1000.slice/session-3.scope\n"
                     "            Unit: session-3.scope\n"
                     "         Boot ID: 0123456789abcdef0123456789abcdef\n"
                     "        Hostname: box\n"
                     "            Core: present\n"
                     "         Storage: %s/cores/core.1.zst\n"
                     "            Size: 1.0 MiB on disk, 4.0 MiB uncompressed\n"
                     "          Python: 3.11\n"
                     "        Analysis: done (attempts: 1)\n"
                     "       Signature: 3f1c0d6e9a2b4c87 (seen %s)\n"
                     "      First seen: Thu 2025-11-27 17:47:05 UTC\n"
                     "       Last seen: Thu 2025-11-27 17:4%s:05 UTC\n"
                     "         Summary: SIGSEGV in element_types (worker.py:41) via PySequence_Tuple\n", tmpdir,
                     "2 times", "9") < 0)
                abort();
        /* the group's count and times are the crashes' own, of what the caller may see */
        expect(ask(db, -1, VERB_INFO, "ID=1", NULL), 0, want, "", "info ID=1: seen twice, the crash times");
        free(want);
        struct answer mine = ask(db, 1000, VERB_INFO, "ID=1", NULL);
        tap_ok(mine.r == 0 && strstr(mine.out, "       Signature: 3f1c0d6e9a2b4c87 (seen 1 time)\n"
                                                "      First seen: Thu 2025-11-27 17:47:05 UTC\n"
                                                "       Last seen: Thu 2025-11-27 17:47:05 UTC\n"),
               "info ID=1 as its user: seen once (the other crash of that signature is not theirs)");
        free(mine.out);
        expect(ask(db, -1, VERB_INFO, "ID=2", NULL), 0,
               "           Crash: 2\n"
               "             PID: 700 (python3)\n"
               "             UID: 0\n"
               "             GID: 0\n"
               "          Signal: 6 (SIGABRT)\n"
               "       Timestamp: Thu 2025-11-27 17:48:05 UTC\n"
               "    Command Line: python3 -m pkg.tool\n"
               "      Executable: /usr/bin/python3.12\n"
               "     Working Dir: /srv\n"
               "   Control Group: /system.slice/tool.service\n"
               "            Unit: tool.service\n"
               "       Container: docker c0ffee0123456789abcdef0123456789abcdef0123456789abcdef0123456789\n"
               "         Boot ID: 0123456789abcdef0123456789abcdef\n"
               "        Hostname: box\n"
               "            Core: too-large: larger than MaxCoreSize\n"
               "      Suppressed: 3 earlier crashes of this executable dropped by the rate limit\n"
               "        Analysis: done (attempts: 0)\n", "", "info ID=2: no core, no analysis");
        expect(ask(db, -1, VERB_INFO, "ID=2", "json", NULL), 0,
               "{\"id\":2,\"time_usec\":1764265685000000,\"pid\":700,\"pid_ns\":null,\"tid\":null,\"uid\":0,\"gid\":0,"
               "\"signal\":6,\"comm\":\"python3\",\"exe\":\"/usr/bin/python3.12\",\"cwd\":\"/srv\","
               "\"cgroup\":\"/system.slice/tool.service\",\"unit\":\"tool.service\",\"container\":1,"
               "\"container_runtime\":\"docker\",\"container_id\":\"c0ffee0123456789abcdef0123456789abcdef0123456789abcdef0123456789\",\"dumpable\":1,"
               "\"rlimit_core\":0,\"boot_id\":\"0123456789abcdef0123456789abcdef\",\"hostname\":\"box\","
               "\"core_path\":null,\"core_size\":8589934592,\"core_stored_size\":0,\"core_state\":\"too-large\","
               "\"capture_note\":\"larger than MaxCoreSize\",\"suppressed\":3,\"state\":\"done\",\"attempts\":0,"
               "\"error\":null,\"python_version\":null,\"analyzed_usec\":null,"
               "\"cmdline\":[\"python3\",\"-m\",\"pkg.tool\"],\"thread_names\":null,\"signal_name\":\"SIGABRT\","
               "\"core_file\":null,\"signature\":null,\"binaries\":[]}\n", "", "info --json ID=2: every column, in the store's names");

        struct answer a = ask(db, -1, VERB_INFO, "ID=1", "json", NULL);
        char storage[PATH_MAX + 64];
        snprintf(storage, sizeof(storage), "\"core_file\":\"%s/cores/core.1.zst\"", tmpdir);
        tap_ok(a.r == 0 && starts_with(a.out, "{\"id\":1,\"time_usec\":1764265625000000,\"pid\":618,\"pid_ns\":18,\"tid\":618,") &&
               strstr(a.out, ",\"thread_names\":[[618,\"MainThread\"],[619,\"worker\"]],") && strstr(a.out, storage) &&
               strstr(a.out, ",\"signature\":{\"signature\":\"3f1c0d6e9a2b4c87\",\"title\":\"SIGSEGV in element_types "
                             "(worker.py:41) via PySequence_Tuple\",\"count\":2,\"first_usec\":1764265625000000,"
                             "\"last_usec\":1764265745000000},\"binaries\":[]}\n"),
               "info --json ID=1: the thread names, the core file, the signature's object");
        int keys = 0;
        for (const char *k = a.out; (k = strstr(k, "\"signature\":")); k++)
                keys++;
        TAP_EQ_INT(keys, 2, "info --json ID=1: \"signature\" once at the top, once in its object");
        free(a.out);

        a = ask(db, -1, VERB_INFO, "ID=4", NULL);
        snprintf(storage, sizeof(storage), "         Storage: %s/cores/core.4.zst (missing)\n", tmpdir);
        tap_ok(a.r == 0 && strstr(a.out, storage) && strstr(a.out, "        Analysis: pending (attempts: 0)\n") &&
               !strstr(a.out, "Signature"), "info ID=4: its core file is missing, pending");
        free(a.out);

        /* the newest match */
        a = ask(db, -1, VERB_INFO, NULL);
        tap_ok(a.r == 0 && starts_with(a.out, "           Crash: 5\n"), "info with no match: the newest crash");
        free(a.out);
        a = ask(db, 1000, VERB_INFO, NULL);
        tap_ok(a.r == 0 && starts_with(a.out, "           Crash: 4\n"), "as uid 1000: their newest");
        free(a.out);
        a = ask(db, -1, VERB_INFO, "SIG=SIGSEGV", "UID=1000", NULL);
        tap_ok(a.r == 0 && starts_with(a.out, "           Crash: 3\n"), "SIG=SIGSEGV UID=1000: the newest, crash 3");
        free(a.out);
        expect(ask(db, 1000, VERB_INFO, "ID=3", NULL), 1, "", "No crashes match.", "info ID=3 as uid 1000");
        expect(ask(db, 1000, VERB_INFO, "ID=2", "json", NULL), 1, "", "No crashes match.",
               "info --json ID=2 as uid 1000");
        expect(ask(db, -1, VERB_INFO, "ID=99", NULL), 1, "", "No crashes match.", "info ID=99");

        int64_t id = 0;
        char *core = NULL, *exe = NULL;
        struct query q;
        query_init(&q);
        TAP_EQ_INT(query_find_newest(db, &q, 1000, &id, &core, &exe), 1, "query_find_newest as uid 1000");
        tap_ok(id == 4 && core && !strcmp(core, "cores/core.4.zst") && exe && !strcmp(exe, "/usr/bin/python3.11"),
               "crash 4, its core and executable");
        free(core);
        free(exe);
        TAP_EQ_INT(query_find_newest(db, &q, 4242, &id, NULL, NULL), 0, "for a user with no crash: 0");
}

static void test_show(sqlite3 *db) {
        char *want, *rendered;

        want = cat(show_head, show_plain, NULL);
        expect(ask(db, -1, VERB_SHOW, "ID=1", NULL), 0, want, "", "show ID=1");
        free(want);
        want = cat(show_head, show_native, NULL);
        expect(ask(db, -1, VERB_SHOW, "ID=1", "native", NULL), 0, want, "", "show --native ID=1");
        free(want);
        want = cat(show_head, show_locals, NULL);
        expect(ask(db, -1, VERB_SHOW, "ID=1", "locals", NULL), 0, want, "", "show --locals ID=1");
        free(want);
        for (int native = 0; native <= 1; native++)
                for (int locals = 0; locals <= 1; locals++) {
                        rendered = render(r1, native, locals);
                        expect(ask(db, 1000, VERB_SHOW, "ID=1", native ? "native" : "ID=1", locals ? "locals" : "ID=1",
                                   NULL), 0, rendered, "",
                               native && locals ? "show --native --locals as uid 1000: what report_text_render prints" :
                               native ? "show --native as uid 1000: what report_text_render prints" :
                               locals ? "show --locals as uid 1000: what report_text_render prints" :
                               "show as uid 1000: what report_text_render prints for the stored report");
                        free(rendered);
                }
        expect(ask(db, -1, VERB_SHOW, "ID=1", "json", NULL), 0, r1, "", "show --json: the stored report");
        expect(ask(db, -1, VERB_SHOW, NULL), 0,
               "Using executable given on the command line: /usr/bin/python3.12\n\n"
               "The process died due receiving signal SIGSEGV\n"
               "Traceback for thread 1000 [Has the GIL] (most recent call last):\n"
               "    (Python) File \"/home/u/job.py\", line 3, in job\n", "", "show: the newest crash (5)");
        expect(ask(db, -1, VERB_SHOW, "ID=4", NULL), 1, "", "Crash 4 has not been analysed (yet): see pystackctl info",
               "show of a pending crash");
        expect(ask(db, 1000, VERB_SHOW, NULL), 1, "", "Crash 4 has not been analysed (yet): see pystackctl info",
               "show as uid 1000: their newest crash, pending");
        expect(ask(db, -1, VERB_SHOW, "ID=2", NULL), 1, "", "Crash 2 has not been analysed (yet): see pystackctl info",
               "show of a crash without a core");
        expect(ask(db, 1000, VERB_SHOW, "ID=3", NULL), 1, "", "No crashes match.", "show ID=3 as uid 1000");
        expect(ask(db, 1001, VERB_SHOW, "ID=1", NULL), 1, "", "No crashes match.", "show ID=1 as uid 1001");
}

static void test_groups(sqlite3 *db) {
        char *want;

        want = cat(groups_header, group_r1, group_r2, "\n2 signatures.\n", NULL);
        expect(ask(db, -1, VERB_GROUPS, NULL), 0, want, "", "groups");
        free(want);
        want = cat(group_r1, group_r2, NULL);
        expect(ask(db, -1, VERB_GROUPS, "no-legend", NULL), 0, want, "", "groups --no-legend");
        free(want);
        expect(ask(db, -1, VERB_GROUPS, "json", NULL), 0,
               "[{\"signature\":\"3f1c0d6e9a2b4c87\",\"title\":\"SIGSEGV in element_types (worker.py:41) via "
               "PySequence_Tuple\",\"count\":2,\"first_usec\":1764265625000000,\"last_usec\":1764265745000000},"
               "{\"signature\":\"00000000deadbeef\",\"title\":\"SIGSEGV in job (job.py:3)\",\"count\":1,"
               "\"first_usec\":1764265865000000,\"last_usec\":1764265865000000}]\n", "", "groups --json");
        want = cat(groups_header,
                   "3f1c0d6e9a2b4c87      1 Thu 2025-11-27 17:47:05 UTC Thu 2025-11-27 17:47:05 UTC "
                   "SIGSEGV in element_types (worker.py:41) via PySequence_Tuple\n", "\n1 signature.\n", NULL);
        expect(ask(db, 1000, VERB_GROUPS, NULL), 0, want, "", "groups as uid 1000: crash 1 only");
        free(want);
        want = cat(groups_header, group_r2, "\n1 signature.\n", NULL);
        expect(ask(db, 1001, VERB_GROUPS, NULL), 0, want, "", "groups as uid 1001");
        free(want);
        /* the scanning path, and a tie: the most recent first */
        want = cat(groups_header, group_r2,
                   "3f1c0d6e9a2b4c87      1 Thu 2025-11-27 17:49:05 UTC Thu 2025-11-27 17:49:05 UTC "
                   "SIGSEGV in element_types (worker.py:41) via PySequence_Tuple\n", "\n2 signatures.\n", NULL);
        expect(ask(db, -1, VERB_GROUPS, "since=17:48:30", NULL), 0, want, "", "groups --since 17:48:30");
        free(want);
        want = cat(groups_header, group_r1, "\n1 signature.\n", NULL);
        expect(ask(db, -1, VERB_GROUPS, "EXE=/usr/bin/python3.11", NULL), 0, want, "", "groups EXE=...python3.11");
        free(want);
        expect(ask(db, -1, VERB_GROUPS, "SIG=SIGBUS", "json", NULL), 1, "[]\n", "No analysed crashes match.",
               "groups --json SIG=SIGBUS: [], exit 1 (as list --json)");
        struct answer a = ask(db, 4242, VERB_GROUPS, NULL);
        tap_ok(a.r == 1 && !strcmp(a.err, "No analysed crashes match."), "groups as a user with no crash: %s", a.err);
        free(a.out);
        a = ask(db, -1, VERB_GROUPS, "SIG=SIGBUS", NULL);
        tap_ok(a.r == 1 && !strcmp(a.err, "No analysed crashes match.") && !a.out[0],
               "groups SIG=SIGBUS: %s, nothing on stdout (as list)", a.err);
        free(a.out);
}

static void test_analyze(sqlite3 *db) {
        struct crash_info ci;

        expect(ask(db, -1, VERB_ANALYZE, "ID=1", NULL), 0, "Crash 1 queued for a new analysis.\n", "", "analyze ID=1");
        tap_ok(store_get_crash(db, 1, -1, &ci) == 1 && !strcmp(ci.v[COL_STATE].s, "pending") && ci.v[COL_ATTEMPTS].i == 0,
               "crash 1 is pending, attempts 0");
        crash_info_done(&ci);
        expect(ask(db, -1, VERB_ANALYZE, "ID=3", "json", NULL), 0, "{\"id\":3,\"state\":\"pending\"}\n", "",
               "analyze --json ID=3");
        expect(ask(db, -1, VERB_ANALYZE, "ID=2", NULL), 1, "", "Crash 2 has no core to analyse, or is being analysed now",
               "analyze of a crash without a core");
        struct claim c = {};
        TAP_EQ_INT(store_claim_next(db, &c), 1, "crash 1 claimed");
        claim_done(&c);
        expect(ask(db, -1, VERB_ANALYZE, "ID=1", NULL), 1, "", "Crash 1 has no core to analyse, or is being analysed now",
               "analyze of a crash being analysed");
        expect(ask(db, 1000, VERB_ANALYZE, "ID=5", NULL), 1, "", "No crashes match.", "analyze ID=5 as uid 1000");
        expect(ask(db, 1001, VERB_ANALYZE, NULL), 0, "Crash 5 queued for a new analysis.\n", "",
               "analyze as uid 1001: their newest");

        expect(ask(db, -1, VERB_DUMP, NULL), -EINVAL, "", "dump is not a query", "query_run of dump");
        expect(ask(db, -1, VERB_VACUUM, NULL), -EINVAL, "", "vacuum is not a query", "query_run of vacuum");
        expect(ask(db, -1, VERB_CORE, NULL), -EINVAL, "", "core is not a query", "query_run of core");

        /* a report damaged in the store */
        TAP_EQ_INT(sqlite3_exec(db, "UPDATE crashes SET report = '{\"x\":' WHERE id = 5", NULL, NULL, NULL), SQLITE_OK,
                   "crash 5's report damaged with SQL");
        expect(ask(db, -1, VERB_SHOW, "ID=5", NULL), 1, "",
               "Crash 5: the stored report is damaged (not JSON): pystackctl analyze 5 makes a new one",
               "show of a damaged report");
        expect(ask(db, -1, VERB_SHOW, "ID=5", "json", NULL), 1, "",
               "Crash 5: the stored report is damaged (not JSON): pystackctl analyze 5 makes a new one",
               "show --json of a damaged report: the same, nothing printed");
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
        (void)sb, (void)flag, (void)ftw;
        return remove(path);
}

int main(void) {
        sqlite3 *db;

        setenv("TZ", "UTC", 1);
        tzset();
        if (!mkdtemp(tmpdir))
                return 1;
        test_matches();
        test_times();
        test_wire();
        db = fill_store();
        test_list(db);
        test_info(db);
        test_show(db);
        test_groups(db);
        test_analyze(db);
        store_close(db);
        nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        sqlite3_shutdown();
        return tap_done();
}
