/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * escape: the one rule by which text that a crashed process chose — names,
 * paths, arguments, thread names, values — is printed, wherever it is
 * printed: pystack's reports and errors, pystackctl's tables, details,
 * errors and pager, the daemons' log lines, the journal's MESSAGE.  Stored
 * data stays byte-exact; only printing escapes.
 *
 * For a terminal (ESC_TERMINAL) valid UTF-8 passes through, except:
 *   \n \t \r       LF, TAB and CR;
 *   \xNN           the other C0 controls and DEL, every byte that is not part
 *                  of valid UTF-8, and U+DC80..U+DCFF written as UTF-8 (how
 *                  Python's surrogateescape, and SQLite reading JSON's
 *                  "\udcNN", keep a byte that was not UTF-8): a byte shows
 *                  as \xNN whichever way it reached us;
 *   \uXXXX         C1 controls (U+0080..U+009F, which many terminals obey as
 *                  ESC sequences) and invisible format characters that reorder
 *                  or hide text: U+00AD, U+061C, U+180E, U+200B..U+200F,
 *                  U+2028..U+202E, U+2060..U+206F, U+FEFF, U+FFF9..U+FFFB;
 *   \UXXXXXXXX     the tag characters U+E0000..U+E007F.
 * A backslash is printed as itself: escaped output never holds a control
 * character, so a backslash can only mislead a reader, not the terminal.
 *
 * For JSON (ESC_JSON) the output is a JSON string body: " and \ escaped, C0,
 * DEL, C1 and the same format characters as \u00XX, and every byte that is
 * not valid UTF-8 as \udcNN (Python's surrogateescape: json.loads() and then
 * .encode('utf-8', 'surrogateescape') give back the original bytes).
 *
 * Display width (terminal mode): an escape takes its length in columns, a
 * wide character (East Asian wide and fullwidth, emoji) two, a combining mark
 * none, everything else one.  The table is compact and fixed, not the
 * locale's, so pystackctl's columns line up the same everywhere.
 *
 * Nothing here allocates except esc_strdup(); every function is O(n).
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

enum esc_mode { ESC_TERMINAL, ESC_JSON };

/* One input character (or byte) and what to print for it. */
struct esc_piece {
        const char *text;       /* the bytes to print: the input itself or buf */
        size_t len;             /* bytes of text */
        size_t consumed;        /* input bytes it stands for, >= 1 */
        unsigned width;         /* terminal columns text takes */
        char buf[16];
};

/* The piece at s, of n > 0 bytes of input. */
void esc_next(const char *s, size_t n, enum esc_mode mode, struct esc_piece *p);

/* s (NUL-terminated; NULL prints nothing) printed for a terminal: the columns it took. */
size_t esc_fputs(FILE *out, const char *s);

/* The columns s takes once escaped. */
size_t esc_width(const char *s);

/*
 * s escaped in exactly `width` columns: padded with spaces when shorter; when
 * longer, cut before the piece that does not fit and ended with "…" (a piece
 * or a wide character is never split).
 */
void esc_fput_column(FILE *out, const char *s, size_t width);

/* s (n bytes) as a quoted JSON string; NULL prints null. */
void esc_fput_json(FILE *out, const char *s, size_t n);

/*
 * A whole JSON document s printed again by the JSON rule: its ASCII as it is,
 * everything else escaped.  Raw C1, format characters and stray bytes can
 * stand only inside its strings, so escaping them there keeps it the same
 * document (one written before this rule, or by another program).
 */
void esc_fput_json_document(FILE *out, const char *s);

/*
 * s escaped for a terminal into dst (size > 0 bytes), always NUL-terminated,
 * cut before a piece that does not fit: the bytes written, without the NUL.
 */
size_t esc_snprint(char *dst, size_t size, const char *s);

/* s escaped for a terminal in a new string, or NULL when out of memory. */
char *esc_strdup(const char *s);

/*
 * printf to a terminal or a log, the whole result escaped: for messages whose
 * format is ours and whose arguments may be anyone's.  Returns the columns.
 */
__attribute__((format(printf, 2, 0)))
size_t esc_vfprintf(FILE *out, const char *fmt, va_list ap);
__attribute__((format(printf, 2, 3)))
size_t esc_fprintf(FILE *out, const char *fmt, ...);
