/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * report_text: the one text renderer.  It prints a report document
 * (doc/report-schema.md) in PyStack's format — what `pystack core` prints,
 * and what `pystackctl show` prints from the report the store kept — so the
 * format exists once.  It depends on the document only (json.h, escape.h),
 * never on the analysis that made it, and every name in it is escaped.
 */

#include <stdbool.h>
#include <stdio.h>

#include "json.h"

struct text_options {
        bool color;                     /* ANSI colours (a terminal only) */
        bool native;                    /* native frames, native errors and the threads Python does not
                                         * know, when the report has them */
        bool locals;                    /* arguments and locals, when the report has them */
        bool tasks;                     /* the asyncio task tree, when the report has the tasks */
};

/* Return 0, or -EIO when writing failed. */
int report_text_render(FILE *out, const struct json_value *report, const struct text_options *o);
