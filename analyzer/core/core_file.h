/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * core_file: an ELF core of an x86-64 or aarch64 Linux process, as the
 * kernel (or qemu-user, or a tool) wrote it.
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

/*
 * What differs between the architectures a core can come from: the layout of
 * NT_PRSTATUS and the registers in it, the thread pointer, and glibc's
 * struct pthread.  Everything else (the other notes, CPython's structures but
 * one offset, see py_layout.c) is the same LP64 little-endian layout.
 */
struct core_arch {
        uint16_t machine;               /* EM_X86_64, EM_AARCH64 */
        const char *name;               /* "x86-64", "aarch64" */
        size_t prstatus_size;           /* the note's size; pr_reg is at 112 in both */
        size_t n_regs;                  /* 64-bit words of pr_reg */
        unsigned pc_reg, sp_reg;        /* their indices in pr_reg */
        unsigned dwarf_sp;              /* the stack pointer's DWARF register number */
        int tp_reg;                     /* the thread pointer's index in pr_reg, or -1: a note (NT_ARM_TLS) */
        int64_t pthread_from_tp;        /* glibc: pthread_self() = thread pointer + this */
        uint32_t pthread_tid;           /* glibc: offset of the kernel tid in struct pthread */
        uint32_t red_zone;              /* bytes below sp a leaf function may use */
};

extern const struct core_arch core_arch_x86_64, core_arch_aarch64;

/* The architecture of ELF machine `machine`, or NULL when the analyzer does not read it. */
const struct core_arch *core_arch_of(uint16_t machine);

/* A name for any ELF machine ("riscv64", "ppc64le"...), for the one-line refusal. */
const char *core_machine_name(uint16_t machine, bool big_endian, bool is64);

#define CORE_MAX_REGS 34                /* aarch64: x0-x30, sp, pc, pstate */

/* x86-64 user_regs_struct indices */
enum {
        CORE_REG_R15, CORE_REG_R14, CORE_REG_R13, CORE_REG_R12, CORE_REG_RBP, CORE_REG_RBX, CORE_REG_R11, CORE_REG_R10,
        CORE_REG_R9, CORE_REG_R8, CORE_REG_RAX, CORE_REG_RCX, CORE_REG_RDX, CORE_REG_RSI, CORE_REG_RDI, CORE_REG_ORIG_RAX,
        CORE_REG_RIP, CORE_REG_CS, CORE_REG_EFLAGS, CORE_REG_RSP, CORE_REG_SS, CORE_REG_FS_BASE, CORE_REG_GS_BASE,
        CORE_REG_DS, CORE_REG_ES, CORE_REG_FS, CORE_REG_GS, CORE_REG_COUNT
};

/* aarch64 user_pt_regs indices: x0-x30 are 0-30 */
enum { CORE_A64_FP = 29, CORE_A64_LR = 30, CORE_A64_SP = 31, CORE_A64_PC = 32, CORE_A64_PSTATE = 33 };

struct core_thread {
        int32_t tid;
        int32_t cursig;                 /* pr_cursig: non-zero on the thread that took the signal */
        uint64_t regs[CORE_MAX_REGS];   /* pr_reg, in the core's architecture's layout */
        uint64_t pc, sp;
        uint64_t tp;                    /* the thread pointer (fs base, tpidr_el0), 0 when unknown */
};

/* Set t's registers from pr_reg (a->n_regs words, in a's layout): with its pc, its sp and, where
 * pr_reg holds it, its thread pointer.  A core's NT_PRSTATUS and a stopped thread's regset alike. */
void core_thread_set_regs(const struct core_arch *a, struct core_thread *t, const uint64_t *pr_reg);

/* glibc's pthread_t of a thread, from its thread pointer; 0 when that is unknown. */
static inline uint64_t core_thread_pthread(const struct core_arch *a, const struct core_thread *t) {
        return t->tp ? t->tp + (uint64_t)a->pthread_from_tp : 0;
}

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
        const struct core_arch *arch;   /* never NULL once opened */
        uint64_t pac_insn_mask;         /* aarch64: the bits pointer authentication puts in return
                                         * addresses (NT_ARM_PAC_MASK), 0 when the core has none */

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

/* Decode a notes blob into c (threads, process, signal, auxv, mappings), in the layout of
 * c->arch (x86-64 when NULL).  Exposed for the unit tests and the fuzzer.  Returns 0 or -EBADMSG. */
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
