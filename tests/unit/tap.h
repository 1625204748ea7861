/* SPDX-License-Identifier: MIT */
#pragma once

/* A minimal TAP producer for the C unit tests (automake's tap-driver reads it),
 * like tests/tap.sh and tests/integration/harness/tap.py:
 *   tap_ok(cond, fmt, ...)          ok N - ... / not ok N - ...
 *   TAP_EQ_INT(got, want, fmt, ...)  the same, with got and want when they differ
 *   tap_skip(fmt, ...)              ok N # SKIP ...
 *   return tap_done();              the plan 1..N; 1 when a check failed, else 0 */

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

__attribute__((format(printf, 1, 2)))
static inline void tap_skip(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        printf("ok %d # SKIP ", ++tap_n);
        vprintf(fmt, ap);
        printf("\n");
        va_end(ap);
}

/* The plan, last; the exit status of main(): 1 when any check failed. */
static inline int tap_done(void) {
        printf("1..%d\n", tap_n);
        fflush(stdout);
        return tap_failed ? 1 : 0;
}
