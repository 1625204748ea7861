/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * proc_info: what /proc says about a process that is dumping core, read
 * while the kernel still holds it.
 *
 * Everything is read relative to one /proc/PID directory descriptor, tied to
 * the process through its pidfd when the kernel gave one (%F).  Nothing
 * inside the process's own root or mount namespace is opened: links such as
 * exe and cwd are read as strings, never followed.  Every read is bounded.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define PROC_MAX_CMDLINE (256u << 10)
#define PROC_MAX_ENVIRON (256u << 10)
#define PROC_MAX_THREADS 4096
#define PROC_MAX_MAPS (8u << 20)

struct proc_info {
        int32_t pid_ns;                 /* last NSpid field, 0 when unknown */
        char comm[64];
        char *exe, *cwd;                /* link targets as strings, NULL when unreadable */
        struct buf cmdline;             /* JSON array */
        char *script;                   /* cmdline_script() of it, NULL when unknown */
        struct buf environ;             /* JSON array (only when asked) */
        struct buf threads;             /* JSON array of [tid, name] */
        char *cgroup;                   /* the cgroup v2 path */
        char *unit;                     /* the systemd unit from the cgroup path, or NULL */
        bool container;                 /* its root, or its pid, mount or user namespace, differs from ours */
        bool same_mount_ns;
        char *container_runtime;        /* "docker", "podman", ... from the cgroup path, or NULL */
        char *container_id;             /* the runtime's id (or name) for it, or NULL */
        int64_t rlimit_core;            /* -1: unlimited, -2: unknown */
        bool python;                    /* exe or a mapped file looks like CPython */
        bool out_of_memory;             /* an allocation failed: what it was for is missing */
};

/*
 * Open /proc/PID and make sure it is the process behind pidfd (when >= 0):
 * a directory descriptor, -ESRCH when they do not match, or -ENOMEM.
 */
int proc_open(int32_t pid, int pidfd);

/* Fill *pi from the /proc/PID descriptor. Never fails as a whole: missing parts stay empty
 * (pi->out_of_memory says when some are missing for want of memory). */
void proc_info_read(int procfd, bool want_environ, struct proc_info *pi);
void proc_info_free(struct proc_info *pi);

/* Up to max bytes of dirfd/name, NUL-terminated, *len set; NULL when unreadable or out of memory. */
char *proc_read_at(int dirfd, const char *name, size_t max, size_t *len);

/*
 * The container a cgroup v2 path names, by the runtimes' conventions: 0 and *runtime, *id
 * (malloc'ed) when one does ("/system.slice/docker-<64 hex>.scope" -> "docker", "<64 hex>"),
 * -ENOENT when none does, -ENOMEM.  The innermost container in the path wins.
 */
int cgroup_container(const char *cgroup, char **runtime, char **id);

/* "python3.11", "/usr/lib/libpython3.12.so.1.0" -> true */
bool looks_like_python(const char *path);
