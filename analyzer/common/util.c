/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

int grow_array(void *array, size_t *allocated, size_t need, size_t size) {
        void **p = array;
        size_t n;
        void *q;

        if (need <= *allocated)
                return 0;
        n = MAX(need, *allocated * 2);
        n = MAX(n, (size_t)8);
        if (n > SIZE_MAX / size)
                return -ENOMEM;
        q = realloc(*p, n * size);
        if (!q)
                return -ENOMEM;
        *p = q;
        *allocated = n;
        return 0;
}

#include <stdarg.h>

int strv_addf(struct strv *s, const char *fmt, ...) {
        va_list ap;
        char *str;
        int r;

        if (grow_array(&s->v, &s->allocated, s->n + 1, sizeof(char *)) < 0)
                return s->lost = true, -ENOMEM;
        va_start(ap, fmt);
        r = vasprintf(&str, fmt, ap);
        va_end(ap);
        if (r < 0)
                return s->lost = true, -ENOMEM;
        s->v[s->n++] = str;
        return 0;
}

void strv_clear(struct strv *s) {
        for (size_t i = 0; i < s->n; i++)
                free(s->v[i]);
        free(s->v);
        *s = (struct strv) {};
}

static size_t addr_hash(uint64_t a, size_t cap) {
        a ^= a >> 33;
        a *= 0xff51afd7ed558ccdULL;
        a ^= a >> 33;
        return (size_t)a & (cap - 1);
}

int addr_set_add(struct addr_set *s, uint64_t addr) {
        if ((s->n + 1) * 2 > s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 64;
                uint64_t *slots = calloc(cap, sizeof(*slots));

                if (!slots)
                        return -ENOMEM;
                for (size_t i = 0; i < s->cap; i++) {
                        if (!s->slots[i])
                                continue;
                        size_t h = addr_hash(s->slots[i], cap);
                        while (slots[h])
                                h = (h + 1) & (cap - 1);
                        slots[h] = s->slots[i];
                }
                free(s->slots);
                s->slots = slots;
                s->cap = cap;
        }
        size_t h = addr_hash(addr, s->cap);
        while (s->slots[h]) {
                if (s->slots[h] == addr)
                        return 0;
                h = (h + 1) & (s->cap - 1);
        }
        s->slots[h] = addr;
        s->n++;
        return 1;
}

void addr_set_clear(struct addr_set *s) {
        free(s->slots);
        *s = (struct addr_set) {};
}

const char *signal_full_name(int sig) {
        /* named once each: a list prints one per row */
        static char names[65][16];
        static char other[16];
        char *buf = sig >= 0 && sig < 65 ? names[sig] : other;
        const char *a;

        if (buf != other && buf[0])
                return buf;
        a = sigabbrev_np(sig);
        if (!a)
                snprintf(buf, sizeof(names[0]), "%d", sig);
        else
                snprintf(buf, sizeof(names[0]), "SIG%s", a);
        return buf;
}

int errorf(char *err, size_t errsz, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

int write_all(int fd, const void *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return -EIO;
                p = (const char *)p + k;
                n -= (size_t)k;
        }
        return 0;
}

int open_path_or_fd(const char *path, int flags) {
        char *end;
        long n;

        if (strncmp(path, "/dev/fd/", 8) == 0) {
                errno = 0;
                n = strtol(path + 8, &end, 10);
                if (!errno && end != path + 8 && !*end && n >= 0 && n <= INT32_MAX)
                        return fcntl((int)n, F_DUPFD_CLOEXEC, 3);
        }
        return open(path, flags);
}
