/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * log: the one way the daemon programs log.  Every message is escaped by
 * escape.h's rule (the names in it come from crashed processes), then goes
 * to the journal in its native protocol — never waiting: a journald that
 * hangs must not hold a crashing process the kernel keeps until its handler
 * is done — and/or to stderr with a "<N>" priority prefix, which the journal
 * reads from a service's stderr and a person can read on a terminal.
 */

#include <stdbool.h>
#include <syslog.h>

enum log_target {
        LOG_TO_STDERR,                  /* "<N>message" lines (pystackd, run by systemd or by hand) */
        LOG_TO_JOURNAL,                 /* the journal's socket; stderr too when it is a terminal or
                                         * PYSTACK_COREDUMP_STDERR is set (pystack-coredump, run by the kernel) */
};

/* identifier: SYSLOG_IDENTIFIER and the prefix of stderr lines ("pystack-coredump: "). */
void log_setup(const char *identifier, enum log_target target);

/* errno is kept, so that "%m" and a later strerror(errno) still work. */
__attribute__((format(printf, 2, 3)))
void log_msg(int priority, const char *fmt, ...);
