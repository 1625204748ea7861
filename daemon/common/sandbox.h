/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * sandbox: the confinement of the processes that read what a crashed process
 * wrote.  The ONE place where the seccomp allow-lists live (sandbox.c, one
 * table per profile), with the Landlock rules and the private mount view that
 * go with them.
 *
 * A confined child is built in this order (see run_analyzer() in
 * daemon/pystackd/analysis.c):
 *   1. sandbox_mount_view()   as root: a mount namespace (and, without a network
 *                             need, an empty network namespace), the host tree
 *                             read-only/nosuid/nodev, empty tmpfs over what must
 *                             not be seen, one directory bound writable
 *   2. drop uid/gid, set no_new_privs
 *   3. sandbox_landlock()     reads under the view, writes only beneath the
 *                             writable directory, TCP connect only to given ports,
 *                             no signals or abstract sockets out of the domain
 *   4. sandbox_seccomp()      the profile's system call allow-list, last, right
 *                             before execveat()
 *
 * Every function returns 0 (or a positive value where said) on success and
 * -errno on failure; none logs: the caller knows the context.  All are meant
 * for a child between fork() and exec: they allocate nothing but what the
 * kernel needs and leave no descriptor behind.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sandbox_profile {
        /* `pystack core` reading a core and the files it is given, as descriptors or
         * paths: files, memory, its own signals; no process, no socket, no ptrace */
        SANDBOX_ANALYZER,
        /* the same, and what libdebuginfod (libcurl) needs to fetch debug files: TCP/UDP
         * sockets (AF_INET, AF_INET6; AF_UNIX and AF_NETLINK for the resolver), threads
         * (curl's resolver thread: clone with CLONE_THREAD only) */
        SANDBOX_ANALYZER_NET,
        /* pystackd's query worker, after it opened the store and dropped everything: reads of its
         * open files, memory, its connection (descriptor 3) and its channel to pystackd (4) */
        SANDBOX_QUERY,
        _SANDBOX_PROFILE_MAX,
};

/*
 * Install profile p's seccomp filter on the calling thread (no_new_privs must be set, or the
 * caller must hold CAP_SYS_ADMIN).  A system call outside the list kills the whole process
 * with SIGSYS (SECCOMP_RET_KILL_PROCESS): nothing of it runs, nothing after it runs, the
 * parent sees WTERMSIG == SIGSYS, and the kernel's audit log names the call (type=1326,
 * syscall=N).  Another architecture's calls (x32, i386) kill too.
 *
 * exec_fd >= 0: execveat(exec_fd, "", argv, envp, AT_EMPTY_PATH) is allowed, only on that
 * descriptor number, so the caller can exec its program after the filter is in; -1: no exec.
 * Cost: one classic BPF program of 2-7 instructions per entry (at most 1024), built in a static
 * buffer: not for two threads at once (it is meant for a child between fork and exec).
 */
int sandbox_seccomp(enum sandbox_profile p, int exec_fd);

/* The number of system calls profile p allows in some form (for the documentation and the tests). */
unsigned sandbox_seccomp_count(enum sandbox_profile p);

/* The name of the i-th system call of profile p's list, 0 <= i < sandbox_seccomp_count(p) (else NULL). */
const char *sandbox_seccomp_name(enum sandbox_profile p, unsigned i);

/*
 * The Landlock ABI this kernel offers (landlock_create_ruleset(NULL, 0, VERSION)): 0 when it
 * has none or it is disabled.  Read once by pystackd and logged; the child uses what it is told.
 */
int sandbox_landlock_abi(void);

struct sandbox_landlock {
        int abi;                        /* sandbox_landlock_abi() */
        const char *read_path;          /* read, list and execute beneath it ("/": the whole view) */
        int read_fd;                    /* >= 0: also beneath this (O_PATH) directory, read-only:
                                         * a container's root, reached from outside our view */
        const char *write_path;         /* NULL or: read-write beneath it (the debug cache) */
        bool handle_tcp;                /* ABI >= 4: TCP bind denied, connect only to tcp_ports */
        const uint16_t *tcp_ports;
        size_t n_tcp_ports;
};

/*
 * Restrict the calling thread (and what it execs) to l.  Every access right the ABI knows is
 * handled; ABI >= 6 also keeps signals and abstract UNIX sockets inside the domain.  Returns the
 * ABI used (> 0), 0 when l->abi is 0 (nothing done: the caller said it had noted it), or -errno.
 */
int sandbox_landlock(const struct sandbox_landlock *l);

/*
 * The TCP ports of DEBUGINFOD_URLS ("http://h:8002 https://h2/"; 80 and 443 by default) into
 * ports[] (at most max, deduplicated); 53 is added when a URL names a host, not an address (the
 * resolver falls back to TCP).  Returns the number of ports, or -EINVAL for a URL it cannot read
 * (the caller then allows no TCP at all rather than guessing).
 */
int sandbox_debuginfod_ports(const char *urls, uint16_t *ports, size_t max);

struct sandbox_view {
        const char *const *hide;        /* NULL-terminated: an empty read-only tmpfs over each
                                         * (a path that does not exist, or is already hidden, is skipped) */
        const char *writable;           /* NULL or a directory bound read-write, nosuid, nodev, noexec, at
                                         * its own path (below a hidden one, its mount point is made) */
        bool keep_dev_null;             /* /dev hidden: a /dev/null is bound in the tmpfs */
        bool new_net;                   /* an empty network namespace too (not even loopback up) */
};

/*
 * As root, in the child: unshare the mount namespace (and the network's), make every mount
 * private, the whole tree read-only, nosuid and nodev (recursively), then hide and bind as v
 * says.  The caller's descriptors (the core, kept binaries, a container's root, the program to
 * exec) stay usable whatever the view hides.
 */
int sandbox_mount_view(const struct sandbox_view *v);
