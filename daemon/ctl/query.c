/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "escape.h"
#include "query.h"
#include "util.h"

static const char *const verb_names[_VERB_MAX] = {
        [VERB_LIST] = "list", [VERB_INFO] = "info", [VERB_SHOW] = "show", [VERB_DUMP] = "dump",
        [VERB_DEBUG] = "debug", [VERB_ANALYZE] = "analyze", [VERB_GROUPS] = "groups",
        [VERB_VACUUM] = "vacuum", [VERB_CORE] = "core",
};

static const char *const match_names[] = {
        [MATCH_ID] = "ID", [MATCH_PID] = "PID", [MATCH_COMM] = "COMM", [MATCH_EXE] = "EXE",
        [MATCH_UID] = "UID", [MATCH_SIG] = "SIG", [MATCH_SIGNATURE] = "SIGNATURE",
        [MATCH_CONTAINER] = "CONTAINER", [MATCH_HOST] = "HOST", [MATCH_MACHINE_ID] = "MACHINE_ID",
};

void query_init(struct query *q) {
        *q = (struct query) { .since = INT64_MIN, .until = INT64_MAX };
}

int query_verb_from_name(const char *name) {
        for (int i = 0; i < _VERB_MAX; i++)
                if (i != VERB_CORE && !strcmp(name, verb_names[i]))
                        return i;
        return -1;
}

const char *query_verb_name(enum query_verb v) {
        return v < _VERB_MAX ? verb_names[v] : "?";
}


static bool all_digits(const char *s) {
        if (!*s || strlen(s) > 19)
                return false;
        for (; *s; s++)
                if (!isdigit((unsigned char)*s))
                        return false;
        return true;
}

static int signal_number(const char *s) {
        if (all_digits(s))
                return atoi(s) > 0 && atoi(s) < 65 ? atoi(s) : -1;
        if (!strncmp(s, "SIG", 3))
                s += 3;
        for (int i = 1; i < 65; i++) {
                const char *n = sigabbrev_np(i);
                if (n && !strcasecmp(n, s))
                        return i;
        }
        return -1;
}

static int add(struct query *q, enum match_key key, const char *value, char *err, size_t errsz) {
        struct match *m;

        if (q->n_matches >= QUERY_MAX_MATCHES)
                return errorf(err, errsz, "at most %d matches", QUERY_MAX_MATCHES);
        /* a newline could not travel on the wire (query_to_wire's lines) */
        if (strlen(value) >= sizeof(q->matches[0].value) || !*value || strchr(value, '\n'))
                return errorf(err, errsz, "bad match value for %s=", match_names[key]);
        if ((key == MATCH_ID || key == MATCH_PID || key == MATCH_UID) && !all_digits(value))
                return errorf(err, errsz, "%s= takes a number: '%s'", match_names[key], value);
        if (key == MATCH_SIGNATURE && strspn(value, "0123456789abcdef") != strlen(value))
                return errorf(err, errsz, "SIGNATURE= takes a hex signature: '%s'", value);
        if (key == MATCH_MACHINE_ID && (strlen(value) != 32 || strspn(value, "0123456789abcdef") != 32))
                return errorf(err, errsz, "MACHINE_ID= takes 32 hex digits: '%s'", value);
        m = &q->matches[q->n_matches++];
        m->key = key;
        if (key == MATCH_SIG) {
                int sig = signal_number(value);
                if (sig < 0) {
                        q->n_matches--;
                        return errorf(err, errsz, "unknown signal '%s'", value);
                }
                snprintf(m->value, sizeof(m->value), "%d", sig);
        } else
                snprintf(m->value, sizeof(m->value), "%s", value);
        return 0;
}

bool query_needs_journal(const struct query *q) {
        for (size_t i = 0; i < q->n_matches; i++)
                if (q->matches[i].key == MATCH_HOST || q->matches[i].key == MATCH_MACHINE_ID)
                        return true;
        return false;
}

int query_add_match(struct query *q, const char *arg, char *err, size_t errsz) {
        const char *eq = strchr(arg, '=');

        if (eq) {
                for (size_t k = 0; k < sizeof(match_names) / sizeof(match_names[0]); k++)
                        if (strlen(match_names[k]) == (size_t)(eq - arg) && !strncmp(arg, match_names[k], eq - arg))
                                return add(q, (enum match_key)k, eq + 1, err, errsz);
                return errorf(err, errsz, "unknown match '%.*s=' (ID, PID, COMM, EXE, UID, SIG, SIGNATURE, CONTAINER, HOST, MACHINE_ID)",
                            (int)(eq - arg), arg);
        }
        if (all_digits(arg))
                return add(q, MATCH_PID, arg, err, errsz);
        if (strchr(arg, '/'))
                return add(q, MATCH_EXE, arg, err, errsz);
        return add(q, MATCH_COMM, arg, err, errsz);
}

/* ---- time ---- */

static int64_t day_start(time_t t, int days) {
        struct tm tm;

        localtime_r(&t, &tm);
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        tm.tm_mday += days;
        tm.tm_isdst = -1;
        return (int64_t)mktime(&tm) * 1000000;
}

static int parse_span(const char *s, int64_t *usec) {
        static const struct { const char *unit; int64_t usec; } units[] = {
                { "us", 1 }, { "ms", 1000 }, { "s", 1000000 }, { "sec", 1000000 }, { "second", 1000000 },
                { "seconds", 1000000 }, { "m", 60000000 }, { "min", 60000000 }, { "minute", 60000000 },
                { "minutes", 60000000 }, { "h", 3600000000LL }, { "hour", 3600000000LL },
                { "hours", 3600000000LL }, { "d", 86400000000LL }, { "day", 86400000000LL },
                { "days", 86400000000LL }, { "w", 604800000000LL }, { "week", 604800000000LL },
                { "weeks", 604800000000LL }, { "M", 2592000000000LL }, { "month", 2592000000000LL },
                { "months", 2592000000000LL }, { "y", 31536000000000LL }, { "year", 31536000000000LL },
                { "years", 31536000000000LL },
        };
        int64_t total = 0;
        bool any = false;

        while (*s) {
                char *end;
                long long v;
                size_t n;

                while (*s == ' ')
                        s++;
                if (!*s)
                        break;
                if (!isdigit((unsigned char)*s))
                        return -EINVAL;
                v = strtoll(s, &end, 10);
                while (*end == ' ')
                        end++;
                n = strspn(end, "abcdefghijklmnopqrstuvwxyzM");
                bool found = false;
                for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
                        if (strlen(units[i].unit) == n && !strncmp(end, units[i].unit, n)) {
                                /* each term, and their sum: never past INT64_MAX */
                                if (v > INT64_MAX / units[i].usec / 2 ||
                                    __builtin_add_overflow(total, v * units[i].usec, &total))
                                        return -EINVAL;
                                found = true;
                                break;
                        }
                if (!found || n == 0)
                        return -EINVAL;
                s = end + n;
                any = true;
        }
        if (!any)
                return -EINVAL;
        *usec = total;
        return 0;
}

int parse_time(const char *s, int64_t now_usec, int64_t *usec) {
        time_t now = (time_t)(now_usec / 1000000);
        struct tm tm;
        char *end;
        int64_t span;
        size_t n = strlen(s);

        if (!strcmp(s, "now"))
                return *usec = now_usec, 0;
        if (!strcmp(s, "today"))
                return *usec = day_start(now, 0), 0;
        if (!strcmp(s, "yesterday"))
                return *usec = day_start(now, -1), 0;
        if (!strcmp(s, "tomorrow"))
                return *usec = day_start(now, 1), 0;
        if (s[0] == '@') {
                errno = 0;
                long long v = strtoll(s + 1, &end, 10);
                if (errno || end == s + 1 || *end || v < 0 || v > INT64_MAX / 1000000)
                        return -EINVAL;
                return *usec = v * 1000000, 0;
        }
        if (s[0] == '-' || s[0] == '+') {
                if (parse_span(s + 1, &span) < 0 ||
                    (s[0] == '-' ? __builtin_sub_overflow(now_usec, span, &span) :
                                   __builtin_add_overflow(now_usec, span, &span)))
                        return -EINVAL;
                return *usec = span, 0;
        }
        if (n > 4 && !strcmp(s + n - 4, " ago")) {
                char buf[128];
                if (n - 4 >= sizeof(buf))
                        return -EINVAL;
                memcpy(buf, s, n - 4);
                buf[n - 4] = 0;
                if (parse_span(buf, &span) < 0 || __builtin_sub_overflow(now_usec, span, &span))
                        return -EINVAL;
                return *usec = span, 0;
        }
        /* absolute: "YYYY-MM-DD[ HH:MM[:SS]]" or "HH:MM[:SS]" (today), local time */
        static const char *const formats[] = {
                "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%H:%M:%S", "%H:%M",
        };
        for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
                localtime_r(&now, &tm);
                tm.tm_hour = tm.tm_min = tm.tm_sec = 0;   /* what a format leaves out is midnight / today */
                end = strptime(s, formats[i], &tm);
                if (end && !*end) {
                        struct tm asked = tm;

                        tm.tm_isdst = -1;
                        time_t t = mktime(&tm);
                        /* mktime rolls "February 30" into March: such a date does not exist */
                        if (t == (time_t)-1 || tm.tm_mday != asked.tm_mday || tm.tm_mon != asked.tm_mon ||
                            tm.tm_year != asked.tm_year)
                                return -EINVAL;
                        return *usec = (int64_t)t * 1000000, 0;
                }
        }
        return -EINVAL;
}

/* ---- the wire ---- */

int query_to_wire(const struct query *q, FILE *out) {
        fprintf(out, "verb=%s\n", verb_names[q->verb]);
        for (size_t i = 0; i < q->n_matches; i++)
                fprintf(out, "match=%s=%s\n", match_names[q->matches[i].key], q->matches[i].value);
        if (q->since != INT64_MIN)
                fprintf(out, "since=%lld\n", (long long)q->since);
        if (q->until != INT64_MAX)
                fprintf(out, "until=%lld\n", (long long)q->until);
        /* the sixth flag (tasks) only when set: a pystackd of before it reads five */
        fprintf(out, "limit=%lld\nflags=%d%d%d%d%d%s\n\n", (long long)q->limit, q->reverse, q->json, q->native,
                q->locals, q->no_legend, q->tasks ? "1" : "");
        return ferror(out) ? -EIO : 0;
}

int query_from_wire(struct query *q, const char *text, size_t len) {
        /* every key but match at most once: a request that says two things is refused */
        static const char *const once[] = { "verb", "since", "until", "limit", "flags" };
        unsigned seen = 0;
        char err[128];
        size_t pos = 0;
        bool verb = false;

        query_init(q);
        if (len > QUERY_MAX_WIRE || memchr(text, 0, len))
                return -EINVAL;
        while (pos < len) {
                const char *nl = memchr(text + pos, '\n', len - pos);
                char line[512], *v;
                size_t n;

                if (!nl)
                        return -EINVAL;
                n = (size_t)(nl - (text + pos));
                if (n >= sizeof(line))
                        return -EINVAL;
                memcpy(line, text + pos, n);
                line[n] = 0;
                pos += n + 1;
                if (n == 0)     /* the end: nothing may follow */
                        return verb && pos == len ? 0 : -EINVAL;
                v = strchr(line, '=');
                if (!v)
                        return -EINVAL;
                *v++ = 0;
                for (unsigned k = 0; k < sizeof(once) / sizeof(*once); k++)
                        if (!strcmp(line, once[k])) {
                                if (seen & (1u << k))
                                        return -EINVAL;
                                seen |= 1u << k;
                        }
                if (!strcmp(line, "verb")) {
                        int i;
                        if (!strcmp(v, "core"))
                                i = VERB_CORE;
                        else if ((i = query_verb_from_name(v)) < 0)
                                return -EINVAL;
                        q->verb = (enum query_verb)i;
                        verb = true;
                } else if (!strcmp(line, "match")) {
                        if (query_add_match(q, v, err, sizeof(err)) < 0 || query_needs_journal(q))
                                return -EINVAL;
                } else if (!strcmp(line, "since") || !strcmp(line, "until") || !strcmp(line, "limit")) {
                        char *end;
                        errno = 0;
                        long long x = strtoll(v, &end, 10);
                        if (errno || end == v || *end)
                                return -EINVAL;
                        if (!strcmp(line, "since"))
                                q->since = x;
                        else if (!strcmp(line, "until"))
                                q->until = x;
                        else if (x >= 0)
                                q->limit = x;
                        else
                                return -EINVAL;
                } else if (!strcmp(line, "flags")) {
                        size_t nf = strlen(v);
                        if ((nf != 5 && nf != 6) || strspn(v, "01") != nf)
                                return -EINVAL;
                        q->tasks = nf == 6 && v[5] == '1';
                        q->reverse = v[0] == '1';
                        q->json = v[1] == '1';
                        q->native = v[2] == '1';
                        q->locals = v[3] == '1';
                        q->no_legend = v[4] == '1';
                } else
                        return -EINVAL;
        }
        return -EINVAL;  /* no terminating blank line */
}

