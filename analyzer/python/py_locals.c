/* SPDX-License-Identifier: MIT */
/*
 * py_locals: every Python frame's arguments and local variables, with their
 * values rendered like repr() (see py_locals.h for the format).
 *
 * Names come from the code object: co_varnames/co_cellvars/co_freevars up to
 * 3.10, co_localsplusnames/co_localspluskinds from 3.11.  Values come from
 * the frame's fast slots (f_localsplus, _PyInterpreterFrame.localsplus).
 * Everything read from the core is hostile: counts are bounded by the
 * limits and by TARGET_MAX_READ, containers are checked for cycles, and
 * what cannot be read is shown as <unreadable object at 0x...>.
 */
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "analysis.h"
#include "py_frame.h"
#include "py_locals.h"
#include "py_object.h"
#include "utf8.h"

/* ---- bounded output buffer ---- */

void repr_buf_init(struct repr_buf *b, size_t max) {
        *b = (struct repr_buf){ .max = max < 3 ? 3 : max };
}

void repr_buf_put(struct repr_buf *b, const char *s, size_t n) {
        /* keep a few bytes past max, so that finish() knows it must cut */
        size_t room, want;

        if (b->full || b->oom)
                return;
        room = b->max + 4 - b->len;
        if (n > room) {
                n = room;
                b->full = true;
        }
        want = b->len + n + 1;
        if (want > b->cap) {
                size_t cap = b->cap ? b->cap : 64;
                char *p;

                while (cap < want)
                        cap *= 2;
                p = realloc(b->p, cap);
                if (!p) {
                        b->oom = true;
                        return;
                }
                b->p = p;
                b->cap = cap;
        }
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = 0;
        if (b->len > b->max)
                b->full = true;
}

void repr_buf_puts(struct repr_buf *b, const char *s) {
        repr_buf_put(b, s, strlen(s));
}

void repr_buf_printf(struct repr_buf *b, const char *fmt, ...) {
        char tmp[256];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
        va_end(ap);
        if (n > 0)
                repr_buf_put(b, tmp, MIN((size_t)n, sizeof(tmp) - 1));
}

void repr_buf_truncate(struct repr_buf *b, size_t len) {
        if (len >= b->len)
                return;
        b->len = len;
        if (b->p)
                b->p[len] = 0;
        b->full = b->len > b->max;
}

char *repr_buf_finish(struct repr_buf *b) {
        char *out;

        if (b->oom) {
                repr_buf_free(b);
                return NULL;
        }
        if (b->len > b->max) {
                /* cut on a character boundary, leaving room for "..." */
                size_t cut = b->max - 3;

                while (cut > 0 && ((unsigned char)b->p[cut] & 0xC0) == 0x80)
                        cut--;
                memcpy(b->p + cut, "...", 4);
                b->len = cut + 3;
        }
        out = b->p ? b->p : strdup("");
        *b = (struct repr_buf){ .max = b->max };
        return out;
}

void repr_buf_free(struct repr_buf *b) {
        free(b->p);
        *b = (struct repr_buf){ .max = b->max };
}

/* ---- pure formatting ---- */

int py_repr_float(double v, char *out, size_t size) {
        char tmp[48], digits[24];
        size_t nd = 0, pos = 0;
        int exp, prec;
        bool neg;
        const char *p;

        if (size < 32)
                return -EINVAL;
        if (isnan(v)) {
                strcpy(out, "nan");
                return 0;
        }
        if (isinf(v)) {
                strcpy(out, v < 0 ? "-inf" : "inf");
                return 0;
        }
        if (v == 0) {
                strcpy(out, signbit(v) ? "-0.0" : "0.0");
                return 0;
        }
        /* The shortest precision that reads back as the same double; the
         * correctly rounded digits at that precision are the ones Python's
         * dtoa picks (the nearest of the shortest). */
        for (prec = 1; prec <= 17; prec++) {
                snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
                if (strtod(tmp, NULL) == v)
                        break;
        }
        p = tmp;
        neg = *p == '-';
        if (neg)
                p++;
        /* digits up to the exponent; whatever separates them is the locale's point */
        for (; *p && *p != 'e' && *p != 'E'; p++)
                if (*p >= '0' && *p <= '9' && nd < sizeof(digits) - 1)
                        digits[nd++] = *p;
        if (!*p || nd == 0)
                return -EINVAL;
        exp = atoi(p + 1);
        while (nd > 1 && digits[nd - 1] == '0')
                nd--;
        digits[nd] = 0;

        if (neg)
                out[pos++] = '-';
        if (exp >= -4 && exp < 16) {
                if (exp >= 0) {
                        for (int i = 0; i <= exp; i++)
                                out[pos++] = (size_t)i < nd ? digits[i] : '0';
                        out[pos++] = '.';
                        if ((size_t)exp + 1 < nd)
                                for (size_t i = exp + 1; i < nd; i++)
                                        out[pos++] = digits[i];
                        else
                                out[pos++] = '0';
                } else {
                        out[pos++] = '0';
                        out[pos++] = '.';
                        for (int i = 0; i < -exp - 1; i++)
                                out[pos++] = '0';
                        for (size_t i = 0; i < nd; i++)
                                out[pos++] = digits[i];
                }
                out[pos] = 0;
        } else {
                out[pos++] = digits[0];
                if (nd > 1) {
                        out[pos++] = '.';
                        for (size_t i = 1; i < nd; i++)
                                out[pos++] = digits[i];
                }
                snprintf(out + pos, size - pos, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
        }
        return 0;
}

char *py_long_to_decimal(const uint32_t *digits, size_t n, unsigned shift, bool negative) {
        const uint32_t base = 1000000000u;      /* 10^9 per output word, as CPython does */
        _cleanup_free_ uint32_t *out = NULL;
        size_t nout = 0, len;
        uint32_t mask;
        char *text, *p;

        if (shift == 0 || shift > 30 || n > SIZE_MAX / 4 - 2)
                return NULL;
        mask = (uint32_t)((1u << shift) - 1);
        while (n > 0 && (digits[n - 1] & mask) == 0)
                n--;
        if (n == 0)
                return strdup("0");
        /* each digit of at most 30 bits adds at most one base-10^9 word */
        out = calloc(n + 2, sizeof(*out));
        if (!out)
                return NULL;
        for (size_t i = n; i-- > 0;) {
                uint64_t hi = digits[i] & mask;

                for (size_t j = 0; j < nout; j++) {
                        uint64_t z = (uint64_t)out[j] << shift | hi;

                        hi = z / base;
                        out[j] = (uint32_t)(z - hi * base);
                }
                while (hi && nout < n + 2) {
                        out[nout++] = (uint32_t)(hi % base);
                        hi /= base;
                }
        }
        len = (negative ? 1 : 0) + 10 + 9 * nout + 1;
        text = p = malloc(len);
        if (!text)
                return NULL;
        if (negative)
                *p++ = '-';
        p += sprintf(p, "%u", out[nout - 1]);
        for (size_t j = nout - 1; j-- > 0;)
                p += sprintf(p, "%09u", out[j]);
        return text;
}

bool py_unicode_printable(uint32_t c) {
        static const struct { uint32_t lo, hi; } not_printable[] = {
                { 0x0000, 0x001F }, { 0x007F, 0x00A0 }, { 0x00AD, 0x00AD },
                { 0x0600, 0x0605 }, { 0x061C, 0x061C }, { 0x06DD, 0x06DD },
                { 0x070F, 0x070F }, { 0x0890, 0x0891 }, { 0x08E2, 0x08E2 },
                { 0x1680, 0x1680 }, { 0x180E, 0x180E }, { 0x2000, 0x200F },
                { 0x2028, 0x202F }, { 0x205F, 0x206F }, { 0x3000, 0x3000 },
                { 0xD800, 0xF8FF }, { 0xFDD0, 0xFDEF }, { 0xFEFF, 0xFEFF },
                { 0xFFF9, 0xFFFB }, { 0xFFFE, 0xFFFF }, { 0x110BD, 0x110BD },
                { 0x110CD, 0x110CD }, { 0x13430, 0x1343F }, { 0x1BCA0, 0x1BCA3 },
                { 0x1D173, 0x1D17A }, { 0xE0000, 0xE0FFF }, { 0xF0000, 0x10FFFF },
        };

        if (c > 0x10FFFF)
                return false;
        if ((c & 0xFFFE) == 0xFFFE)
                return false;           /* U+xFFFE, U+xFFFF: noncharacters of every plane */
        for (size_t i = 0; i < ELEMENTSOF(not_printable); i++)
                if (c >= not_printable[i].lo && c <= not_printable[i].hi)
                        return false;
        return true;
}

void py_repr_string(struct repr_buf *b, const uint32_t *cp, size_t n, bool cut, enum py_str_style style) {
        bool bytes = style == PY_STR_BYTES3 || style == PY_STR_STR27;
        bool squote = false, dquote = false;
        char quote, tmp[16];

        for (size_t i = 0; i < n; i++) {
                squote |= cp[i] == '\'';
                dquote |= cp[i] == '"';
        }
        /* Python's choice: single quotes unless only single quotes occur */
        quote = squote && !dquote ? '"' : '\'';
        if (style == PY_STR_BYTES3)
                repr_buf_put(b, "b", 1);
        else if (style == PY_STR_UNICODE27)
                repr_buf_put(b, "u", 1);
        repr_buf_put(b, &quote, 1);
        for (size_t i = 0; i < n && !b->full; i++) {
                uint32_t c = cp[i];

                if (c == (uint32_t)quote || c == '\\') {
                        tmp[0] = '\\';
                        tmp[1] = (char)c;
                        repr_buf_put(b, tmp, 2);
                } else if (c == '\t')
                        repr_buf_put(b, "\\t", 2);
                else if (c == '\n')
                        repr_buf_put(b, "\\n", 2);
                else if (c == '\r')
                        repr_buf_put(b, "\\r", 2);
                else if (c >= 0x20 && c < 0x7F) {
                        tmp[0] = (char)c;
                        repr_buf_put(b, tmp, 1);
                } else if (c < 0x80 || (bytes && c <= 0xFF))
                        repr_buf_printf(b, "\\x%02x", c);
                else if (style == PY_STR_STR3 && py_unicode_printable(c))
                        repr_buf_put(b, tmp, utf8_put(tmp, c));
                else if (c <= 0xFF)
                        repr_buf_printf(b, "\\x%02x", c);
                else if (c <= 0xFFFF)
                        repr_buf_printf(b, "\\u%04x", c);
                else
                        repr_buf_printf(b, "\\U%08x", c);
        }
        if (cut)
                repr_buf_put(b, "...", 3);
        repr_buf_put(b, &quote, 1);
}

/* ---- objects in the core ---- */

enum obj_kind {
        K_OTHER,
        K_NONE,
        K_BOOL,
        K_INT27,                /* 2.7 int */
        K_LONG,                 /* 3.x int */
        K_LONG27,               /* 2.7 long: repr ends in L */
        K_FLOAT,
        K_STR3,
        K_BYTES3,
        K_STR27,
        K_UNICODE27,
        K_LIST,
        K_TUPLE,
        K_DICT,
        K_SET,
        K_FROZENSET,
        K_CELL,
};

#define TYPE_NAME_MAX 64
#define TYPE_CACHE_SLOTS 512
#define MAX_DEPTH_HARD 32
#define CHUNK 256                       /* pointers or entries read at once */
#define MAX_LONG_DIGITS 8192            /* ~74000 decimal digits: more is not worth converting */
#define MAX_NAMES 65536                 /* variables of one code object */
#define NAME_MAX_BYTES 512

struct type_info {
        uint64_t addr;
        enum obj_kind kind;
        bool valid;
        char name[TYPE_NAME_MAX + 4];
};

struct var_desc {
        char *name;
        uint32_t slot;
        uint32_t cell_slot;             /* <=3.10: an argument that lives in a cell, or UINT32_MAX */
        uint8_t flags;
};

enum {
        VD_ARG = 1,
        VD_DEREF = 2,                   /* a cell or free variable: show the cell's contents */
        VD_HIDDEN = 4,                  /* 3.12+ inlined comprehension variable */
};

struct code_vars {
        uint64_t code;
        char *error;                    /* why the names could not be read, or NULL */
        struct var_desc *vars;
        size_t n;
        size_t nslots;
};

struct locals_ctx {
        struct analysis *a;
        struct target *t;
        const struct py_layout *l;
        const struct locals_options *o;
        size_t max_depth;
        struct type_info types[TYPE_CACHE_SLOTS];
        uint64_t stack[MAX_DEPTH_HARD];  /* containers being rendered: cycles and depth */
        size_t depth;
};

/* tp_name, cut with "..." past TYPE_NAME_MAX bytes */
static void read_type_name(struct locals_ctx *c, uint64_t p, char *name) {
        size_t n = py_read_cstring(c->t, p, name, TYPE_NAME_MAX + 1);

        if (n == TYPE_NAME_MAX)
                strcpy(name + n, "...");
}

static enum obj_kind classify(const struct py_layout *l, const char *name, uint64_t flags) {
        bool py3 = l->major >= 3;
        const struct {
                const char *name;
                bool py2, py3;
                uint32_t flag;
                enum obj_kind kind;
        } known[] = {
                { "NoneType", true, true, 0, K_NONE },
                { "bool", true, false, l->consts.tpf_int, K_BOOL },
                { "bool", false, true, l->consts.tpf_long, K_BOOL },
                { "int", true, false, l->consts.tpf_int, K_INT27 },
                { "int", false, true, l->consts.tpf_long, K_LONG },
                { "long", true, false, l->consts.tpf_long, K_LONG27 },
                { "float", true, true, 0, K_FLOAT },
                { "str", false, true, l->consts.tpf_unicode, K_STR3 },
                { "bytes", false, true, l->consts.tpf_bytes, K_BYTES3 },
                { "str", true, false, l->consts.tpf_bytes, K_STR27 },
                { "unicode", true, false, l->consts.tpf_unicode, K_UNICODE27 },
                { "list", true, true, l->consts.tpf_list, K_LIST },
                { "tuple", true, true, l->consts.tpf_tuple, K_TUPLE },
                { "dict", true, true, l->consts.tpf_dict, K_DICT },
                { "set", true, true, 0, K_SET },
                { "frozenset", true, true, 0, K_FROZENSET },
                { "cell", true, true, 0, K_CELL },
        };

        for (size_t i = 0; i < ELEMENTSOF(known); i++) {
                if ((py3 ? !known[i].py3 : !known[i].py2) || strcmp(name, known[i].name) != 0)
                        continue;
                /* a type that only borrowed the name is not the builtin one */
                if (known[i].flag && !(flags & known[i].flag))
                        return K_OTHER;
                return known[i].kind;
        }
        return K_OTHER;
}

/* The type of obj, cached by type address; NULL when unreadable. */
static const struct type_info *type_of(struct locals_ctx *c, uint64_t obj) {
        const struct py_layout *l = c->l;
        uint64_t type, name_ptr, flags = 0;
        struct type_info *ti;

        if (py_read_ptr(c->t, obj, l->object.ob_type, &type) < 0 || !type)
                return NULL;
        ti = &c->types[(type >> 4) * 0x9E3779B97F4A7C15ULL >> 55 & (TYPE_CACHE_SLOTS - 1)];
        if (ti->addr == type && ti->valid)
                return ti;
        if (py_read_ptr(c->t, type, l->object.tp_name, &name_ptr) < 0 || !name_ptr ||
            py_read_ptr(c->t, type, l->object.tp_flags, &flags) < 0)
                return NULL;
        ti->addr = type;
        ti->valid = true;
        read_type_name(c, name_ptr, ti->name);
        ti->kind = classify(l, ti->name, flags);
        return ti;
}

static void put_unreadable(struct repr_buf *b, uint64_t obj) {
        repr_buf_printf(b, "<unreadable object at 0x%llx>", (unsigned long long)obj);
}

static void put_other(struct repr_buf *b, const char *name, uint64_t obj) {
        repr_buf_printf(b, "<%s at 0x%llx>", name, (unsigned long long)obj);
}

static int render(struct locals_ctx *c, struct repr_buf *b, uint64_t obj);

/* ints: a 3.x int (also bool), a 2.7 long */
static int render_long(struct locals_ctx *c, struct repr_buf *b, uint64_t obj, const char *type_name,
                       bool suffix_l) {
        const struct py_layout *l = c->l;
        _cleanup_free_ uint32_t *digits = NULL;
        _cleanup_free_ char *text = NULL;
        _cleanup_free_ uint8_t *raw = NULL;
        size_t n, dsize = (size_t)l->num.long_digit_size;
        bool negative;

        if (l->num.long_lv_tag != PY_OFF_NONE) {
                uint64_t tag;

                if (py_read_ptr(c->t, obj, l->num.long_lv_tag, &tag) < 0)
                        return -EFAULT;
                /* 3.12+: sign in the low two bits (0 positive, 1 zero, 2 negative), count above bit 3 */
                if ((tag & 3) == 3)
                        return -EBADMSG;
                negative = (tag & 3) == 2;
                n = (tag & 3) == 1 ? 0 : tag >> 3;
        } else {
                int64_t size;

                if (py_read_i64(c->t, obj, l->object.ob_size, &size) < 0)
                        return -EFAULT;
                negative = size < 0;
                n = size < 0 ? (uint64_t)0 - (uint64_t)size : (uint64_t)size;
        }
        if (n > MAX_LONG_DIGITS || (dsize != 2 && dsize != 4)) {
                put_other(b, type_name, obj);
                return 0;
        }
        raw = malloc(n * dsize + 1);
        digits = malloc((n + 1) * sizeof(*digits));
        if (!raw || !digits)
                return -ENOMEM;
        if (n && target_read(c->t, obj + l->num.long_digits, raw, n * dsize) < 0)
                return -EFAULT;
        for (size_t i = 0; i < n; i++) {
                if (dsize == 4)
                        memcpy(&digits[i], raw + 4 * i, 4);
                else {
                        uint16_t d;
                        memcpy(&d, raw + 2 * i, 2);
                        digits[i] = d;
                }
        }
        text = py_long_to_decimal(digits, n, (unsigned)l->num.long_shift, negative);
        if (!text)
                return -ENOMEM;
        repr_buf_puts(b, text);
        if (suffix_l)
                repr_buf_put(b, "L", 1);
        return 0;
}

static int render_bool(struct locals_ctx *c, struct repr_buf *b, uint64_t obj) {
        const struct py_layout *l = c->l;
        bool v;

        if (l->num.int_ival != PY_OFF_NONE) {
                int64_t ival;

                if (py_read_i64(c->t, obj, l->num.int_ival, &ival) < 0)
                        return -EFAULT;
                v = ival != 0;
        } else if (l->num.long_lv_tag != PY_OFF_NONE) {
                uint64_t tag;

                if (py_read_ptr(c->t, obj, l->num.long_lv_tag, &tag) < 0)
                        return -EFAULT;
                v = (tag >> 3) != 0;
        } else {
                int64_t size;

                if (py_read_i64(c->t, obj, l->object.ob_size, &size) < 0)
                        return -EFAULT;
                v = size != 0;
        }
        repr_buf_puts(b, v ? "True" : "False");
        return 0;
}

static int render_string(struct locals_ctx *c, struct repr_buf *b, uint64_t obj, enum obj_kind kind) {
        static const enum py_str_style styles[] = {
                [K_STR3] = PY_STR_STR3, [K_BYTES3] = PY_STR_BYTES3,
                [K_STR27] = PY_STR_STR27, [K_UNICODE27] = PY_STR_UNICODE27,
        };
        _cleanup_free_ uint32_t *cps = NULL;
        size_t n = 0;
        bool cut = false;
        int r;

        r = py_read_chars(c->t, c->l, obj,
                          kind == K_STR3 ? PY_CHARS_STR : kind == K_UNICODE27 ? PY_CHARS_UNICODE27 : PY_CHARS_BYTES,
                          c->o->max_string, &cps, &n, &cut);
        if (r < 0)
                return r;
        py_repr_string(b, cps, n, cut, styles[kind]);
        return 0;
}

/* A separator between items, and the "..." that ends a cut container. */
static bool item_start(struct locals_ctx *c, struct repr_buf *b, size_t i) {
        if (i)
                repr_buf_put(b, ", ", 2);
        if (i >= c->o->max_items) {
                repr_buf_put(b, "...", 3);
                return false;
        }
        return !b->full;
}

/* The items of a list or tuple: n pointers at items. */
static int render_items(struct locals_ctx *c, struct repr_buf *b, uint64_t items, uint64_t n) {
        uint64_t ptrs[CHUNK];

        for (uint64_t i = 0; i < n; i += CHUNK) {
                size_t k = (size_t)MIN((uint64_t)CHUNK, n - i);

                if (target_read(c->t, items + 8 * i, ptrs, 8 * k) < 0)
                        return -EFAULT;
                for (size_t j = 0; j < k; j++) {
                        if (!item_start(c, b, i + j))
                                return 0;
                        render(c, b, ptrs[j]);
                }
        }
        return 0;
}

static int render_seq(struct locals_ctx *c, struct repr_buf *b, uint64_t obj, bool tuple) {
        const struct py_layout *l = c->l;
        int64_t size;
        uint64_t items;
        int r;

        if (py_read_i64(c->t, obj, l->object.ob_size, &size) < 0)
                return -EFAULT;
        if (size < 0 || (uint64_t)size > TARGET_MAX_READ / 8)
                return -EBADMSG;
        if (tuple)
                items = obj + l->seq.tuple_items;
        else if (py_read_ptr(c->t, obj, l->seq.list_items, &items) < 0)
                return -EFAULT;
        else if (!items && size)
                return -EBADMSG;
        repr_buf_put(b, tuple ? "(" : "[", 1);
        r = render_items(c, b, items, (uint64_t)size);
        if (r < 0)
                return r;
        if (tuple && size == 1)
                repr_buf_put(b, ",", 1);
        repr_buf_put(b, tuple ? ")" : "]", 1);
        return 0;
}

/* 3.x marks deleted set slots with a key of type "<dummy key> type", 2.7 with the str "<dummy key>". */
static bool set_dummy(struct locals_ctx *c, uint64_t key) {
        const struct type_info *ti = type_of(c, key);
        char text[12];
        int64_t size;

        if (!ti)
                return false;
        if (strcmp(ti->name, "<dummy key> type") == 0)
                return true;
        if (ti->kind != K_STR27 || py_read_i64(c->t, key, c->l->bytes.ob_size, &size) < 0 || size != 11 ||
            target_read(c->t, key + c->l->bytes.ob_sval, text, 11) < 0)
                return false;
        return memcmp(text, "<dummy key>", 11) == 0;
}

struct pairs {
        struct locals_ctx *c;
        struct repr_buf *b;
        size_t shown;                   /* the pairs (or keys) written */
        bool set;                       /* a set's keys, not a dict's pairs */
};

/* One key: value pair, or a set's key. */
static bool put_pair(void *ctx, uint64_t key, uint64_t value) {
        struct pairs *p = ctx;

        if (p->set && set_dummy(p->c, key))
                return true;
        if (!item_start(p->c, p->b, p->shown))
                return false;
        p->shown++;
        render(p->c, p->b, key);
        if (!p->set) {
                repr_buf_put(p->b, ": ", 2);
                render(p->c, p->b, value);
        }
        return !p->b->full;
}

static int render_dict(struct locals_ctx *c, struct repr_buf *b, uint64_t obj) {
        struct pairs p = { .c = c, .b = b };
        int r;

        repr_buf_put(b, "{", 1);
        r = py_dict_each(c->t, c->l, obj, put_pair, &p);
        if (r < 0)
                return r;
        repr_buf_put(b, "}", 1);
        return 0;
}

static int render_set(struct locals_ctx *c, struct repr_buf *b, uint64_t obj, bool frozen) {
        struct pairs p = { .c = c, .b = b, .set = true };
        int64_t used;
        bool py3 = c->l->major >= 3;
        int r;

        if (py_read_i64(c->t, obj, c->l->set.used, &used) < 0)
                return -EFAULT;
        if (used < 0)
                return -EBADMSG;
        /* 3.x: {1, 2}, frozenset({1, 2}), set(); 2.7: set([1, 2]) */
        if (used == 0) {
                if (py3)
                        repr_buf_puts(b, frozen ? "frozenset()" : "set()");
                else
                        repr_buf_puts(b, frozen ? "frozenset([])" : "set([])");
                return 0;
        }
        if (frozen)
                repr_buf_puts(b, py3 ? "frozenset({" : "frozenset([");
        else
                repr_buf_puts(b, py3 ? "{" : "set([");
        r = py_set_each(c->t, c->l, obj, put_pair, &p);
        if (r < 0)
                return r;
        if (b->full)
                return 0;
        if (frozen || !py3)
                repr_buf_puts(b, py3 ? "})" : "])");
        else
                repr_buf_put(b, "}", 1);
        return 0;
}

/* How Python prints a container it is already printing (or one we will not descend into). */
static void put_recursive(struct repr_buf *b, enum obj_kind kind, bool py3) {
        switch (kind) {
        case K_LIST:
                repr_buf_puts(b, "[...]");
                break;
        case K_TUPLE:
                repr_buf_puts(b, "(...)");
                break;
        case K_DICT:
                repr_buf_puts(b, "{...}");
                break;
        case K_SET:
                repr_buf_puts(b, "set(...)");
                break;
        default:
                repr_buf_puts(b, "frozenset(...)");
                break;
        }
        (void)py3;
}

static int render(struct locals_ctx *c, struct repr_buf *b, uint64_t obj) {
        const struct type_info *ti;
        size_t start = b->len;
        int r = 0;

        if (b->full)
                return 0;
        if (!obj) {
                repr_buf_puts(b, "<invalid object at 0x0>");
                return 0;
        }
        ti = type_of(c, obj);
        if (!ti) {
                put_unreadable(b, obj);
                return 0;
        }
        switch (ti->kind) {
        case K_NONE:
                repr_buf_puts(b, "None");
                break;
        case K_BOOL:
                r = render_bool(c, b, obj);
                break;
        case K_INT27: {
                int64_t v;

                r = py_read_i64(c->t, obj, c->l->num.int_ival, &v);
                if (r == 0)
                        repr_buf_printf(b, "%lld", (long long)v);
                break;
        }
        case K_LONG:
        case K_LONG27:
                r = render_long(c, b, obj, ti->name, ti->kind == K_LONG27);
                break;
        case K_FLOAT: {
                double v;
                char text[48];

                r = target_read(c->t, obj + c->l->num.float_fval, &v, sizeof(v));
                if (r == 0 && py_repr_float(v, text, sizeof(text)) == 0)
                        repr_buf_puts(b, text);
                break;
        }
        case K_STR3:
        case K_BYTES3:
        case K_STR27:
        case K_UNICODE27:
                r = render_string(c, b, obj, ti->kind);
                break;
        case K_LIST:
        case K_TUPLE:
        case K_DICT:
        case K_SET:
        case K_FROZENSET: {
                bool seen = false;

                for (size_t i = 0; i < c->depth; i++)
                        seen |= c->stack[i] == obj;
                if (seen || c->depth >= c->max_depth) {
                        put_recursive(b, ti->kind, c->l->major >= 3);
                        break;
                }
                c->stack[c->depth++] = obj;
                if (ti->kind == K_LIST || ti->kind == K_TUPLE)
                        r = render_seq(c, b, obj, ti->kind == K_TUPLE);
                else if (ti->kind == K_DICT)
                        r = render_dict(c, b, obj);
                else
                        r = render_set(c, b, obj, ti->kind == K_FROZENSET);
                c->depth--;
                break;
        }
        default:
                put_other(b, ti->name, obj);
                break;
        }
        if (r == -ENOMEM) {
                b->oom = true;
                return r;
        }
        if (r < 0) {
                /* partly written: replace what was written by one marker */
                repr_buf_truncate(b, start);
                put_unreadable(b, obj);
        }
        return 0;
}

/* The contents of a cell object, or the value itself when it is not a cell. */
static uint64_t deref(struct locals_ctx *c, uint64_t value, bool *unbound) {
        const struct type_info *ti;
        uint64_t inner;

        *unbound = false;
        if (!value)
                return 0;
        ti = type_of(c, value);
        if (!ti || ti->kind != K_CELL)
                return value;
        if (py_read_ptr(c->t, value, c->l->num.cell_ref, &inner) < 0)
                return value;   /* shown as the cell it is */
        *unbound = inner == 0;
        return inner;
}

/* ---- variable names per code object ---- */

void code_vars_free(struct code_vars *cv) {
        if (!cv)
                return;
        for (size_t i = 0; i < cv->n; i++)
                free(cv->vars[i].name);
        free(cv->vars);
        free(cv->error);
        free(cv);
}

/* The names of a tuple of str: 0 and *ret (n entries), or -errno. */
static int read_names(struct locals_ctx *c, uint64_t tuple, size_t *n, char ***ret) {
        const struct py_layout *l = c->l;
        int64_t size;
        _cleanup_free_ uint64_t *items = NULL;
        char **names;

        if (!tuple)
                return -EBADMSG;
        if (py_read_i64(c->t, tuple, l->object.ob_size, &size) < 0)
                return -EFAULT;
        if (size < 0 || size > MAX_NAMES)
                return -EBADMSG;
        items = malloc(8 * (size_t)size + 8);
        names = calloc((size_t)size + 1, sizeof(*names));
        if (!items || !names) {
                free(names);
                return -ENOMEM;
        }
        if (size && target_read(c->t, tuple + l->seq.tuple_items, items, 8 * (size_t)size) < 0) {
                free(names);
                return -EFAULT;
        }
        for (size_t i = 0; i < (size_t)size; i++) {
                if (py_read_text(c->t, l, items[i], NAME_MAX_BYTES, &names[i]) < 0 &&
                    asprintf(&names[i], "<unreadable name at 0x%llx>", (unsigned long long)items[i]) < 0)
                        names[i] = NULL;
                if (!names[i]) {
                        for (size_t k = 0; k < i; k++)
                                free(names[k]);
                        free(names);
                        return -ENOMEM;
                }
        }
        *n = (size_t)size;
        *ret = names;
        return 0;
}

static void free_names(char **names, size_t n) {
        if (!names)
                return;
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
}

#define cv_fail(cv, fmt, ...) ({                                                 \
                if (asprintf(&(cv)->error, fmt, __VA_ARGS__) < 0)               \
                        (cv)->error = NULL;                                     \
                -EBADMSG;                                                       \
        })

/* Argument count from the code object: positional (with positional-only), keyword-only, *args, **kwargs. */
static int read_arg_count(struct locals_ctx *c, uint64_t code, size_t *nargs, int32_t *flags_out) {
        const struct py_layout *l = c->l;
        int32_t argcount, kwonly = 0, flags;

        if (py_read_i32(c->t, code, l->code.argcount, &argcount) < 0 ||
            py_read_i32(c->t, code, l->code.flags, &flags) < 0 ||
            (l->code.kwonlyargcount != PY_OFF_NONE && py_read_i32(c->t, code, l->code.kwonlyargcount, &kwonly) < 0))
                return -EFAULT;
        if (argcount < 0 || kwonly < 0 || argcount > MAX_NAMES || kwonly > MAX_NAMES)
                return -EBADMSG;
        *nargs = (size_t)argcount + (size_t)kwonly + !!(flags & l->consts.co_varargs) +
                 !!(flags & l->consts.co_varkeywords);
        *flags_out = flags;
        return 0;
}

static int add_var(struct code_vars *cv, size_t *allocated, char *name, uint32_t slot, uint32_t cell_slot,
                   uint8_t flags) {
        if (grow_array(&cv->vars, allocated, cv->n + 1, sizeof(*cv->vars)) < 0) {
                free(name);
                return -ENOMEM;
        }
        cv->vars[cv->n++] = (struct var_desc){ name, slot, cell_slot, flags };
        return 0;
}

/* <=3.10: varnames (arguments first), then cellvars, then freevars; slots follow the same order. */
static int decode_names_objects(struct locals_ctx *c, struct code_vars *cv) {
        const struct py_layout *l = c->l;
        uint64_t code = cv->code, varnames, cellvars, freevars;
        char **vn = NULL, **cn = NULL, **fn = NULL;
        size_t nv = 0, nc = 0, nf = 0, nargs, allocated = 0;
        int32_t nlocals, flags;
        _cleanup_free_ bool *merged = NULL;
        int r;

        r = read_arg_count(c, code, &nargs, &flags);
        if (r < 0)
                return cv_fail(cv, "unreadable code object at 0x%llx", (unsigned long long)code);
        if (py_read_i32(c->t, code, l->code.nlocals, &nlocals) < 0 ||
            py_read_ptr(c->t, code, l->code.varnames, &varnames) < 0 ||
            py_read_ptr(c->t, code, l->code.cellvars, &cellvars) < 0 ||
            py_read_ptr(c->t, code, l->code.freevars, &freevars) < 0)
                return cv_fail(cv, "unreadable code object at 0x%llx", (unsigned long long)code);
        if ((r = read_names(c, varnames, &nv, &vn)) < 0 ||
            (r = read_names(c, cellvars, &nc, &cn)) < 0 ||
            (r = read_names(c, freevars, &nf, &fn)) < 0) {
                free_names(vn, nv);
                free_names(cn, nc);
                if (r == -ENOMEM)
                        return r;
                return cv_fail(cv, "unreadable variable names of code object 0x%llx", (unsigned long long)code);
        }
        /* the frame's cells start at co_nlocals, which is len(co_varnames) */
        if (nlocals < 0 || (size_t)nlocals != nv || nargs > nv) {
                free_names(vn, nv);
                free_names(cn, nc);
                free_names(fn, nf);
                return cv_fail(cv, "implausible variable counts in code object 0x%llx", (unsigned long long)code);
        }
        merged = calloc(nc + 1, sizeof(*merged));
        if (!merged) {
                r = -ENOMEM;
                goto out;
        }
        cv->nslots = nv + nc + nf;
        for (size_t i = 0; i < nv; i++) {
                uint32_t cell_slot = UINT32_MAX;

                /* An argument captured by a closure lives in a cell: 3.x clears its
                 * own slot, 2.7 leaves a stale copy there; the cell is the truth. */
                for (size_t k = 0; i < nargs && k < nc; k++)
                        if (!merged[k] && strcmp(vn[i], cn[k]) == 0) {
                                merged[k] = true;
                                cell_slot = (uint32_t)(nv + k);
                                break;
                        }
                r = add_var(cv, &allocated, TAKE_PTR(vn[i]), (uint32_t)i, cell_slot, i < nargs ? VD_ARG : 0);
                if (r < 0)
                        goto out;
        }
        for (size_t k = 0; k < nc; k++) {
                if (merged[k])
                        continue;
                r = add_var(cv, &allocated, TAKE_PTR(cn[k]), (uint32_t)(nv + k), UINT32_MAX, VD_DEREF);
                if (r < 0)
                        goto out;
        }
        for (size_t k = 0; k < nf; k++) {
                r = add_var(cv, &allocated, TAKE_PTR(fn[k]), (uint32_t)(nv + nc + k), UINT32_MAX, VD_DEREF);
                if (r < 0)
                        goto out;
        }
        r = 0;
out:
        free_names(vn, nv);
        free_names(cn, nc);
        free_names(fn, nf);
        return r;
}

/* 3.11+: co_localsplusnames with a kind byte each; arguments come first. */
static int decode_names_localsplus(struct locals_ctx *c, struct code_vars *cv) {
        const struct py_layout *l = c->l;
        uint64_t code = cv->code, names_obj, kinds_obj;
        char **names = NULL;
        _cleanup_free_ uint8_t *kinds = NULL;
        size_t n = 0, nkinds = 0, nargs, allocated = 0;
        int32_t flags;
        int r;

        r = read_arg_count(c, code, &nargs, &flags);
        if (r < 0 || py_read_ptr(c->t, code, l->code.localsplusnames, &names_obj) < 0 ||
            py_read_ptr(c->t, code, l->code.localspluskinds, &kinds_obj) < 0)
                return cv_fail(cv, "unreadable code object at 0x%llx", (unsigned long long)code);
        r = read_names(c, names_obj, &n, &names);
        if (r == -ENOMEM)
                return r;
        if (r == 0)
                r = py_read_bytes(c->t, l, kinds_obj, MAX_NAMES, &kinds, &nkinds);
        if (r == -ENOMEM) {
                free_names(names, n);
                return r;
        }
        if (r < 0 || nkinds != n || nargs > n) {
                free_names(names, n);
                return cv_fail(cv, "unreadable variable names of code object 0x%llx", (unsigned long long)code);
        }
        cv->nslots = n;
        for (size_t i = 0; i < n; i++) {
                uint8_t k = kinds[i], vf = 0;

                if (i < nargs)
                        vf |= VD_ARG;
                if (k & (l->consts.fast_cell | l->consts.fast_free))
                        vf |= VD_DEREF;
                if (k & l->consts.fast_hidden)
                        vf |= VD_HIDDEN;
                /* an unoptimized frame (class body) does not show its free variables (__class__) */
                if ((k & l->consts.fast_free) && !(flags & l->consts.co_optimized)) {
                        free(names[i]);
                        names[i] = NULL;
                        continue;
                }
                r = add_var(cv, &allocated, TAKE_PTR(names[i]), (uint32_t)i, UINT32_MAX, vf);
                if (r < 0) {
                        free_names(names, n);
                        return r;
                }
        }
        free_names(names, n);
        return 0;
}

/* The variable names of a code object, decoded once per core into its entry of the code cache. */
static struct code_vars *code_vars(struct locals_ctx *c, uint64_t code) {
        struct code_info *ci = py_code_info(c->a, code);
        struct code_vars *cv;
        int r;

        if (!ci)
                return NULL;
        if (ci->vars)
                return ci->vars;
        cv = calloc(1, sizeof(*cv));
        if (!cv)
                return NULL;
        cv->code = code;
        if (c->l->frame_kind == PY_FRAMES_OBJECTS)
                r = decode_names_objects(c, cv);
        else
                r = decode_names_localsplus(c, cv);
        if (r == -ENOMEM || (r < 0 && !cv->error)) {
                code_vars_free(cv);
                return NULL;
        }
        ci->vars = cv;
        return cv;
}

/* ---- frames ---- */

/* A fast slot as 3.14+ keep it (_PyStackRef): bits 1 is NULL, (bits & 3) == 3 an int kept in the
 * reference itself, anything else the object at bits & ~1. */
#define STACKREF_NULL 1
#define STACKREF_IS_INT(bits) (((bits) & 3) == 3)

static uint64_t untag(const struct py_layout *l, uint64_t bits) {
        if (!l->stackrefs)
                return bits;
        if (bits == STACKREF_NULL || STACKREF_IS_INT(bits))
                return 0;
        return bits & ~(uint64_t)1;
}

static char *render_value(struct locals_ctx *c, uint64_t value) {
        struct repr_buf b;

        repr_buf_init(&b, c->o->max_repr);
        c->depth = 0;
        render(c, &b, value);
        return repr_buf_finish(&b);
}

/* A slot's value shown: a tagged int is its number, the rest an object. */
static char *render_slot(struct locals_ctx *c, uint64_t bits) {
        char *s;

        if (c->l->stackrefs && STACKREF_IS_INT(bits))
                return asprintf(&s, "%lld", (long long)((int64_t)bits >> 2)) < 0 ? NULL : s;
        return render_value(c, untag(c->l, bits));
}

__attribute__((format(printf, 2, 3)))
static void set_error(struct py_frame_info *f, const char *fmt, ...) {
        va_list ap;

        if (f->vars_error)
                return;
        va_start(ap, fmt);
        if (vasprintf(&f->vars_error, fmt, ap) < 0)
                f->vars_error = NULL;
        va_end(ap);
}

static int frame_vars(struct locals_ctx *c, struct py_frame_info *f) {
        const struct py_layout *l = c->l;
        struct code_vars *cv;
        _cleanup_free_ uint64_t *slots = NULL;
        uint64_t base;
        size_t allocated = 0;

        if (!f->code) {
                set_error(f, "no code object for frame 0x%llx", (unsigned long long)f->addr);
                return 0;
        }
        cv = code_vars(c, f->code);
        if (!cv)
                return -ENOMEM;
        if (cv->error) {
                f->vars_error = strdup(cv->error);
                return f->vars_error ? 0 : -ENOMEM;
        }
        if (!cv->nslots)
                return 0;
        base = f->addr + (l->frame_kind == PY_FRAMES_OBJECTS ? l->frame.localsplus : l->iframe.localsplus);
        slots = malloc(cv->nslots * 8);
        if (!slots)
                return -ENOMEM;
        if (target_read(c->t, base, slots, cv->nslots * 8) < 0) {
                set_error(f, "unreadable variables at 0x%llx", (unsigned long long)base);
                return 0;
        }
        for (size_t i = 0; i < cv->n; i++) {
                const struct var_desc *vd = &cv->vars[i];
                uint64_t raw = slots[vd->slot], value = untag(l, raw);
                bool unbound = false, arg = vd->flags & VD_ARG;
                bool tagged_int = l->stackrefs && STACKREF_IS_INT(raw);
                struct py_var *v;

                if (vd->cell_slot != UINT32_MAX) {
                        uint64_t cell = untag(l, slots[vd->cell_slot]);
                        bool cell_unbound;
                        uint64_t inner = deref(c, cell, &cell_unbound);

                        if (cell && inner != cell && !cell_unbound)
                                value = inner;
                } else if (vd->flags & VD_DEREF)
                        value = deref(c, value, &unbound);
                /* unbound locals are not variables yet (Python's locals() omits them too) */
                if ((!value || unbound) && !arg && !tagged_int)
                        continue;
                if (grow_array(&f->vars, &allocated, f->n_vars + 1, sizeof(*f->vars)) < 0)
                        return -ENOMEM;
                v = &f->vars[f->n_vars];
                v->name = strdup(vd->name);
                v->repr = tagged_int && value == 0 ? render_slot(c, raw) : render_value(c, value);
                v->argument = arg;
                if (!v->name || !v->repr) {
                        free(v->name);
                        free(v->repr);
                        return -ENOMEM;
                }
                f->n_vars++;
        }
        return 0;
}

void py_locals_read(struct analysis *a, const struct locals_options *o) {
        struct locals_ctx *c;

        if (!a || !a->target || !o || !a->layout.major)
                return;
        c = calloc(1, sizeof(*c));
        if (!c) {
                target_out_of_memory(a->target);
                return;
        }
        c->a = a;
        c->t = a->target;
        c->l = &a->layout;
        c->o = o;
        c->max_depth = MIN(o->max_depth, (size_t)MAX_DEPTH_HARD);
        for (size_t i = 0; i < a->n_threads; i++) {
                struct thread_info *th = &a->threads[i];

                for (size_t k = 0; k < th->n_frames; k++) {
                        struct py_frame_info *f = &th->frames[k];

                        if (f->vars || f->vars_error)
                                continue;
                        if (frame_vars(c, f) == -ENOMEM) {
                                /* not this frame's fault: the analysis fails (analysis.c) */
                                target_out_of_memory(a->target);
                                if (!f->vars_error)
                                        f->vars_error = strdup("out of memory");
                        }
                }
        }
        free(c);
}
