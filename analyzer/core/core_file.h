/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * core_file: an x86-64 ELF core, as the kernel wrote it.
 *
 * Opening a core validates its ELF header, program headers and notes, and
 * decodes the notes the analyzer needs: every thread's registers
 * (NT_PRSTATUS), the process (NT_PRPSINFO), the fatal signal (NT_SIGINFO),
 * the auxiliary vector (NT_AUXV) and the file mappings (NT_FILE).  Nothing
 * in a core is trusted: every count, size and offset is checked against the
 * file before use, and notes that do not fit are refused.
 *
 * The core's bytes come through a byte source, so a raw core and a stored
 * seekable-zstd core read the same way.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* x86-64 user_regs_struct indices */
enum {
        CORE_REG_R15, CORE_REG_R14, CORE_REG_R13, CORE_REG_R12, CORE_REG_RBP, CORE_REG_RBX, CORE_REG_R11, CORE_REG_R10,
        CORE_REG_R9, CORE_REG_R8, CORE_REG_RAX, CORE_REG_RCX, CORE_REG_RDX, CORE_REG_RSI, CORE_REG_RDI, CORE_REG_ORIG_RAX,
        CORE_REG_RIP, CORE_REG_CS, CORE_REG_EFLAGS, CORE_REG_RSP, CORE_REG_SS, CORE_REG_FS_BASE, CORE_REG_GS_BASE,
        CORE_REG_DS, CORE_REG_ES, CORE_REG_FS, CORE_REG_GS, CORE_REG_COUNT
};

struct core_thread {
        int32_t tid;
        int32_t cursig;                 /* pr_cursig: non-zero on the thread that took the signal */
        uint64_t regs[CORE_REG_COUNT];
};

struct core_process {
        bool present;                   /* an NT_PRPSINFO note was found */
        char state;                     /* pr_sname */
        bool zombie;
        int nice;
        int32_t pid, ppid, pgrp, sid;
        uint32_t uid, gid;
        char fname[17];                 /* NUL-terminated copies */
        char psargs[81];
};

struct core_signal {
        bool present;                   /* an NT_SIGINFO note was found */
        int32_t signo, code, err;
        uint64_t addr;                  /* si_addr, meaningful for fault signals */
        int32_t pid;                    /* si_pid, meaningful when code <= 0 */
        uint32_t uid;
};

struct core_segment {
        uint64_t vaddr, memsz;          /* the process's memory */
        uint64_t offset, filesz;        /* where the dumped part lies in the core */
        uint32_t flags;                 /* PF_R | PF_W | PF_X */
};

struct core_mapping {
        uint64_t start, end;            /* [start, end) in the process */
        uint64_t file_offset;           /* bytes */
        const char *path;               /* points into the core's notes; NUL-terminated */
};

/* Where a core's bytes come from: a raw file or a seekable zstd archive. */
struct byte_source {
        uint64_t size;
        /* Read exactly len bytes at off; 0, or -errno (-EIO past the end). */
        int (*pread)(void *ctx, void *buf, size_t len, uint64_t off);
        /* Direct pointer to len bytes at off when the source is mapped, else NULL. */
        const void *(*view)(void *ctx, size_t len, uint64_t off);
        void (*close)(void *ctx);
        void *ctx;
};

struct core_file {
        struct byte_source src;

        struct core_thread *threads;
        size_t n_threads;
        struct core_process process;
        struct core_signal signal;

        uint64_t *auxv;                 /* key/value pairs */
        size_t n_auxv;

        struct core_segment *segments;  /* sorted by vaddr, non-overlapping */
        size_t n_segments;

        struct core_mapping *mappings;  /* NT_FILE, in the kernel's order */
        size_t n_mappings;
        uint64_t page_size;

        uint64_t expected_size;         /* the size the program headers promise */
        bool truncated;                 /* the file is shorter than that: memory is missing */

        uint8_t *notes;                 /* the raw notes, owned (mappings point in here) */
        size_t notes_size;

        int32_t live_pid;               /* a running process read as a core (live_process.h), or 0 */
        bool live_stopped;              /* its threads were stopped while it was read */
        int64_t live_held_usec;         /* for how long (from the first stop to the resume), 0 unknown */
};

/* Limits that keep a hostile core from making us allocate or loop without end. */
#define CORE_MAX_NOTES_SIZE     (64u << 20)
#define CORE_MAX_SEGMENTS       (1u << 20)
#define CORE_MAX_THREADS        (1u << 16)
#define CORE_MAX_MAPPINGS       (1u << 20)

/*
 * Open the core at `path`.  On failure returns -errno and, when `error` is
 * non-NULL, a one-line description in a static buffer:
 *   -ENOENT/-EACCES/-EISDIR  the file cannot be opened as a regular file
 *   -ENOEXEC                 not an ELF core of this architecture
 *   -EBADMSG                 truncated or corrupt
 * Cost: reads the headers and notes only (the memory stays on disk).
 */
int core_file_open(const char *path, struct core_file **ret, const char **error);

/* Decode a notes blob into c (threads, process, signal, auxv, mappings).
 * Exposed for the unit tests and the fuzzer.  Returns 0 or -EBADMSG. */
int core_parse_notes(struct core_file *c, const uint8_t *notes, size_t size, const char **error);

void core_file_free(struct core_file *c);

/* The value of auxv entry `key` (AT_*), or 0 when absent. */
uint64_t core_auxv(const struct core_file *c, uint64_t key);

/* The thread that took the fatal signal (the kernel writes it first); NULL for a live process. */
const struct core_thread *core_crashed_thread(const struct core_file *c);

/* The NT_FILE mapping containing addr, or NULL. */
const struct core_mapping *core_mapping_at(const struct core_file *c, uint64_t addr);

/* Name of a signal ("SIGSEGV"), or NULL for an unknown number. */
const char *signal_name(int signo);
