/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * query: what pystackctl asks of the store, and the answers, in one place.
 *
 * Root's pystackctl runs a query against the store itself; anyone else's
 * sends it to pystackd, which runs the very same code with the caller's uid
 * as a filter.  A query travels as a few "key=value" lines, parsed strictly
 * (query_from_wire) since pystackd reads it from any local user.
 */

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "store.h"

enum query_verb {
        VERB_LIST, VERB_INFO, VERB_SHOW, VERB_DUMP, VERB_DEBUG, VERB_ANALYZE, VERB_GROUPS, VERB_VACUUM,
        VERB_CORE,      /* on the wire only: "give me the core of the newest match" (dump, debug) */
        _VERB_MAX
};

#define QUERY_MAX_MATCHES 16
#define QUERY_MAX_WIRE (16u << 10)

struct query {
        enum query_verb verb;
        struct match matches[QUERY_MAX_MATCHES];
        size_t n_matches;
        int64_t since, until;   /* µs since the epoch; INT64_MIN / INT64_MAX when unset */
        int64_t limit;          /* the last N matches only (0: all) */
        bool reverse, json, native, locals, no_legend;
        bool tasks;                     /* show: the asyncio task tree */
        bool hosts;                     /* crashes of many hosts (journals): a HOST column */
};

void query_init(struct query *q);

/* list's header (or "[" for JSON) and one row (no newline), as every source of crashes prints them. */
void answer_list_header(FILE *out, const struct query *q);
void answer_list_row(FILE *out, const struct query *q, const struct crash_row *c);
/* A time as list and info print it: "Thu 2025-11-27 17:47:05 UTC". */
void answer_put_time(FILE *out, int64_t usec);
/* One line of info, "           Key: value" (value escaped); nothing for NULL. */
void answer_info_line(FILE *out, const char *key, const char *value);

/* "list" -> VERB_LIST; -1 for an unknown verb. */
int query_verb_from_name(const char *name);
const char *query_verb_name(enum query_verb v);

/* A MATCH argument as coredumpctl reads it (number, word, path, KEY=value). 0 or -EINVAL with err. */
int query_add_match(struct query *q, const char *arg, char *err, size_t errsz);
/* q has a match only journals can answer (HOST=, MACHINE_ID=). */
bool query_needs_journal(const struct query *q);

/*
 * A time as journalctl takes it: "2026-11-27 17:47[:05]", "17:47", "now",
 * "today", "yesterday", "tomorrow", "@1764265625", "-1h", "+30min", "2d ago".
 * 0 and *usec, or -EINVAL.
 */
int parse_time(const char *s, int64_t now_usec, int64_t *usec);

/* Serialize / parse the wire form.  query_from_wire refuses anything unexpected (-EINVAL). */
int query_to_wire(const struct query *q, FILE *out);
int query_from_wire(struct query *q, const char *text, size_t len);

/* Where a query is answered from. */
struct query_store {
        sqlite3 *db;
        const char *dir;                /* the storage directory: info says where a core is */
        int cores_fd;                   /* its cores/, opened for reading: tells a missing core (-1: not told) */
        /* analyze: queue crash id for a new analysis: 1, 0 when it has no core or is being analysed,
         * -errno.  NULL: store_requeue_for_analysis() on db (a caller that may write it). */
        int (*requeue)(const struct query_store *s, int64_t id);
        void *userdata;
};

/*
 * Run q against s and print the answer (text or JSON) to out.  uid >= 0
 * restricts every answer to the crashes of that uid.  Returns 0, 1 when
 * nothing matches (with a one-line message in err), or -errno with err.
 */
int query_run(const struct query_store *s, const struct query *q, int64_t uid, FILE *out, char *err, size_t errsz);

/*
 * The newest crash matching q (for uid >= 0: of that uid): 1 with its id,
 * core path (malloc'ed or NULL) and executable (malloc'ed or NULL); 0 when
 * none; -EIO.
 */
int query_find_newest(sqlite3 *db, const struct query *q, int64_t uid, int64_t *id, char **core_path,
                      char **exe);
