/* SPDX-License-Identifier: MIT */
#pragma once

/* A minimal TAP producer for the C unit tests (automake's tap-driver reads it). */

#include <stdarg.h>
#include <stdio.h>

static int tap_n, tap_failed;

__attribute__((format(printf, 2, 3)))
static inline int tap_ok(int cond, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        printf("%sok %d - ", cond ? "" : "not ", ++tap_n);
        vprintf(fmt, ap);
        printf("\n");
        va_end(ap);
        if (!cond)
                tap_failed++;
        return cond;
}

#define TAP_EQ_INT(got, want, ...) \
        (tap_ok((long long)(got) == (long long)(want), __VA_ARGS__) || \
         (printf("#   got %lld, want %lld\n", (long long)(got), (long long)(want)), 0))

static inline int tap_done(void) {
        printf("1..%d\n", tap_n);
        return 0;  /* failures are reported per test; the driver counts them */
}
