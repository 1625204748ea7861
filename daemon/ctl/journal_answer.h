/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * journal_answer: pystackctl's list, info, show and groups read from journal files instead of the
 * store (--directory, --file, --merge): the entries pystackd wrote, on this host or gathered from
 * many by systemd-journal-remote.  Every field is text some host chose: read bounded, checked,
 * printed escaped; an entry that does not hold together is skipped with one line on stderr.
 */

#include <stdbool.h>
#include <stdio.h>

#include "query.h"

struct journal_source {
        const char *directory;          /* --directory */
        char **files;                   /* --file patterns (glob), NULL-ended, or NULL */
        bool merge;                     /* --merge: every journal of this system, local and remote */
        bool no_index;                  /* --no-index: read the files, not what an earlier run kept */
};

/*
 * Run q (list, info, show, groups; dump and debug say where the core is) over the source.
 * 0, 1 when nothing matches (err says so), or -errno with err.
 */
int journal_run(const struct journal_source *src, const struct query *q, FILE *out, char *err, size_t errsz);
