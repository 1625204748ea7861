/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "utf8.h"

struct range {
        uint32_t first, last;
};

static bool in(const struct range *r, size_t n, uint32_t cp) {
        size_t lo = 0, hi = n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (cp < r[mid].first)
                        hi = mid;
                else if (cp > r[mid].last)
                        lo = mid + 1;
                else
                        return true;
        }
        return false;
}

#define IN(table, cp) in(table, sizeof(table) / sizeof(table[0]), cp)

/* Invisible characters that reorder, hide or break text: printed as escapes. */
static const struct range hidden[] = {
        { 0x0080, 0x009F }, { 0x00AD, 0x00AD }, { 0x061C, 0x061C }, { 0x180E, 0x180E },
        { 0x200B, 0x200F }, { 0x2028, 0x202E }, { 0x2060, 0x206F }, { 0xFEFF, 0xFEFF },
        { 0xFFF9, 0xFFFB }, { 0xE0000, 0xE007F },
};

/* Two columns: East Asian wide and fullwidth, and the emoji blocks terminals draw wide. */
static const struct range wide[] = {
        { 0x1100, 0x115F }, { 0x231A, 0x231B }, { 0x2329, 0x232A }, { 0x23E9, 0x23EC },
        { 0x23F0, 0x23F0 }, { 0x23F3, 0x23F3 }, { 0x25FD, 0x25FE }, { 0x2614, 0x2615 },
        { 0x2648, 0x2653 }, { 0x267F, 0x267F }, { 0x2693, 0x2693 }, { 0x26A1, 0x26A1 },
        { 0x26AA, 0x26AB }, { 0x26BD, 0x26BE }, { 0x26C4, 0x26C5 }, { 0x26CE, 0x26CE },
        { 0x26D4, 0x26D4 }, { 0x26EA, 0x26EA }, { 0x26F2, 0x26F3 }, { 0x26F5, 0x26F5 },
        { 0x26FA, 0x26FA }, { 0x26FD, 0x26FD }, { 0x2705, 0x2705 }, { 0x270A, 0x270B },
        { 0x2728, 0x2728 }, { 0x274C, 0x274C }, { 0x274E, 0x274E }, { 0x2753, 0x2755 },
        { 0x2757, 0x2757 }, { 0x2795, 0x2797 }, { 0x27B0, 0x27B0 }, { 0x27BF, 0x27BF },
        { 0x2B1B, 0x2B1C }, { 0x2B50, 0x2B50 }, { 0x2B55, 0x2B55 }, { 0x2E80, 0x303E },
        { 0x3041, 0x33FF }, { 0x3400, 0x4DBF }, { 0x4E00, 0x9FFF }, { 0xA000, 0xA4CF },
        { 0xA960, 0xA97F }, { 0xAC00, 0xD7A3 }, { 0xF900, 0xFAFF }, { 0xFE10, 0xFE19 },
        { 0xFE30, 0xFE6F }, { 0xFF00, 0xFF60 }, { 0xFFE0, 0xFFE6 }, { 0x16FE0, 0x16FE4 },
        { 0x17000, 0x18CFF }, { 0x1B000, 0x1B2FF }, { 0x1F004, 0x1F004 }, { 0x1F0CF, 0x1F0CF },
        { 0x1F18E, 0x1F18E }, { 0x1F191, 0x1F19A }, { 0x1F200, 0x1F202 }, { 0x1F210, 0x1F23B },
        { 0x1F240, 0x1F248 }, { 0x1F250, 0x1F251 }, { 0x1F260, 0x1F265 }, { 0x1F300, 0x1F64F },
        { 0x1F680, 0x1F6FF }, { 0x1F7E0, 0x1F7EB }, { 0x1F90C, 0x1F9FF }, { 0x1FA70, 0x1FAFF },
        { 0x20000, 0x2FFFD }, { 0x30000, 0x3FFFD },
};

/* No column: combining marks (the common blocks), Hangul medial vowels, variation selectors. */
static const struct range zero[] = {
        { 0x0300, 0x036F }, { 0x0483, 0x0489 }, { 0x0591, 0x05BD }, { 0x05BF, 0x05BF },
        { 0x05C1, 0x05C2 }, { 0x05C4, 0x05C5 }, { 0x05C7, 0x05C7 }, { 0x0610, 0x061A },
        { 0x064B, 0x065F }, { 0x0670, 0x0670 }, { 0x06D6, 0x06DC }, { 0x06DF, 0x06E4 },
        { 0x06E7, 0x06E8 }, { 0x06EA, 0x06ED }, { 0x0711, 0x0711 }, { 0x0730, 0x074A },
        { 0x0900, 0x0902 }, { 0x093A, 0x093A }, { 0x093C, 0x093C }, { 0x0941, 0x0948 },
        { 0x094D, 0x094D }, { 0x0951, 0x0957 }, { 0x0962, 0x0963 }, { 0x0E31, 0x0E31 },
        { 0x0E34, 0x0E3A }, { 0x0E47, 0x0E4E }, { 0x1160, 0x11FF }, { 0x1AB0, 0x1AFF },
        { 0x1DC0, 0x1DFF }, { 0x20D0, 0x20FF }, { 0x302A, 0x302D }, { 0x3099, 0x309A },
        { 0xFE00, 0xFE0F }, { 0xFE20, 0xFE2F }, { 0xE0100, 0xE01EF },
};

/* A byte kept by surrogateescape, written as UTF-8 (ED B2 80 .. ED B3 BF): the byte, or -1. */
static int escaped_byte(const uint8_t *s, size_t n) {
        if (n >= 3 && s[0] == 0xED && (s[1] == 0xB2 || s[1] == 0xB3) && (s[2] & 0xC0) == 0x80)
                return 0x80 | (s[1] & 0x01) << 6 | (s[2] & 0x3F);
        return -1;
}

static uint32_t decode(const uint8_t *s, size_t len) {
        static const uint8_t lead_mask[] = { 0, 0x7F, 0x1F, 0x0F, 0x07 };
        uint32_t cp = s[0] & lead_mask[len];

        for (size_t i = 1; i < len; i++)
                cp = (cp << 6) | (s[i] & 0x3F);
        return cp;
}

__attribute__((format(printf, 2, 3)))
static void put_escape(struct esc_piece *p, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        p->len = (size_t)vsnprintf(p->buf, sizeof(p->buf), fmt, ap);
        va_end(ap);
        p->text = p->buf;
        p->width = (unsigned)p->len;
}

/* \n \t \r, or NULL */
static const char *short_escape(uint32_t cp) {
        return cp == '\n' ? "\\n" : cp == '\t' ? "\\t" : cp == '\r' ? "\\r" : NULL;
}

static void terminal_piece(const uint8_t *u, size_t len, uint32_t cp, struct esc_piece *p) {
        if (short_escape(cp))
                put_escape(p, "%s", short_escape(cp));
        else if (cp < 0x20 || cp == 0x7F)
                put_escape(p, "\\x%02x", (unsigned)cp);
        else if (IN(hidden, cp) && cp > 0xFFFF)
                put_escape(p, "\\U%08x", (unsigned)cp);
        else if (IN(hidden, cp))
                put_escape(p, "\\u%04x", (unsigned)cp);
        else {
                p->text = (const char *)u;
                p->len = len;
                p->width = IN(wide, cp) ? 2 : IN(zero, cp) ? 0 : 1;
        }
}

static void json_piece(const uint8_t *u, size_t len, uint32_t cp, struct esc_piece *p) {
        if (cp == '"' || cp == '\\')
                put_escape(p, "\\%c", (char)cp);
        else if (short_escape(cp))
                put_escape(p, "%s", short_escape(cp));
        else if (cp < 0x20 || cp == 0x7F || (cp <= 0xFFFF && IN(hidden, cp)))
                put_escape(p, "\\u%04x", (unsigned)cp);
        else if (IN(hidden, cp))        /* a tag character: as a surrogate pair */
                put_escape(p, "\\u%04x\\u%04x", 0xD800 + ((cp - 0x10000) >> 10), 0xDC00 + ((cp - 0x10000) & 0x3FF));
        else {
                p->text = (const char *)u;
                p->len = len;
                p->width = 1;
        }
}

void esc_next(const char *s, size_t n, enum esc_mode mode, struct esc_piece *p) {
        const uint8_t *u = (const uint8_t *)s;
        size_t len = utf8_valid_len(u, n);
        int byte;

        if (len == 0) {
                byte = escaped_byte(u, n);
                p->consumed = byte < 0 ? 1 : 3;
                if (byte < 0)
                        byte = u[0];
                put_escape(p, mode == ESC_JSON ? "\\udc%02x" : "\\x%02x", (unsigned)byte);
                return;
        }
        p->consumed = len;
        if (mode == ESC_JSON)
                json_piece(u, len, decode(u, len), p);
        else
                terminal_piece(u, len, decode(u, len), p);
}

size_t esc_fputs(FILE *out, const char *s) {
        struct esc_piece p;
        size_t n, width = 0;

        if (!s)
                return 0;
        n = strlen(s);
        for (size_t i = 0; i < n; i += p.consumed) {
                /* a run of printable ASCII goes out as it is, in one write */
                size_t run = 0;
                while (i + run < n && s[i + run] >= 0x20 && s[i + run] < 0x7f)
                        run++;
                if (run) {
                        fwrite(s + i, 1, run, out);
                        width += run;
                        p.consumed = run;
                        continue;
                }
                esc_next(s + i, n - i, ESC_TERMINAL, &p);
                fwrite(p.text, 1, p.len, out);
                width += p.width;
        }
        return width;
}

size_t esc_width(const char *s) {
        struct esc_piece p;
        size_t n = s ? strlen(s) : 0, width = 0;

        for (size_t i = 0; i < n; i += p.consumed) {
                /* printable ASCII: one column a byte */
                if ((unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f) {
                        width++;
                        p.consumed = 1;
                        continue;
                }
                esc_next(s + i, n - i, ESC_TERMINAL, &p);
                width += p.width;
        }
        return width;
}

void esc_fput_column(FILE *out, const char *s, size_t width) {
        struct esc_piece p;
        size_t n = s ? strlen(s) : 0, used = 0;

        if (esc_width(s) <= width) {
                used = esc_fputs(out, s);
        } else if (width > 0) {
                /* room for the ellipsis, one column */
                for (size_t i = 0; i < n; i += p.consumed) {
                        esc_next(s + i, n - i, ESC_TERMINAL, &p);
                        if (used + p.width > width - 1)
                                break;
                        fwrite(p.text, 1, p.len, out);
                        used += p.width;
                }
                fputs("…", out);
                used++;
        }
        for (; used < width; used++)
                fputc(' ', out);
}

void esc_fput_json(FILE *out, const char *s, size_t n) {
        struct esc_piece p;

        if (!s) {
                fputs("null", out);
                return;
        }
        fputc('"', out);
        for (size_t i = 0; i < n; i += p.consumed) {
                size_t run = 0;
                while (i + run < n && s[i + run] >= 0x20 && s[i + run] < 0x7f && s[i + run] != '"' &&
                       s[i + run] != '\\')
                        run++;
                if (run) {
                        fwrite(s + i, 1, run, out);
                        p.consumed = run;
                        continue;
                }
                esc_next(s + i, n - i, ESC_JSON, &p);
                fwrite(p.text, 1, p.len, out);
        }
        fputc('"', out);
}

void esc_fput_json_document(FILE *out, const char *s) {
        struct esc_piece p;
        size_t n = strlen(s);

        for (size_t i = 0; i < n; i += p.consumed) {
                if ((unsigned char)s[i] < 0x80) {
                        fputc(s[i], out);
                        p.consumed = 1;
                        continue;
                }
                esc_next(s + i, n - i, ESC_JSON, &p);
                fwrite(p.text, 1, p.len, out);
        }
}

size_t esc_snprint(char *dst, size_t size, const char *s) {
        struct esc_piece p;
        size_t n = s ? strlen(s) : 0, o = 0;

        for (size_t i = 0; i < n; i += p.consumed) {
                esc_next(s + i, n - i, ESC_TERMINAL, &p);
                if (o + p.len >= size)
                        break;
                memcpy(dst + o, p.text, p.len);
                o += p.len;
        }
        dst[o] = 0;
        return o;
}

char *esc_strdup(const char *s) {
        struct esc_piece p;
        size_t n = strlen(s), need = 1;
        char *out;

        for (size_t i = 0; i < n; i += p.consumed) {
                esc_next(s + i, n - i, ESC_TERMINAL, &p);
                need += p.len;
        }
        out = malloc(need);
        if (out)
                esc_snprint(out, need, s);
        return out;
}

size_t esc_vfprintf(FILE *out, const char *fmt, va_list ap) {
        char *raw = NULL;
        size_t width;

        if (vasprintf(&raw, fmt, ap) < 0)
                return esc_fputs(out, "(out of memory)");
        width = esc_fputs(out, raw);
        free(raw);
        return width;
}

size_t esc_fprintf(FILE *out, const char *fmt, ...) {
        va_list ap;
        size_t width;

        va_start(ap, fmt);
        width = esc_vfprintf(out, fmt, ap);
        va_end(ap);
        return width;
}
