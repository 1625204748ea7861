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

/* Compare two integers once each (arguments may have side effects). */
#define TAP_EQ_INT(got, want, ...) tap_eq_int((long long)(got), (long long)(want), __VA_ARGS__)

__attribute__((format(printf, 3, 4)))
static inline int tap_eq_int(long long got, long long want, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        printf("%sok %d - ", got == want ? "" : "not ", ++tap_n);
        vprintf(fmt, ap);
        printf("\n");
        va_end(ap);
        if (got != want) {
                tap_failed++;
                printf("#   got %lld, want %lld\n", got, want);
        }
        return got == want;
}

static inline int tap_done(void) {
        printf("1..%d\n", tap_n);
        return 0;  /* failures are reported per test; the driver counts them */
}
