/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The kernel's coredump socket protocol (core_pattern "@@/path", Linux 6.17+) and the pidfd
 * information that identifies the crashing task (Linux 6.16+).  Debian 12's linux-libc-dev (6.1)
 * predates both: the few definitions needed are carried here, each from the uapi header that
 * defines it (include/uapi/linux/coredump.h, include/uapi/linux/pidfd.h,
 * include/uapi/asm-generic/socket.h of Linux 6.18).  They are ABI: fixed sizes and values.
 */

#include <stdint.h>
#include <sys/ioctl.h>

/* asm-generic/socket.h (6.5+): a pidfd of the peer's thread-group leader */
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

/* linux/coredump.h: what the kernel offers (req.mask) and what the server answers (ack.mask) */
#define COREDUMP_KERNEL         (1ULL << 0)     /* the kernel writes the core to this socket */
#define COREDUMP_USERSPACE      (1ULL << 1)     /* the server writes it itself */
#define COREDUMP_REJECT         (1ULL << 2)     /* no core at all */
#define COREDUMP_WAIT           (1ULL << 3)     /* the task is held until the server closes */

struct coredump_req_v0 {
        uint32_t size;                          /* of the request the kernel sends (>= 16) */
        uint32_t size_ack;                      /* the largest ack it reads */
        uint64_t mask;                          /* the COREDUMP_* it supports */
};

struct coredump_ack_v0 {
        uint32_t size;                          /* of this ack */
        uint32_t spare;                         /* 0 */
        uint64_t mask;                          /* exactly one of KERNEL, USERSPACE, REJECT; WAIT may be added */
};

#define COREDUMP_REQ_SIZE_VER0 16u
#define COREDUMP_ACK_SIZE_VER0 16u

/* the kernel's answer to an ack: a 4-byte mark */
enum {
        COREDUMP_MARK_REQACK = 0,               /* accepted */
        COREDUMP_MARK_MINSIZE = 1,
        COREDUMP_MARK_MAXSIZE = 2,
        COREDUMP_MARK_UNSUPPORTED = 3,
        COREDUMP_MARK_CONFLICTING = 4,
};

/* linux/pidfd.h: PIDFD_GET_INFO, the 6.16-6.18 struct (PIDFD_INFO_SIZE_VER1, 72 bytes) */
#define PIDFD_INFO_PID          (1ULL << 0)
#define PIDFD_INFO_CREDS        (1ULL << 1)
#define PIDFD_INFO_CGROUPID     (1ULL << 2)
#define PIDFD_INFO_EXIT         (1ULL << 3)
#define PIDFD_INFO_COREDUMP     (1ULL << 4)

#define PIDFD_COREDUMPED        (1u << 0)       /* the task is dumping core: only the kernel connects so */
#define PIDFD_COREDUMP_SKIP     (1u << 1)
#define PIDFD_COREDUMP_USER     (1u << 2)       /* dumpable as SUID_DUMP_USER (1) */
#define PIDFD_COREDUMP_ROOT     (1u << 3)       /* dumpable as SUID_DUMP_ROOT (2) */

struct pidfd_info_v1 {
        uint64_t mask;
        uint64_t cgroupid;
        uint32_t pid, tgid, ppid;
        uint32_t ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
        int32_t exit_code;
        uint32_t coredump_mask;
        uint32_t spare1;
};

_Static_assert(sizeof(struct pidfd_info_v1) == 72, "PIDFD_INFO_SIZE_VER1");
_Static_assert(sizeof(struct coredump_req_v0) == COREDUMP_REQ_SIZE_VER0, "COREDUMP_REQ_SIZE_VER0");
_Static_assert(sizeof(struct coredump_ack_v0) == COREDUMP_ACK_SIZE_VER0, "COREDUMP_ACK_SIZE_VER0");

#define PIDFS_IOCTL_MAGIC 0xFF
#define PIDFD_GET_INFO_V1 _IOWR(PIDFS_IOCTL_MAGIC, 11, struct pidfd_info_v1)
