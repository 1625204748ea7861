/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "py_object.h"
#include "utf8.h"

/* A C string of len bytes of a 2.7 str, byte for byte; a NUL (which would end it) as U+FFFD. */
static char *copy_bytes(const uint8_t *src, size_t len) {
        char *out, *p;

        if (len > (SIZE_MAX - 1) / 3)
                return NULL;
        out = p = malloc(len * 3 + 1);
        if (!out)
                return NULL;
        for (size_t i = 0; i < len; i++) {
                if (src[i] == 0)
                        p += utf8_put(p, 0xFFFD);
                else
                        *p++ = (char)src[i];
        }
        *p = 0;
        return out;
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

        if (!obj || l->bytes.ob_size == PY_OFF_NONE)
                return -EFAULT;
        if (target_read(t, obj + l->bytes.ob_size, &size, sizeof(size)) < 0)
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

/* A 3.x str: kind (1, 2 or 4 bytes per character) and where its characters live. */
static int read_unicode(struct target *t, const struct py_layout *l, uint64_t obj, size_t max, char **ret) {
        int64_t length;
        uint32_t state;
        unsigned kind, compact, ascii;
        uint64_t data;

        if (target_read(t, obj + l->unicode.length, &length, sizeof(length)) < 0 ||
            target_read(t, obj + l->unicode.state, &state, sizeof(state)) < 0)
                return -EFAULT;
        kind = (state >> 2) & 7;
        compact = (state >> 5) & 1;
        ascii = (state >> 6) & 1;
        if (length < 0 || (kind != 1 && kind != 2 && kind != 4) || (ascii && kind != 1))
                return -EBADMSG;
        if (ascii && compact)
                data = obj + l->unicode.ascii_data;
        else if (compact)
                data = obj + l->unicode.compact_data;
        else if (target_read_u64(t, obj + l->unicode.data_any, &data) < 0)
                return -EFAULT;

        /* each character is at most 4 bytes of UTF-8: read no more than fits in max */
        size_t nchars = (uint64_t)length > max ? max : (size_t)length;
        bool cut = nchars < (uint64_t)length;
        _cleanup_free_ uint8_t *raw = malloc(nchars * kind + 1);
        char *out, *p;

        if (!raw)
                return -ENOMEM;
        if (target_read(t, data, raw, nchars * kind) < 0)
                return -EFAULT;
        out = p = malloc(nchars * 4 + 4);  /* + "..." + NUL */
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < nchars; i++) {
                uint32_t cp;

                if (kind == 1)
                        cp = raw[i];
                else if (kind == 2) {
                        uint16_t v;
                        memcpy(&v, raw + 2 * i, 2);
                        cp = v;
                } else
                        memcpy(&cp, raw + 4 * i, 4);
                if (cp >= 0xDC80 && cp <= 0xDCFF)
                        *p++ = (char)(cp & 0xFF);  /* a byte surrogateescape kept: the byte again */
                else
                        p += utf8_put(p, cp == 0 ? 0xFFFD : cp);  /* a NUL would end the C string */
        }
        if (cut) {
                memcpy(p, "...", 3);
                p += 3;
        }
        *p = 0;
        *ret = out;
        return 0;
}

int py_read_text(struct target *t, const struct py_layout *l, uint64_t obj, size_t max, char **ret) {
        _cleanup_free_ uint8_t *raw = NULL;
        size_t len;
        int r;

        if (!obj)
                return -EFAULT;
        if (l->major >= 3)
                return read_unicode(t, l, obj, max, ret);
        r = py_read_bytes(t, l, obj, max, &raw, &len);
        if (r < 0)
                return r;
        *ret = copy_bytes(raw, len);
        return *ret ? 0 : -ENOMEM;
}
