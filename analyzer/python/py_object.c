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
                return -ENOMEM;
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
                return -ENOMEM;
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
                return -ENOMEM;
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
