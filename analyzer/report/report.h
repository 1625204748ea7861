/* SPDX-License-Identifier: MIT */
#pragma once

/* report: an analysis as the tutorial's text, or as one JSON document (doc/report-schema.md). */

#include <stdbool.h>
#include <stdio.h>

#include "analysis.h"

struct report_options {
        bool color;                     /* ANSI colours (a terminal only) */
        bool source;                    /* print source lines under Python frames */
        const char *source_root;        /* read them only under this root (--source-root), or NULL */
        const char *text;               /* JSON only: the text report, embedded as "text" (or NULL) */
};

/* Return 0, -EIO when writing failed, or -ENOMEM when an allocation failed (the report is
 * incomplete: report_json's output is not to be used). */
int report_text(FILE *out, const struct analysis *a, const struct report_options *o);
int report_json(FILE *out, const struct analysis *a, const struct report_options *o);

/* Write s as a JSON string literal, quotes included, escaped by escape.h's rule. */
void fput_json_string(FILE *out, const char *s);
