/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * pystackd's parts: the analysis queue and its sandbox (analysis.c), the journal entry of a
 * crash (journal.c), the query socket (query_server.c), and the loop that drives them
 * (pystackd.c).  One daemon, its state in one struct.
 */

#include <limits.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "conf.h"

#define MAX_JOBS 256
#define MAX_QUERIES 16
#define MAX_STDERR 4096
#define MAX_ROOTS 64                    /* containers' roots kept for analyses still to come */
#define ROOT_KEEP_USEC (3600ll * 1000000)

/* One analysis under way. */
struct job {
        int64_t id;
        pid_t pid;
        int out_fd, err_fd;
        struct buf out;
        char err[MAX_STDERR + 1];
        size_t err_len;
        int64_t deadline;
        bool timed_out, too_big;
        bool requeue;                   /* killed because we are stopping: back to the queue, uncounted */
        bool final;                     /* judged: its report filed, or failed for good */
        int status;
};

/* A container's root, from the handler with the raw core: source lines are read under it. */
struct root_handle {
        int64_t id;                     /* the crash */
        int fd;                         /* O_PATH */
        int64_t since;                  /* CLOCK_MONOTONIC µs */
};

/* The coredump socket's listener we run ([Capture] Mode=socket). */
struct socket_capture {
        pid_t pid;                      /* 0: not running */
        int64_t started;                /* CLOCK_MONOTONIC µs */
        int64_t restart_at;             /* when to start it again; 0: not planned */
        int64_t backoff;
        bool off;                       /* it said socket capture is not possible here: not retried
                                         * until the configuration is reloaded */
};

/* A query being answered by a worker of ours (query_server.c). */
struct query_worker {
        pid_t pid;
        int chan;                       /* its channel: what it asks for the asker; -1 once closed */
        int64_t uid;                    /* the asker's (SO_PEERCRED, taken by us), -1 for root */
};

struct daemon {
        const char *config_path;
        struct config cfg;
        sqlite3 *db;
        int storage_fd, notify_fd, sig_fd, query_fd;
        struct query_worker queries[MAX_QUERIES];
        unsigned n_queries;
        struct job jobs[MAX_JOBS];
        unsigned n_jobs, max_jobs;
        bool stopping;
        bool rescan;                    /* a worker came free: look at the queue at once */
        int64_t stop_deadline, next_maintenance, watchdog_usec, next_watchdog;
        uid_t analyzer_uid;
        gid_t analyzer_gid;
        uid_t query_uid;                /* QueryUser: who answers the query socket */
        gid_t query_gid;
        char cache_dir[PATH_MAX];
        uint64_t analysed, failed;
        int landlock_abi;               /* the kernel's (0: none): read once, at start */
        struct root_handle roots[MAX_ROOTS];
        unsigned n_roots;
        struct socket_capture listener;
};

/* analysis.c */
/* Claim pending crashes and start their analyses while workers are free. */
void analysis_fill_workers(struct daemon *d);
/* A raw core the handler passed while it compresses it (crash id): analysed now when a worker is
 * free and the crash still waits for its capture; otherwise the queue has it later.  Takes core_fd. */
void analysis_start_raw(struct daemon *d, int64_t id, int core_fd);
/* Keep crash id's container root (takes fd) until its analysis is judged, for at most an hour;
 * the oldest goes when MAX_ROOTS are kept. */
void analysis_keep_root(struct daemon *d, int64_t id, int fd);
/* Read what the children wrote. */
void analysis_read(struct daemon *d);
/* Reap exited children (analyses and query servers) and file what they found. */
void analysis_reap(struct daemon *d);
/* The core of a stored crash, opened by us (root): a descriptor, or -errno. */
int analysis_open_core(const struct daemon *d, const char *core_path);

/* journal.c */
/* The journal entry of crash id: its report (json, len) when analysed, else the failure. */
void journal_crash(const struct daemon *d, int64_t id, const char *json, size_t len, const char *failure);

/* socket_capture.c */
/* Start the listener when Mode=socket asks for it and it is not running (nor off). */
void socket_capture_start(struct daemon *d);
/* A child was reaped: true when it was the listener (then the pipe pattern is back, and a restart
 * is planned unless it said socket capture is not possible). */
bool socket_capture_reaped(struct daemon *d, pid_t pid, int status);
/* Ask it to stop (SIGTERM): it gives the pipe pattern back. */
void socket_capture_stop(struct daemon *d);
/* At exit: wait for it a moment, then kill it and put the pipe pattern back ourselves. */
void socket_capture_finish(struct daemon *d);

/* query_server.c */
int query_server_listen(struct daemon *d);
/* Take the waiting connections: each to a worker of its own. */
void query_server_accept(struct daemon *d);
/* Serve what the workers ask of us. */
void query_server_read(struct daemon *d);
/* A child was reaped: true when it was a query worker (forgotten now). */
bool query_server_reaped(struct daemon *d, pid_t pid, int status);

/* query_worker.c: `pystackd --query-worker ...`, run by query_server.c; an exit status. */
int query_worker_main(int argc, char **argv);
/* An answer's error line on a query connection: "ERR <code> <message>\n" (one line: the message
 * is cut at its first newline). */
__attribute__((format(printf, 3, 4)))
void query_send_err(int fd, int code, const char *fmt, ...);
