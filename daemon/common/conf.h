/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * conf: pystack.conf, read by pystack-coredump, pystackd and pystackctl.
 *
 * One INI file; every key has a default (etc/pystack.conf documents each).
 * Sizes take K, M, G, T suffixes (powers of 1024) or a percentage of the
 * storage file system where noted.  Unknown sections and keys are errors, so
 * a typo is never silently ignored.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PYSTACK_CONF_DEFAULT SYSCONFDIR "/pystack/pystack.conf"
#ifndef PYSTACK_ANALYZER_DEFAULT
#define PYSTACK_ANALYZER_DEFAULT "/usr/bin/pystack"
#endif

enum capture_scope {
        CAPTURE_PYTHON,         /* only processes running a CPython interpreter */
        CAPTURE_ALL,            /* every process that dumps core */
};

/* A size limit: absolute bytes, or a percentage of the file system. */
struct size_limit {
        uint64_t bytes;
        unsigned percent;       /* used when non-zero */
};

struct config {
        /* [Storage] */
        char *directory;                /* Directory= */
        int compression_level;          /* CompressionLevel= (zstd) */
        uint64_t max_core_size;         /* MaxCoreSize= */
        struct size_limit max_use;      /* MaxUse= */
        struct size_limit keep_free;    /* KeepFree= */

        /* [Capture] */
        enum capture_scope capture;     /* Processes= */
        bool socket_capture;            /* Mode=socket (pystackd runs the coredump socket's listener) */
        unsigned rate_limit_burst;      /* RateLimitBurst= (0: no limit) */
        unsigned rate_limit_interval;   /* RateLimitIntervalSec= */
        bool store_environment;         /* StoreEnvironment= */
        bool keep_binaries;             /* KeepBinaries= */
        uint64_t max_binary_size;       /* MaxBinarySize= (a larger mapped file is recorded, not kept) */
        uint64_t max_binaries_per_crash;/* MaxBinariesPerCrash= */
        char **binaries_exclude;        /* BinariesExclude= (fnmatch patterns; NULL-ended, or NULL) */

        uint64_t max_age;               /* MaxAge= (seconds; 0: no age limit) */

        /* [Daemon] */
        char *runtime_directory;        /* RuntimeDirectory= */
        bool journal;                   /* Journal= */
        uint64_t journal_report_max;    /* JournalReportMax= (bytes of PYSTACK_REPORT_JSON; 0: none) */
        bool journal_locals;            /* JournalLocals= (locals in PYSTACK_REPORT_JSON) */
        char *query_user;               /* QueryUser= (answers the query socket) */

        /* [Analysis] */
        unsigned workers;               /* Workers= (0: the number of CPUs) */
        bool tasks;                     /* Tasks= (asyncio task trees, 3.14+) */
        unsigned timeout;               /* TimeoutSec= (wall clock per analysis) */
        uint64_t memory_max;            /* MemoryMax= (address space of the analyzer) */
        unsigned max_attempts;          /* MaxAttempts= */
        char *user;                     /* User= (the analyzer runs as this user) */
        char *analyzer;                 /* Analyzer= (path of pystack) */
};

/* Fill c with the defaults. 0 or -ENOMEM. */
int config_defaults(struct config *c);

/*
 * Read path over the current values.  The file must be a regular file
 * owned by root (or by the caller) and writable by nobody else, below
 * directories that are too (trusted_parent): a configuration a user could
 * change would let them steer a root process.
 * A missing file is not an error when `optional`.  Returns 0, or -errno
 * with a one-line message in err (size errsz): "FILE:LINE: what is wrong".
 */
int config_load(struct config *c, const char *path, bool optional, char *err, size_t errsz);

/*
 * Walk an absolute path to the directory holding its last component, never
 * through a symbolic link, each directory root's (or the caller's) and
 * writable by nobody else (a sticky one such as /tmp is passed through).
 * A descriptor of that directory and the last component in `last`, or
 * -errno with the reason, naming the offending directory, in `why`.
 */
int trusted_parent(const char *path, char *last, size_t lastsz, char *why, size_t whysz);

/*
 * dirfd/name as a directory, never through a symbolic link, owned by the caller and writable by
 * nobody else: a descriptor (O_CLOEXEC), -EPERM when it is not so, or -errno.
 */
int open_private_dir(int dirfd, const char *name);

/*
 * Tell pystackd there is work (a datagram `msg` to RUNTIME_DIR/notify).  It
 * may not run, and that is fine: the work waits in the store.  Only a socket
 * of root's in a directory only root can change, addressed through a
 * descriptor of that directory: never a link to another program's socket.
 * fds (n_fds of them, at most SEND_MAX_FDS) ride along (SCM_RIGHTS): the raw core of a crash
 * being captured, and the root of a container's process.
 */
void notify_daemon(const char *runtime_dir, const char *msg, const int *fds, size_t n_fds);

/* msg (len bytes) on sock, to `to` (NULL: its peer), with descriptor fd (>= 0) as SCM_RIGHTS:
 * sendmsg()'s result; MSG_NOSIGNAL is added to flags. */
struct sockaddr_un;
#define SEND_MAX_FDS 2
ssize_t send_with_fds(int sock, const struct sockaddr_un *to, const void *msg, size_t len, const int *fds,
                      size_t n_fds, int flags);
ssize_t send_with_fd(int sock, const struct sockaddr_un *to, const void *msg, size_t len, int fd, int flags);

/* Parse text (for tests and the fuzzer): as config_load without the file checks. */
int config_parse(struct config *c, const char *text, size_t len, const char *name, char *err, size_t errsz);

void config_free(struct config *c);

/* Resolve a size limit against a file system of total bytes. */
uint64_t size_limit_bytes(const struct size_limit *l, uint64_t total);

/* "30d", "12h", "90min", "45s", "3600" -> seconds. 0 or -EINVAL. */
int parse_duration(const char *s, uint64_t *out);

/* "2G", "512M", "1024", "10%" (when percent_ok). 0 or -EINVAL. */
int parse_size(const char *s, bool percent_ok, struct size_limit *out);
