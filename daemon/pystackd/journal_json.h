/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * journal_json: the analyzer's report as the journal entry carries it (PYSTACK_REPORT_JSON), cut to
 * a size.  Journal fields are read by more people than the store (groups adm and systemd-journal,
 * and whoever reads the journals a fleet gathered): locals are left out unless asked for.
 */

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "json.h"

/* What was cut, in the order it is cut: the bits of *cut, and the words of "journal_cut". */
enum {
        JOURNAL_CUT_LOCALS = 1 << 0,            /* every frame's arguments and locals */
        JOURNAL_CUT_OTHER_THREADS = 1 << 1,     /* the frames of threads other than the crashed one */
        JOURNAL_CUT_MODULES = 1 << 2,           /* the modules and warnings lists */
        JOURNAL_CUT_OUTER_FRAMES = 1 << 3,      /* the crashed thread's outermost frames */
        JOURNAL_CUT_TASKS = 1 << 4,             /* the asyncio tasks (cut right after the locals) */
};

/*
 * report (the analyzer's JSON document, its root an object) without "text", and without the
 * frames' "arguments", "locals" and "locals_error" unless with_locals, into out as one JSON
 * object of at most max bytes.  When the whole does not fit, locals go first, then the other
 * threads' frames (each such thread keeps its other members, "frames": [] and "frames_omitted"),
 * then "modules" and "warnings" (emptied), then the crashed thread's outermost frames (its
 * innermost kept, "frames_omitted" saying how many went); the object then has "journal_cut": the
 * words of what went.  0 and *cut (0: nothing was cut), -E2BIG when not even the crashed thread's
 * innermost frame fits (out is then empty), -EINVAL for a root that is not an object, -ENOMEM.
 */
int journal_report_json(const struct json_value *report, bool with_locals, size_t max, struct buf *out,
                        unsigned *cut);
