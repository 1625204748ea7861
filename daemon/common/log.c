/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "escape.h"
#include "log.h"

static const char *log_identifier = "pystackd";
static enum log_target log_target = LOG_TO_STDERR;

void log_setup(const char *identifier, enum log_target target) {
        log_identifier = identifier;
        log_target = target;
}

/* One entry, native protocol, MESSAGE with an explicit length (it may hold anything). */
static void journal_send(int priority, const char *msg) {
        static const struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = "/run/systemd/journal/socket" };
        char buf[4096 + 512];
        size_t len = strlen(msg), n;
        int fd;

        n = (size_t)snprintf(buf, sizeof(buf), "PRIORITY=%d\nSYSLOG_IDENTIFIER=%s\nMESSAGE\n", priority,
                             log_identifier);
        if (n + 8 + len + 1 > sizeof(buf))
                return;
        for (int i = 0; i < 8; i++)     /* the length, little-endian */
                buf[n + i] = (char)((uint64_t)len >> (8 * i));
        memcpy(buf + n + 8, msg, len);
        buf[n + 8 + len] = '\n';
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return;
        (void)sendto(fd, buf, n + 8 + len + 1, MSG_DONTWAIT | MSG_NOSIGNAL, (const struct sockaddr *)&sa, sizeof(sa));
        close(fd);
}

void log_msg(int priority, const char *fmt, ...) {
        char raw[1024], msg[4 * 1024 + 64];
        int saved = errno;
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(raw, sizeof(raw), fmt, ap);
        va_end(ap);
        if (log_target == LOG_TO_JOURNAL) {
                size_t o = (size_t)snprintf(msg, sizeof(msg), "%s: ", log_identifier);
                esc_snprint(msg + o, sizeof(msg) - o, raw);
                journal_send(priority, msg);
                if (isatty(STDERR_FILENO) || getenv("PYSTACK_COREDUMP_STDERR"))
                        fprintf(stderr, "%s\n", msg);
        } else {
                esc_snprint(msg, sizeof(msg), raw);
                fprintf(stderr, "<%d>%s\n", priority <= LOG_ERR ? 3 : priority <= LOG_WARNING ? 4 : 6, msg);
        }
        errno = saved;
}
