/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "py_object.h"
#include "utf8.h"

int py_read_ptr(struct target *t, uint64_t obj, py_off off, uint64_t *v) {
        if (!obj || off == PY_OFF_NONE)
                return -EFAULT;
        return target_read_u64(t, obj + (uint64_t)off, v);
}

int py_read_i64(struct target *t, uint64_t obj, py_off off, int64_t *v) {
        if (!obj || off == PY_OFF_NONE)
                return -EFAULT;
        return target_read(t, obj + (uint64_t)off, v, sizeof(*v));
}

int py_read_i32(struct target *t, uint64_t obj, py_off off, int32_t *v) {
        if (!obj || off == PY_OFF_NONE)
                return -EFAULT;
        return target_read(t, obj + (uint64_t)off, v, sizeof(*v));
}

uint64_t py_field_u64(const uint8_t *b, py_off off) {
        uint64_t v = 0;

        if (off != PY_OFF_NONE)
                memcpy(&v, b + off, sizeof(v));
        return v;
}

int32_t py_field_i32(const uint8_t *b, py_off off) {
        int32_t v = 0;

        if (off != PY_OFF_NONE)
                memcpy(&v, b + off, sizeof(v));
        return v;
}

int py_field_u8(const uint8_t *b, py_off off) {
        return off != PY_OFF_NONE ? b[off] : -1;
}

size_t py_read_cstring(struct target *t, uint64_t addr, char *buf, size_t size) {
        size_t n = 0;

        while (n + 1 < size && target_read(t, addr + n, &buf[n], 1) == 0 && buf[n])
                n++;
        buf[n] = 0;
        return n;
}

int py_read_bytes(struct target *t, const struct py_layout *l, uint64_t obj, size_t max,
                  uint8_t **ret, size_t *len) {
        int64_t size;
        uint8_t *buf;

        if (py_read_i64(t, obj, l->bytes.ob_size, &size) < 0)
                return -EFAULT;
        if (size < 0 || size > (int64_t)TARGET_MAX_READ)
                return -EBADMSG;
        if ((uint64_t)size > max)
                size = (int64_t)max;
        buf = malloc(size + 1);
        if (!buf)
                return target_out_of_memory(t);
        if (target_read(t, obj + l->bytes.ob_sval, buf, size) < 0) {
                free(buf);
                return -EFAULT;
        }
        buf[size] = 0;
        *ret = buf;
        *len = size;
        return 0;
}

/* Where a string-like object's characters are, how many and how wide. */
static int chars_of(struct target *t, const struct py_layout *l, uint64_t obj, enum py_chars_kind kind,
                    uint64_t *data, int64_t *length, unsigned *width) {
        int32_t state;

        switch (kind) {
        case PY_CHARS_STR: {
                unsigned compact, ascii;

                if (py_read_i64(t, obj, l->unicode.length, length) < 0 ||
                    py_read_i32(t, obj, l->unicode.state, &state) < 0)
                        return -EFAULT;
                *width = ((uint32_t)state >> 2) & 7;
                compact = ((uint32_t)state >> 5) & 1;
                ascii = ((uint32_t)state >> 6) & 1;
                if ((*width != 1 && *width != 2 && *width != 4) || (ascii && *width != 1))
                        return -EBADMSG;
                if (ascii && compact)
                        *data = obj + l->unicode.ascii_data;
                else if (compact)
                        *data = obj + l->unicode.compact_data;
                else if (py_read_ptr(t, obj, l->unicode.data_any, data) < 0)
                        return -EFAULT;
                return 0;
        }
        case PY_CHARS_UNICODE27:
                if (py_read_i64(t, obj, l->unicode27.length, length) < 0 ||
                    py_read_ptr(t, obj, l->unicode27.str, data) < 0)
                        return -EFAULT;
                *width = (unsigned)l->unicode27.char_size;
                return *width == 2 || *width == 4 ? 0 : -EBADMSG;
        case PY_CHARS_BYTES:
                if (py_read_i64(t, obj, l->bytes.ob_size, length) < 0 || l->bytes.ob_sval == PY_OFF_NONE)
                        return -EFAULT;
                *data = obj + l->bytes.ob_sval;
                *width = 1;
                return 0;
        }
        return -EBADMSG;
}

int py_read_chars(struct target *t, const struct py_layout *l, uint64_t obj, enum py_chars_kind kind, size_t max,
                  uint32_t **ret, size_t *n, bool *cut) {
        _cleanup_free_ uint8_t *raw = NULL;
        _cleanup_free_ uint32_t *cps = NULL;
        int64_t length;
        uint64_t data;
        unsigned width;
        size_t count;
        int r;

        if (!obj)
                return -EFAULT;
        r = chars_of(t, l, obj, kind, &data, &length, &width);
        if (r < 0)
                return r;
        if (length < 0)
                return -EBADMSG;
        count = (uint64_t)length > max ? max : (size_t)length;
        if (count > TARGET_MAX_READ / 4)
                count = TARGET_MAX_READ / 4;
        *cut = count < (uint64_t)length;
        raw = malloc(count * width + 1);
        cps = malloc((count + 1) * sizeof(*cps));
        if (!raw || !cps)
                return target_out_of_memory(t);
        if (count && target_read(t, data, raw, count * width) < 0)
                return -EFAULT;
        *n = 0;
        for (size_t i = 0; i < count; i++) {
                uint32_t cp;

                if (width == 1)
                        cp = raw[i];
                else if (width == 2) {
                        uint16_t v;

                        memcpy(&v, raw + 2 * i, 2);
                        cp = v;
                        /* a narrow 2.7 build stores astral characters as surrogate pairs */
                        if (kind == PY_CHARS_UNICODE27 && cp >= 0xD800 && cp < 0xDC00 && i + 1 < count) {
                                uint16_t lo;

                                memcpy(&lo, raw + 2 * (i + 1), 2);
                                if (lo >= 0xDC00 && lo < 0xE000) {
                                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                                        i++;
                                }
                        }
                } else
                        memcpy(&cp, raw + 4 * i, 4);
                cps[(*n)++] = cp;
        }
        *ret = TAKE_PTR(cps);
        return 0;
}

int py_read_text(struct target *t, const struct py_layout *l, uint64_t obj, size_t max, char **ret) {
        bool bytes = l->major < 3, cut = false;
        _cleanup_free_ uint32_t *cps = NULL;
        size_t n = 0;
        char *out, *p;
        int r;

        r = py_read_chars(t, l, obj, bytes ? PY_CHARS_BYTES : PY_CHARS_STR, max, &cps, &n, &cut);
        if (r < 0)
                return r;
        out = p = malloc(n * 4 + 4);    /* at most 4 bytes of UTF-8 each, + "..." + NUL */
        if (!out)
                return target_out_of_memory(t);
        for (size_t i = 0; i < n; i++) {
                uint32_t cp = cps[i];

                if (cp == 0)
                        p += utf8_put(p, 0xFFFD);       /* a NUL would end the C string */
                else if (bytes)
                        *p++ = (char)cp;                /* a 2.7 str: its bytes as they are */
                else if (cp >= 0xDC80 && cp <= 0xDCFF)
                        *p++ = (char)(cp & 0xFF);       /* a byte surrogateescape kept: the byte again */
                else
                        p += utf8_put(p, cp);
        }
        if (cut) {
                memcpy(p, "...", 3);
                p += 3;
        }
        *p = 0;
        *ret = out;
        return 0;
}

/* ---- dicts, sets and attributes ---- */

#define CHUNK 256                       /* entries read at once */

/* Entries [0, n) of a table of `size`-byte entries with key/value at koff/voff: live ones have a value. */
static int table_each(struct target *t, uint64_t entries, uint64_t n, size_t size, size_t koff, size_t voff,
                      py_pair_fn fn, void *ctx) {
        uint8_t buf[CHUNK * 24];
        size_t per;

        if (size == 0 || size > sizeof(buf) || koff + 8 > size || voff + 8 > size)
                return -EBADMSG;
        per = sizeof(buf) / size;
        n = MIN(n, (uint64_t)PY_MAX_SCAN);
        for (uint64_t i = 0; i < n; i += per) {
                size_t k = (size_t)MIN((uint64_t)per, n - i);

                if (target_read(t, entries + i * size, buf, k * size) < 0)
                        return -EFAULT;
                for (size_t j = 0; j < k; j++) {
                        uint64_t key = le64_get(buf + j * size + koff), value = le64_get(buf + j * size + voff);

                        if (value && !fn(ctx, key, value))      /* no value: never used, or deleted */
                                return 0;
                }
        }
        return 0;
}

/*
 * A 3.6+ keys object with its values: a combined table (values == 0) or a split one, whose values
 * live apart -- in a dict's ma_values, or in an object's inline values (3.13+).
 */
static int keys_each(struct target *t, const struct py_layout *l, uint64_t keys, uint64_t values, int64_t used,
                     py_pair_fn fn, void *ctx) {
        uint64_t entries, esize = l->dict.entry_size, koff = l->dict.entry_key, voff = l->dict.entry_value;
        int64_t nentries;

        if (!keys)
                return -EBADMSG;
        if (py_read_i64(t, keys, l->dict.dk_nentries, &nentries) < 0)
                return -EFAULT;
        if (nentries < 0)
                return -EBADMSG;
        if (l->dict_kind == PY_DICT_KEYS36) {
                int64_t size;
                unsigned ix;

                if (py_read_i64(t, keys, l->dict.dk_size, &size) < 0)
                        return -EFAULT;
                if (size <= 0 || (size & (size - 1)) || (uint64_t)size > TARGET_MAX_READ)
                        return -EBADMSG;
                ix = size <= 0xff ? 1 : size <= 0xffff ? 2 : size <= 0xffffffffLL ? 4 : 8;
                entries = keys + l->dict.dk_indices + (uint64_t)size * ix;
        } else {
                uint8_t log2_index_bytes, kind;

                if (target_read(t, keys + l->dict.dk_log2_index_bytes, &log2_index_bytes, 1) < 0 ||
                    target_read(t, keys + l->dict.dk_kind, &kind, 1) < 0)
                        return -EFAULT;
                if (log2_index_bytes > 40)
                        return -EBADMSG;
                entries = keys + l->dict.dk_indices + (1ULL << log2_index_bytes);
                if (kind != 0) {        /* DICT_KEYS_UNICODE or _SPLIT: no hash in the entries */
                        esize = l->dict.unicode_entry_size;
                        koff = l->dict.unicode_entry_key;
                        voff = l->dict.unicode_entry_value;
                }
        }

        if (!values)
                return table_each(t, entries, (uint64_t)nentries, esize, koff, voff, fn, ctx);
        if (l->dict_kind == PY_DICT_KEYS36) {
                /* split: values[i] belongs to entry i, in entry order */
                uint64_t n = MIN((uint64_t)nentries, (uint64_t)PY_MAX_SCAN);

                for (uint64_t i = 0; i < n; i++) {
                        uint64_t key, value;

                        if (target_read_u64(t, values + l->dict.values_values + 8 * i, &value) < 0 ||
                            target_read_u64(t, entries + i * esize + koff, &key) < 0)
                                return -EFAULT;
                        if (value && !fn(ctx, key, value))
                                return 0;
                }
                return 0;
        }
        /* split, 3.11+: values in insertion order, as a byte array of entry indexes */
        uint8_t order[256], count;
        uint64_t order_addr;
        bool before = l->dict_kind == PY_DICT_KEYS311;

        if (before) {
                /* 3.11-3.12: the count at values[-2], index i at values[-3 - i] */
                if (target_read(t, values - 2, &count, 1) < 0)
                        return -EFAULT;
                order_addr = values - 2 - count;
        } else {
                uint8_t capacity;

                if (target_read(t, values + l->dict.values_capacity, &capacity, 1) < 0 ||
                    target_read(t, values + l->dict.values_size, &count, 1) < 0)
                        return -EFAULT;
                order_addr = values + l->dict.values_values + 8 * (uint64_t)capacity;
        }
        count = (uint8_t)MIN((uint64_t)count, (uint64_t)used);
        if (count && target_read(t, order_addr, order, count) < 0)
                return -EFAULT;
        for (size_t i = 0; i < count; i++) {
                uint8_t ix = before ? order[count - 1 - i] : order[i];
                uint64_t key, value;

                if (ix >= (uint64_t)nentries)
                        continue;
                if (target_read_u64(t, values + l->dict.values_values + 8 * (uint64_t)ix, &value) < 0 ||
                    target_read_u64(t, entries + ix * esize + koff, &key) < 0)
                        return -EFAULT;
                if (value && !fn(ctx, key, value))
                        return 0;
        }
        return 0;
}

int py_dict_each(struct target *t, const struct py_layout *l, uint64_t dict, py_pair_fn fn, void *ctx) {
        int64_t used;
        uint64_t keys, values;

        if (py_read_i64(t, dict, l->dict.ma_used, &used) < 0)
                return -EFAULT;
        if (used < 0)
                return -EBADMSG;
        if (l->dict_kind == PY_DICT_TABLE27) {
                int64_t mask;
                uint64_t table;

                if (py_read_i64(t, dict, l->dict.ma_mask, &mask) < 0 ||
                    py_read_ptr(t, dict, l->dict.ma_table, &table) < 0)
                        return -EFAULT;
                if (mask < 0 || !table)
                        return -EBADMSG;
                return table_each(t, table, (uint64_t)mask + 1, (size_t)l->dict.entry_size,
                                  (size_t)l->dict.entry_key, (size_t)l->dict.entry_value, fn, ctx);
        }
        if (py_read_ptr(t, dict, l->dict.ma_keys, &keys) < 0 || py_read_ptr(t, dict, l->dict.ma_values, &values) < 0)
                return -EFAULT;
        return keys_each(t, l, keys, values, used, fn, ctx);
}

int py_set_each(struct target *t, const struct py_layout *l, uint64_t set, py_pair_fn fn, void *ctx) {
        int64_t mask, used;
        uint64_t table, n, seen = 0;
        size_t esize = (size_t)l->set.entry_size, koff = (size_t)l->set.entry_key;
        size_t hoff = koff ? 0 : 8;     /* setentry is {key, hash} (3.x) or {hash, key} (2.7) */
        uint8_t buf[CHUNK * 16];
        size_t per;

        if (py_read_i64(t, set, l->set.mask, &mask) < 0 || py_read_i64(t, set, l->set.used, &used) < 0 ||
            py_read_ptr(t, set, l->set.table, &table) < 0)
                return -EFAULT;
        if (mask < 0 || used < 0 || !table || esize != 16 || koff + 8 > esize)
                return -EBADMSG;
        per = sizeof(buf) / esize;
        n = MIN((uint64_t)mask + 1, (uint64_t)PY_MAX_SCAN);
        for (uint64_t i = 0; i < n && seen < (uint64_t)used; i += per) {
                size_t k = (size_t)MIN((uint64_t)per, n - i);

                if (target_read(t, table + i * esize, buf, k * esize) < 0)
                        return -EFAULT;
                for (size_t j = 0; j < k && seen < (uint64_t)used; j++) {
                        uint64_t key = le64_get(buf + j * esize + koff);

                        /* empty: NULL; deleted (3.x): the dummy key with hash -1 */
                        if (!key || (l->major >= 3 && le64_get(buf + j * esize + hoff) == UINT64_MAX))
                                continue;
                        seen++;
                        if (!fn(ctx, key, 0))
                                return 0;
                }
        }
        return 0;
}

struct lookup {
        struct target *t;
        const struct py_layout *l;
        const char *name;
        size_t len;
        uint64_t value;
        bool found;
};

/* A str key equal to the name: its length first, then its characters. */
static bool match_key(void *ctx, uint64_t key, uint64_t value) {
        struct lookup *k = ctx;
        _cleanup_free_ uint32_t *cps = NULL;
        size_t n = 0;
        bool cut = false;
        int64_t length;

        if (py_read_i64(k->t, key, k->l->unicode.length, &length) < 0 || length != (int64_t)k->len ||
            py_read_chars(k->t, k->l, key, PY_CHARS_STR, k->len, &cps, &n, &cut) < 0 || n != k->len)
                return true;
        for (size_t i = 0; i < n; i++)
                if (cps[i] != (uint8_t)k->name[i])
                        return true;
        k->value = value;
        k->found = true;
        return false;
}

static int lookup_result(struct lookup *k, int r, uint64_t *value) {
        if (r < 0)
                return r;
        if (!k->found)
                return -ENOENT;
        *value = k->value;
        return 0;
}

int py_dict_get(struct target *t, const struct py_layout *l, uint64_t dict, const char *name, uint64_t *value) {
        struct lookup k = { .t = t, .l = l, .name = name, .len = strlen(name) };

        if (l->major < 3)
                return -ENOENT;
        return lookup_result(&k, py_dict_each(t, l, dict, match_key, &k), value);
}

int py_attr(struct target *t, const struct py_layout *l, uint64_t obj, const char *name, uint64_t *value) {
        struct lookup k = { .t = t, .l = l, .name = name, .len = strlen(name) };
        uint64_t type, flags = 0, dict = 0;
        int64_t basicsize, dictoffset;

        if (l->major < 3 || py_read_ptr(t, obj, l->object.ob_type, &type) < 0 ||
            py_read_ptr(t, type, l->object.tp_flags, &flags) < 0)
                return -EFAULT;
        if (l->consts.tpf_inline_values && (flags & l->consts.tpf_inline_values)) {
                /* 3.13+: values right after the object, keyed by its type's shared keys, while
                 * `valid`; once a dict is made of them, that dict (the managed dict) holds them */
                uint64_t keys;
                uint8_t valid;

                if (py_read_i64(t, type, l->object.tp_basicsize, &basicsize) < 0 || basicsize <= 0 ||
                    basicsize > 1 << 20 || py_read_ptr(t, type, l->object.ht_cached_keys, &keys) < 0 ||
                    target_read(t, obj + (uint64_t)basicsize + (uint64_t)l->dict.values_valid, &valid, 1) < 0)
                        return -EFAULT;
                if (valid)
                        return lookup_result(&k, keys_each(t, l, keys, obj + (uint64_t)basicsize, 255, match_key, &k),
                                             value);
        }
        if (l->consts.tpf_managed_dict && (flags & l->consts.tpf_managed_dict)) {
                if (l->object.managed_dict == PY_OFF_NONE ||
                    target_read_u64(t, obj + (uint64_t)(int64_t)l->object.managed_dict, &dict) < 0)
                        return -EFAULT;
        } else {
                if (py_read_i64(t, type, l->object.tp_dictoffset, &dictoffset) < 0)
                        return -EFAULT;
                if (dictoffset <= 0 || dictoffset > 1 << 20)
                        return -ENOENT;         /* no dict, or one at the end of a variable-size object */
                if (target_read_u64(t, obj + (uint64_t)dictoffset, &dict) < 0)
                        return -EFAULT;
        }
        if (!dict)
                return -ENOENT;
        return lookup_result(&k, py_dict_each(t, l, dict, match_key, &k), value);
}
