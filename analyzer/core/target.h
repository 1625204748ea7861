/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * target: the crashed process as the core lets us rebuild it.
 *
 * Memory comes from the core's dumped segments first and, for what the
 * kernel did not dump (read-only file mappings), from the mapped files on
 * disk.  A file is only used when its build-id matches the one the core
 * recorded in the file's first page; a mismatch is refused with a warning,
 * never silently used.  This is the one memory-access interface every
 * reader of Python state goes through.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core_file.h"
#include "elf_image.h"
#include "json.h"
#include "util.h"

struct module {
        const char *path;               /* as the core names it */
        uint64_t start, end;            /* lowest and highest address of its mappings */
        uint64_t base;                  /* address of file offset 0, or 0 when not mapped */
        struct elf_image *image;        /* the verified file on disk, once opened */
        int state;                      /* 0: not tried yet, 1: usable, <0: -errno */
        struct json_doc *package;       /* the verified file's package metadata note (a JSON
                                         * object), or NULL: none, or refused with a warning */
};

struct target_options {
        const char *executable;         /* overrides the executable named in the core */
        struct strv lib_search_paths;   /* directories searched for libraries by name */
        const char *lib_search_root;    /* a tree searched for libraries (moved cores) */
        struct strv binaries;           /* pairs: a path as the core names it, the file kept for it */
        const char *root;               /* the process's files are under this root (a live process's
                                         * /proc/PID/root: its container's files), or NULL */
};

#define TARGET_MAX_BINARIES 4096

struct target {
        struct core_file *core;
        const struct target_options *opts;
        struct module *modules;
        size_t n_modules;
        struct module *exe;             /* the module holding AT_ENTRY, or NULL */
        char *exe_display;              /* the executable path to show the user */
        struct strv warnings;
        /* a core without NT_FILE: the file mappings rebuilt from the loader's list, and their paths */
        struct core_mapping *loaded;
        size_t n_loaded, loaded_allocated;
        struct strv loader_paths;
        /* an allocation failed while the process was read: whatever took its place (an object
         * shown as unreadable, a stack cut short) would blame the core, so the analysis fails */
        bool out_of_memory;
};

/* For a reader whose allocation failed: marks the target (above) and returns -ENOMEM. */
static inline int target_out_of_memory(struct target *t) {
        t->out_of_memory = true;
        return -ENOMEM;
}

/* Reading more than this in one call is refused (-E2BIG): callers bound their sizes. */
#define TARGET_MAX_READ (64u << 20)

/*
 * Build the target over an opened core.  Fails (-ENOENT/-ENOEXEC/-EBADMSG,
 * with a one-line *error) only when the executable cannot be found or does
 * not match the core.  Libraries are looked for on first use: a missing one
 * leaves its undumped memory unreadable, one that exists but is refused
 * (another build, unreadable) also becomes a warning.
 */
int target_open(struct core_file *core, const struct target_options *opts,
                struct target **ret, const char **error);
void target_free(struct target *t);

/* Copy len bytes of the process's memory at addr: 0, or -EFAULT when any
 * byte is unavailable. */
int target_read(struct target *t, uint64_t addr, void *buf, size_t len);

static inline int target_read_u64(struct target *t, uint64_t addr, uint64_t *v) {
        return target_read(t, addr, v, sizeof(*v));
}

/* The module's verified ELF image (opened on first use, its package note read then), or NULL. */
struct elf_image *target_module_image(struct target *t, struct module *m);

/* Load bias of a module: runtime address = link-time address + bias. */
uint64_t target_module_bias(struct target *t, struct module *m);

/* The module whose mappings contain addr, or NULL. */
struct module *target_module_at(struct target *t, uint64_t addr);
