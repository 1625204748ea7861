/* SPDX-License-Identifier: MIT */
/*
 * native_unwind: every thread's C/C++/Rust frames, with libdwfl.
 *
 * libdwfl unwinds through our own callbacks: memory comes from the target
 * (core segments, then build-id-checked files), registers from the core's
 * NT_PRSTATUS notes, and only the modules the target verified are reported
 * to it.  Call-frame information comes from the files on disk and their
 * separate debug files (by build-id, /usr/lib/debug, or DEBUGINFOD_URLS
 * through libdwfl's standard lookup).  Symbols and lines are looked up only
 * for the pcs of the frames found.
 */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <string.h>

#include "analysis.h"
#include "debug_cache.h"
#include "native_unwind.h"
#include "stack_merge.h"
#include "symbol_index.h"

#define MAX_NATIVE_FRAMES 65536
#define MAX_INLINE_DEPTH 64

/* The C++ runtime's demangler; Rust's legacy symbols are Itanium-mangled too. */
extern char *__cxa_demangle(const char *mangled, char *buf, size_t *len, int *status);

/*
 * A decompressed copy from the cache when there is one; otherwise the
 * standard lookup (debuglink, /usr/lib/debug/.build-id, debuginfod), and a
 * copy for next time.  The cache must be asked first: when the standard
 * lookup finds a file by build-id, libdwfl keeps the ELF it opened itself,
 * whatever descriptor we hand back.
 */
static int find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname, GElf_Addr base,
                          const char *file_name, const char *debuglink_file, GElf_Word debuglink_crc,
                          char **debuginfo_file_name) {
        const unsigned char *id;
        GElf_Addr vaddr;
        int fd, len;

        len = dwfl_module_build_id(mod, &id, &vaddr);
        if (len > 0) {
                fd = debug_cache_open(id, (size_t)len, debuginfo_file_name);
                if (fd >= 0)
                        return fd;
        }
        fd = dwfl_standard_find_debuginfo(mod, userdata, modname, base, file_name, debuglink_file,
                                          debuglink_crc, debuginfo_file_name);
        if (fd >= 0 && len > 0)
                debug_cache_store(fd, id, (size_t)len);
        return fd;
}

static const Dwfl_Callbacks dwfl_callbacks = {
        .find_elf = dwfl_build_id_find_elf,
        .find_debuginfo = find_debuginfo,
};

/* ---- thread callbacks: the core is the process; thread args point at its NT_PRSTATUS threads ---- */

/* What libdwfl hands every callback: the process, and one of these per thread. */
struct process_arg;
struct thread_arg {
        const struct core_thread *t;
        const struct process_arg *p;
};

struct process_arg {
        const struct core_file *core;
        struct target *target;
        struct thread_arg *threads;     /* one per core thread */
        uint64_t pac_mask;              /* aarch64: the bits a signed return address carries */
};

static pid_t next_thread(Dwfl *dwfl, void *arg, void **thread_argp) {
        struct process_arg *p = arg;
        struct thread_arg *t = *thread_argp;

        t = t ? t + 1 : p->threads;
        if (t >= p->threads + p->core->n_threads)
                return 0;
        *thread_argp = t;
        return t->t->tid;
}

static bool get_thread(Dwfl *dwfl, pid_t tid, void *arg, void **thread_argp) {
        struct process_arg *p = arg;

        for (size_t i = 0; i < p->core->n_threads; i++)
                if (p->threads[i].t->tid == tid) {
                        *thread_argp = &p->threads[i];
                        return true;
                }
        return false;
}

/*
 * aarch64 pointer authentication: a return address saved by a function built
 * with -mbranch-protection carries a signature in its top bits.  libdwfl
 * 0.188 does not remove it, so a signed address would match no module and
 * the unwind would stop.  A word with those bits set whose rest is an
 * address in a module is taken for a signed code address and cleared; the
 * stack words CFI restores registers from all come through here.
 */
static uint64_t strip_pac(Dwfl *dwfl, const struct process_arg *p, uint64_t v) {
        if (!p->pac_mask || !(v & p->pac_mask) || !dwfl_addrmodule(dwfl, v & ~p->pac_mask))
                return v;
        return v & ~p->pac_mask;
}

static bool memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *arg) {
        struct process_arg *p = arg;
        uint64_t v;

        if (target_read_u64(p->target, addr, &v) < 0)
                return false;
        *result = strip_pac(dwfl, p, v);
        return true;
}

static bool set_initial_registers(Dwfl_Thread *thread, void *thread_arg) {
        const struct thread_arg *ta = thread_arg;
        const struct core_thread *t = ta->t;

        if (ta->p->core->arch->machine == EM_AARCH64) {
                /* DWARF numbering on aarch64: x0-x30, sp; the pc has no DWARF number */
                Dwarf_Word regs[32];

                memcpy(regs, t->regs, sizeof(regs));
                regs[CORE_A64_LR] = strip_pac(dwfl_thread_dwfl(thread), ta->p, regs[CORE_A64_LR]);
                if (!dwfl_thread_state_registers(thread, 0, 32, regs))
                        return false;
        } else {
                /* DWARF numbering on x86-64: rax rdx rcx rbx rsi rdi rbp rsp r8-r15, then the return address */
                Dwarf_Word regs[17] = {
                        t->regs[CORE_REG_RAX], t->regs[CORE_REG_RDX], t->regs[CORE_REG_RCX], t->regs[CORE_REG_RBX],
                        t->regs[CORE_REG_RSI], t->regs[CORE_REG_RDI], t->regs[CORE_REG_RBP], t->regs[CORE_REG_RSP],
                        t->regs[CORE_REG_R8], t->regs[CORE_REG_R9], t->regs[CORE_REG_R10], t->regs[CORE_REG_R11],
                        t->regs[CORE_REG_R12], t->regs[CORE_REG_R13], t->regs[CORE_REG_R14], t->regs[CORE_REG_R15],
                        t->regs[CORE_REG_RIP],
                };

                if (!dwfl_thread_state_registers(thread, 0, 17, regs))
                        return false;
        }
        dwfl_thread_state_register_pc(thread, t->pc);
        return true;
}

static const Dwfl_Thread_Callbacks thread_callbacks = {
        .next_thread = next_thread,
        .get_thread = get_thread,
        .memory_read = memory_read,
        .set_initial_registers = set_initial_registers,
};

/* ---- symbols ---- */

/* C++ and Rust names read as their authors wrote them; Rust's "::h<16 hex>" hash is dropped. */
static char *demangle(const char *name) {
        char *d = NULL;
        int status;

        if (name[0] == '_' && name[1] == 'Z')
                d = __cxa_demangle(name, NULL, NULL, &status);
        if (!d)
                return strdup(name);
        size_t n = strlen(d);
        if (n > 19 && memcmp(d + n - 19, "::h", 3) == 0 && strspn(d + n - 16, "0123456789abcdef") == 16)
                d[n - 19] = 0;
        return d;
}

/* The name of a subprogram or inlined-subroutine DIE, through its abstract origin. */
static const char *die_name(Dwarf_Die *die) {
        Dwarf_Attribute attr;
        const char *name;

        name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &attr));
        if (!name)
                name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr));
        if (!name)
                name = dwarf_diename(die);
        if (!name) {
                Dwarf_Die origin;
                if (dwarf_attr_integrate(die, DW_AT_abstract_origin, &attr) &&
                    dwarf_formref_die(&attr, &origin))
                        name = dwarf_diename(&origin);
        }
        return name;
}

/* The call site (file, line) recorded on an inlined-subroutine DIE. */
static void call_site(Dwarf_Die *cudie, Dwarf_Die *inlined, const char **file, int *line) {
        Dwarf_Attribute attr;
        Dwarf_Word idx, ln;
        Dwarf_Files *files;
        size_t nfiles;

        *file = NULL;
        *line = 0;
        if (dwarf_formudata(dwarf_attr(inlined, DW_AT_call_line, &attr), &ln) == 0)
                *line = (int)ln;
        if (dwarf_formudata(dwarf_attr(inlined, DW_AT_call_file, &attr), &idx) == 0 &&
            dwarf_getsrcfiles(cudie, &files, &nfiles) == 0 && idx < nfiles)
                *file = dwarf_filesrc(files, idx, NULL, NULL);
}

/* ---- scopes: the inlined calls and the function that hold a pc ---- */

/*
 * dwarf_getscopes() and dwarf_getscopes_die() walk a unit's DIE tree for
 * every pc: the second walk, and the search for an inline's abstract
 * origin, without pruning.  On CPython's big units (ceval.c) that was a
 * third of a --native run.  So each unit is walked once, in libdw's order
 * and by its rules (which DIEs may hold scopes; an imported unit's children
 * walked in place of it), into a preorder list, and both questions are
 * answered from the list with the same results.  A unit whose walk fails or
 * is too big is left to libdw.
 */
#define SCOPE_MAX_NODES (1u << 20)      /* DIEs of one unit's walk */
#define SCOPE_MAX_DEPTH 512             /* nesting of DIEs and imports */
#define SCOPE_MAX_UNITS 256
#define SCOPE_NONE UINT32_MAX

struct scope_node {
        Dwarf_Die die;
        uint32_t parent;                /* the node whose children it was walked among */
        uint32_t end;                   /* the index just past its subtree */
};

struct scope_unit {
        void *root;                     /* the unit DIE's address: the key */
        struct scope_node *nodes;       /* preorder, [0] the unit DIE */
        size_t n, allocated;
        uint32_t *first;                /* DIE address -> 1 + its first node, 0 for an empty slot */
        size_t hash_size;               /* a power of two */
        bool failed;
};

/* A unit's top-level children, with the address ranges dwarf_haspc() would read for them. */
struct scope_top_child {
        Dwarf_Die die;
        uint32_t first_range, n_ranges; /* in scope_top.ranges */
        int8_t rest;                    /* dwarf_haspc() once past them: 0, -1, or SCOPE_ASK_HASPC */
};

struct scope_top {
        void *root;                     /* the unit DIE's address: the key */
        struct scope_top_child *children;       /* by increasing DIE address, the walk's order */
        size_t n, allocated;
        Dwarf_Addr (*ranges)[2];
        size_t n_ranges, ranges_allocated;
        bool failed;                    /* an imported unit may be met, or the walk failed */
};

struct scope_cache {
        struct scope_unit units[SCOPE_MAX_UNITS];
        size_t n;
        struct scope_top tops[SCOPE_MAX_UNITS];
        size_t n_tops;
};

/* The DIEs libdw's scope walk descends into. */
static bool may_hold_scopes(Dwarf_Die *die) {
        switch (dwarf_tag(die)) {
        case DW_TAG_compile_unit:
        case DW_TAG_module:
        case DW_TAG_lexical_block:
        case DW_TAG_with_stmt:
        case DW_TAG_catch_block:
        case DW_TAG_try_block:
        case DW_TAG_entry_point:
        case DW_TAG_inlined_subroutine:
        case DW_TAG_subprogram:
        case DW_TAG_namespace:
        case DW_TAG_class_type:
        case DW_TAG_structure_type:
                return true;
        default:
                return false;
        }
}

/* An imported unit being walked, to refuse import cycles as libdw does. */
struct import_link {
        void *addr;
        const struct import_link *up;
};

static uint32_t add_node(struct scope_unit *u, const Dwarf_Die *die, uint32_t parent) {
        if (u->n >= SCOPE_MAX_NODES ||
            grow_array(&u->nodes, &u->allocated, u->n + 1, sizeof(*u->nodes)) < 0)
                return SCOPE_NONE;
        u->nodes[u->n] = (struct scope_node) { .die = *die, .parent = parent, .end = (uint32_t)u->n + 1 };
        return (uint32_t)u->n++;
}

/* The children of node `parent`, the first being `child`, in the order of libdw's walk: 0 or -1. */
static int index_children(struct scope_unit *u, uint32_t parent, Dwarf_Die child,
                          const struct import_link *imports, unsigned depth) {
        int r;

        if (depth > SCOPE_MAX_DEPTH)
                return -1;
        do {
                while (dwarf_tag(&child) == DW_TAG_imported_unit) {
                        Dwarf_Die imported = child, first;
                        Dwarf_Attribute attr;

                        if (dwarf_formref_die(dwarf_attr(&imported, DW_AT_import, &attr), &first) &&
                            dwarf_tag(&first) != DW_TAG_compile_unit && dwarf_child(&first, &first) == 0) {
                                struct import_link link = { .addr = imported.addr, .up = imports };

                                for (const struct import_link *l = imports; l; l = l->up)
                                        if (l->addr == imported.addr)
                                                return -1;
                                if (index_children(u, parent, first, &link, depth + 1) < 0)
                                        return -1;
                        }
                        r = dwarf_siblingof(&imported, &child);
                        if (r != 0)
                                return r < 0 ? -1 : 0;
                }

                uint32_t i = add_node(u, &child, parent);
                if (i == SCOPE_NONE)
                        return -1;
                if (may_hold_scopes(&child) && dwarf_haschildren(&child)) {
                        Dwarf_Die grandchild;

                        r = dwarf_child(&child, &grandchild);
                        if (r < 0 || (r == 0 && index_children(u, i, grandchild, imports, depth + 1) < 0))
                                return -1;
                }
                u->nodes[i].end = (uint32_t)u->n;
        } while ((r = dwarf_siblingof(&child, &child)) == 0);
        return r < 0 ? -1 : 0;
}

static size_t addr_hash(const void *addr, size_t size) {
        return (size_t)(((uintptr_t)addr * 0x9E3779B97F4A7C15ULL) >> 20) & (size - 1);
}

static int index_unit(struct scope_unit *u, Dwarf_Die *root) {
        Dwarf_Die child;
        int r;

        u->root = root->addr;
        if (add_node(u, root, SCOPE_NONE) == SCOPE_NONE)
                return -1;
        r = dwarf_child(root, &child);
        if (r < 0 || (r == 0 && index_children(u, 0, child, NULL, 1) < 0))
                return -1;
        u->nodes[0].end = (uint32_t)u->n;

        u->hash_size = 1;
        while (u->hash_size < u->n * 2)
                u->hash_size *= 2;
        u->first = calloc(u->hash_size, sizeof(*u->first));
        if (!u->first)
                return -1;
        for (size_t i = 0; i < u->n; i++) {
                size_t h = addr_hash(u->nodes[i].die.addr, u->hash_size);

                while (u->first[h] && u->nodes[u->first[h] - 1].die.addr != u->nodes[i].die.addr)
                        h = (h + 1) & (u->hash_size - 1);
                if (!u->first[h])
                        u->first[h] = (uint32_t)i + 1;
        }
        return 0;
}

/* The walked unit whose DIE is root, or NULL when it cannot be walked (then ask libdw). */
static struct scope_unit *scope_unit(struct scope_cache *c, Dwarf_Die *root) {
        struct scope_unit *u;

        for (size_t i = 0; i < c->n; i++)
                if (c->units[i].root == root->addr)
                        return c->units[i].failed ? NULL : &c->units[i];
        if (c->n == SCOPE_MAX_UNITS)
                return NULL;
        u = &c->units[c->n++];
        if (index_unit(u, root) < 0) {
                free(u->nodes);
                free(u->first);
                *u = (struct scope_unit) { .root = root->addr, .failed = true };
                return NULL;
        }
        return u;
}

/* The first node of DIE addr in the walk, or SCOPE_NONE. */
static uint32_t scope_find(const struct scope_unit *u, const void *addr) {
        for (size_t h = addr_hash(addr, u->hash_size); u->first[h]; h = (h + 1) & (u->hash_size - 1))
                if (u->nodes[u->first[h] - 1].die.addr == addr)
                        return u->first[h] - 1;
        return SCOPE_NONE;
}

static void scope_cache_free(struct scope_cache *c) {
        for (size_t i = 0; i < c->n; i++) {
                free(c->units[i].nodes);
                free(c->units[i].first);
        }
        for (size_t i = 0; i < c->n_tops; i++) {
                free(c->tops[i].children);
                free(c->tops[i].ranges);
        }
}

/* The walked unit holding die (its unit DIE found as libdw's walks find it), or NULL. */
static struct scope_unit *unit_of(struct scope_cache *c, Dwarf_Die *die) {
        Dwarf_Die root;

        if (!dwarf_diecu(die, &root, NULL, NULL))
                return NULL;
        return scope_unit(c, &root);
}

/*
 * What dwarf_getscopes(cudie, pc) and then dwarf_getscopes_die() on its
 * innermost scope give: *chain (malloc'ed), the innermost DIE holding pc and
 * its enclosing DIEs out to the unit DIE, and their count; 0 when pc is in
 * no scope, -1 on error.  Answered from the walked units; 1 in *asked_libdw
 * when a unit could not be walked or a range could not be read, and the
 * caller must ask libdw.
 */
static int scope_chain_indexed(struct scope_cache *c, Dwarf_Die *cudie, Dwarf_Addr pc, Dwarf_Die **chain,
                               bool *asked_libdw) {
        struct scope_unit *u = scope_unit(c, cudie), *du;
        uint32_t cur = 0, inner = SCOPE_NONE, inlined = SCOPE_NONE, d, k;
        size_t i;
        int depth = 0;

        *asked_libdw = !u;
        if (!u)
                return -1;
        /* dwarf_getscopes' walk: into the first child holding pc, down to one with none */
        i = 1;
        while (inner == SCOPE_NONE) {
                if (i >= u->nodes[cur].end) {
                        if (cur == 0)
                                return 0;
                        inner = cur;
                        break;
                }
                int has = dwarf_haspc(&u->nodes[i].die, pc);
                if (has < 0) {
                        *asked_libdw = true;    /* libdw tells benign errors from others */
                        return -1;
                }
                if (has == 0) {
                        i = u->nodes[i].end;
                        continue;
                }
                cur = (uint32_t)i;
                if (dwarf_tag(&u->nodes[cur].die) == DW_TAG_inlined_subroutine)
                        inlined = cur;
                i = cur + 1;
        }
        if (inlined != SCOPE_NONE) {
                /* dwarf_getscopes also wants the inline's abstract origin found by a walk of its unit */
                Dwarf_Attribute attr;
                Dwarf_Die origin;

                if (!dwarf_formref_die(dwarf_attr(&u->nodes[inlined].die, DW_AT_abstract_origin, &attr),
                                       &origin))
                        return -1;
                du = unit_of(c, &origin);
                if (!du) {
                        *asked_libdw = true;
                        return -1;
                }
                if (scope_find(du, origin.addr) == SCOPE_NONE)
                        return 0;
        }
        /* dwarf_getscopes_die: the first place the walk of the innermost DIE's own unit meets it */
        du = unit_of(c, &u->nodes[inner].die);
        if (!du) {
                *asked_libdw = true;
                return -1;
        }
        d = scope_find(du, u->nodes[inner].die.addr);
        if (d == SCOPE_NONE)
                return 0;
        for (k = d; k != SCOPE_NONE; k = du->nodes[k].parent)
                depth++;
        *chain = malloc(depth * sizeof(**chain));
        if (!*chain)
                return -1;
        depth = 0;
        for (k = d; k != SCOPE_NONE; k = du->nodes[k].parent)
                (*chain)[depth++] = du->nodes[k].die;
        return depth;
}

/*
 * The walk above visits every DIE of a unit once; a pc needs only the DIEs
 * that hold it.  In a unit that cannot import another (no imported-unit
 * tag in its abbreviations), each DIE is met once, at its place in the
 * tree, so the walk's answer is the path down the tree through the first
 * child holding pc at each level, and dwarf_getscopes_die()'s chain is that
 * path.  The unit's top level (thousands of types and functions) is read
 * once with its ranges; below it only the children along the path are
 * read.  An inline's abstract origin is known to be in its unit's walk when
 * it is a top-level DIE of that unit; in every other case the index above
 * answers.
 */
#define SCOPE_ASK (-2)
#define SCOPE_ASK_HASPC 2
#define SCOPE_MAX_RANGES 64             /* of one top-level DIE kept; past them dwarf_haspc answers */
#define SCOPE_MAX_ABBREVS (1u << 20)

/* Whether the unit of root may hold an imported unit (or its abbreviations cannot be read). */
static bool may_import(Dwarf_Die *root) {
        Dwarf_Off off = 0;

        for (unsigned i = 0; i < SCOPE_MAX_ABBREVS; i++) {
                size_t len = 0;
                Dwarf_Abbrev *a = dwarf_getabbrev(root, off, &len);

                if (a == DWARF_END_ABBREV)
                        return false;
                if (!a || len == 0 || dwarf_getabbrevtag(a) == DW_TAG_imported_unit)
                        return true;
                off += len;
        }
        return true;
}

static int read_top_child(struct scope_top *t, Dwarf_Die *die) {
        struct scope_top_child *k;
        Dwarf_Addr base, begin, end;
        ptrdiff_t off = 0;

        if (t->n >= SCOPE_MAX_NODES || grow_array(&t->children, &t->allocated, t->n + 1, sizeof(*t->children)) < 0)
                return -1;
        k = &t->children[t->n++];
        *k = (struct scope_top_child) { .die = *die, .first_range = (uint32_t)t->n_ranges };
        while ((off = dwarf_ranges(die, off, &base, &begin, &end)) > 0) {
                if (k->n_ranges == SCOPE_MAX_RANGES) {
                        k->rest = SCOPE_ASK_HASPC;
                        return 0;
                }
                if (t->n_ranges >= SCOPE_MAX_NODES ||
                    grow_array(&t->ranges, &t->ranges_allocated, t->n_ranges + 1, sizeof(*t->ranges)) < 0)
                        return -1;
                t->ranges[t->n_ranges][0] = begin;
                t->ranges[t->n_ranges++][1] = end;
                k->n_ranges++;
        }
        k->rest = off < 0 ? -1 : 0;
        return 0;
}

static int read_top(struct scope_top *t, Dwarf_Die *root) {
        Dwarf_Die child;
        int r;

        if (may_import(root))
                return -1;
        r = dwarf_child(root, &child);
        while (r == 0) {
                if (t->n > 0 && (uintptr_t)child.addr <= (uintptr_t)t->children[t->n - 1].die.addr)
                        return -1;
                if (read_top_child(t, &child) < 0)
                        return -1;
                r = dwarf_siblingof(&child, &child);
        }
        return r < 0 ? -1 : 0;
}

/* The read top level of the unit whose DIE is root, or NULL (then use the index). */
static struct scope_top *scope_top(struct scope_cache *c, Dwarf_Die *root) {
        struct scope_top *t;

        for (size_t i = 0; i < c->n_tops; i++)
                if (c->tops[i].root == root->addr)
                        return c->tops[i].failed ? NULL : &c->tops[i];
        if (c->n_tops == SCOPE_MAX_UNITS)
                return NULL;
        t = &c->tops[c->n_tops++];
        t->root = root->addr;
        if (read_top(t, root) < 0) {
                free(t->children);
                free(t->ranges);
                *t = (struct scope_top) { .root = root->addr, .failed = true };
                return NULL;
        }
        return t;
}

/* dwarf_haspc() of a top-level child, from its kept ranges. */
static int top_haspc(const struct scope_top *t, struct scope_top_child *k, Dwarf_Addr pc) {
        for (uint32_t i = k->first_range; i < k->first_range + k->n_ranges; i++)
                if (pc >= t->ranges[i][0] && pc < t->ranges[i][1])
                        return 1;
        return k->rest == SCOPE_ASK_HASPC ? dwarf_haspc(&k->die, pc) : k->rest;
}

/* Whether die is a top-level child of the read unit t. */
static bool top_holds(const struct scope_top *t, const void *addr) {
        size_t lo = 0, hi = t->n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if ((uintptr_t)t->children[mid].die.addr < (uintptr_t)addr)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo < t->n && t->children[lo].die.addr == addr;
}

/* scope_chain's answer from the DIEs along the path to pc, or SCOPE_ASK. */
static int scope_chain_cheap(struct scope_cache *c, Dwarf_Die *cudie, Dwarf_Addr pc, Dwarf_Die **chain) {
        Dwarf_Die path[SCOPE_MAX_DEPTH];
        size_t depth = 0, inlined = SIZE_MAX;
        struct scope_top *t = scope_top(c, cudie), *ot;
        Dwarf_Die child, root;
        int r;

        if (!t)
                return SCOPE_ASK;
        for (size_t i = 0; i < t->n && depth == 0; i++) {
                r = top_haspc(t, &t->children[i], pc);
                if (r < 0)
                        return SCOPE_ASK;
                if (r > 0)
                        path[depth++] = t->children[i].die;
        }
        if (depth == 0)
                return 0;
        /* down through the first child holding pc, while the DIE may hold scopes */
        while (may_hold_scopes(&path[depth - 1]) && dwarf_haschildren(&path[depth - 1])) {
                r = dwarf_child(&path[depth - 1], &child);
                while (r == 0) {
                        if (dwarf_tag(&child) == DW_TAG_imported_unit)
                                return SCOPE_ASK;
                        int has = dwarf_haspc(&child, pc);
                        if (has < 0)
                                return SCOPE_ASK;
                        if (has > 0)
                                break;
                        r = dwarf_siblingof(&child, &child);
                }
                if (r < 0)
                        return SCOPE_ASK;
                if (r > 0)
                        break;
                if (depth == SCOPE_MAX_DEPTH - 1)
                        return SCOPE_ASK;
                path[depth++] = child;
        }
        for (size_t i = 0; i < depth; i++)
                if (dwarf_tag(&path[i]) == DW_TAG_inlined_subroutine)
                        inlined = i;
        if (inlined != SIZE_MAX) {
                Dwarf_Attribute attr;
                Dwarf_Die origin;

                if (!dwarf_formref_die(dwarf_attr(&path[inlined], DW_AT_abstract_origin, &attr), &origin) ||
                    !dwarf_diecu(&origin, &root, NULL, NULL))
                        return SCOPE_ASK;
                ot = scope_top(c, &root);
                if (!ot || !top_holds(ot, origin.addr))
                        return SCOPE_ASK;
        }
        *chain = malloc((depth + 1) * sizeof(**chain));
        if (!*chain)
                return SCOPE_ASK;
        for (size_t i = 0; i < depth; i++)
                (*chain)[i] = path[depth - 1 - i];
        (*chain)[depth] = *cudie;
        return (int)depth + 1;
}

static int scope_chain(struct scope_cache *c, Dwarf_Die *cudie, Dwarf_Addr pc, Dwarf_Die **chain,
                       bool *asked_libdw) {
        int r = scope_chain_cheap(c, cudie, pc, chain);

        *asked_libdw = false;
        return r != SCOPE_ASK ? r : scope_chain_indexed(c, cudie, pc, chain, asked_libdw);
}

/* Where the frames for one pc were first written: the same pc recurs (eval loops, recursion). */
struct memo_slot {
        uint64_t key;                   /* pc * 2 + activation, 0 when empty */
        size_t thread, start, count;
};

struct memo {
        struct memo_slot *slots;
        size_t n, cap;
};

struct unwind_ctx {
        struct analysis *a;
        struct thread_info *th;
        size_t thread;                  /* th's index in a->threads */
        Dwfl *dwfl;
        struct memo *memo;
        struct scope_cache *scopes;
        struct symbol_index *symbols;
        int error;
};

static struct memo_slot *memo_find(struct memo *m, uint64_t key) {
        if (!m->cap)
                return NULL;
        for (size_t h = (key * 0x9E3779B97F4A7C15ULL) >> 40 & (m->cap - 1); m->slots[h].key;
             h = (h + 1) & (m->cap - 1))
                if (m->slots[h].key == key)
                        return &m->slots[h];
        return NULL;
}

static void memo_add(struct memo *m, struct memo_slot slot) {
        if ((m->n + 1) * 2 > m->cap) {
                struct memo bigger = { .cap = m->cap ? m->cap * 2 : 256 };

                bigger.slots = calloc(bigger.cap, sizeof(*bigger.slots));
                if (!bigger.slots)
                        return;  /* only a cache */
                for (size_t i = 0; i < m->cap; i++)
                        if (m->slots[i].key) {
                                size_t h = (m->slots[i].key * 0x9E3779B97F4A7C15ULL) >> 40 & (bigger.cap - 1);
                                while (bigger.slots[h].key)
                                        h = (h + 1) & (bigger.cap - 1);
                                bigger.slots[h] = m->slots[i];
                        }
                free(m->slots);
                bigger.n = m->n;
                *m = bigger;
        }
        size_t h = (slot.key * 0x9E3779B97F4A7C15ULL) >> 40 & (m->cap - 1);
        while (m->slots[h].key)
                h = (h + 1) & (m->cap - 1);
        m->slots[h] = slot;
        m->n++;
}

static int push_native(struct thread_info *th, uint64_t pc, const char *function, const char *file,
                       int line, const char *library, bool inlined) {
        struct native_frame_info *f;

        if (grow_array(&th->native, &th->native_allocated, th->n_native + 1, sizeof(*th->native)) < 0)
                return -ENOMEM;
        f = &th->native[th->n_native];
        *f = (struct native_frame_info) {
                .pc = pc, .line = line, .library = library, .inlined = inlined,
        };
        f->function = function ? demangle(function) : NULL;
        f->file = file ? strdup(file) : NULL;
        if ((function && !f->function) || (file && !f->file)) {
                free(f->function);
                free(f->file);
                return -ENOMEM;
        }
        th->n_native++;
        return 0;
}

/* The library name to print: the file the core mapped at pc. */
static const char *library_of(struct analysis *a, uint64_t pc) {
        struct module *m = target_module_at(a->target, pc);
        return m ? path_base_name(m->path) : NULL;
}

/*
 * One physical frame becomes one or more entries, innermost first: each
 * inlined call that contains pc (its own line is the pc's, or the call site
 * of the inline nested in it), then the real function (named from the ELF
 * symbol table, so versioned glibc names read "pthread_kill@@GLIBC_2.34").
 */
static int symbolize_fresh(struct unwind_ctx *u, uint64_t pc, bool activation) {
        Dwarf_Addr adj = activation ? pc : pc - 1, bias;
        Dwfl_Module *mod = dwfl_addrmodule(u->dwfl, adj);
        const char *library = library_of(u->a, adj);
        const char *symname = NULL, *file = NULL;
        int line = 0, r;

        if (mod) {
                Dwfl_Line *dl;

                symname = symbol_index_name(u->symbols, mod, adj);
                dl = dwfl_module_getsrc(mod, adj);
                if (dl)
                        file = dwfl_lineinfo(dl, NULL, &line, NULL, NULL, NULL);

                Dwarf_Die *cudie = dwfl_module_addrdie(mod, adj, &bias);
                Dwarf_Die *scopes = NULL, *chain = NULL;
                bool ask_libdw = false;
                /* the concrete nesting of the innermost scope: inlined calls inside out, then the function */
                int m = cudie ? scope_chain(u->scopes, cudie, adj - bias, &chain, &ask_libdw) : 0;
                if (ask_libdw) {
                        int n = dwarf_getscopes(cudie, adj - bias, &scopes);
                        m = n > 0 ? dwarf_getscopes_die(&scopes[0], &chain) : 0;
                }
                const char *cur_file = file;
                int cur_line = line;
                for (int i = 0; i < m && i < MAX_INLINE_DEPTH; i++) {
                        int tag = dwarf_tag(&chain[i]);

                        if (tag == DW_TAG_inlined_subroutine) {
                                r = push_native(u->th, pc, die_name(&chain[i]), cur_file, cur_line, library, true);
                                if (r < 0) {
                                        free(chain);
                                        free(scopes);
                                        return r;
                                }
                                call_site(cudie, &chain[i], &cur_file, &cur_line);
                        } else if (tag == DW_TAG_subprogram) {
                                if (!symname)
                                        symname = die_name(&chain[i]);
                                break;
                        }
                }
                free(chain);
                free(scopes);
                file = cur_file;
                line = cur_line;
        }
        return push_native(u->th, pc, symname, file, line, library, false);
}

static int symbolize(struct unwind_ctx *u, uint64_t pc, bool activation) {
        uint64_t key = pc * 2 + activation;
        struct memo_slot *hit = memo_find(u->memo, key);
        size_t start = u->th->n_native;
        int r;

        if (hit) {
                const struct thread_info *from = &u->a->threads[hit->thread];

                /* the source may be this very array: make room first so it does not move under us */
                if (grow_array(&u->th->native, &u->th->native_allocated, start + hit->count,
                               sizeof(*u->th->native)) < 0)
                        return -ENOMEM;
                for (size_t i = hit->start; i < hit->start + hit->count; i++) {
                        const struct native_frame_info *f = &from->native[i];

                        r = push_native(u->th, pc, f->function, f->file, f->line, f->library, f->inlined);
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        r = symbolize_fresh(u, pc, activation);
        if (r == 0 && key)
                memo_add(u->memo, (struct memo_slot) {
                        .key = key, .thread = u->thread, .start = start, .count = u->th->n_native - start });
        return r;
}

static int frame_cb(Dwfl_Frame *state, void *arg) {
        struct unwind_ctx *u = arg;
        Dwarf_Addr pc;
        Dwarf_Word sp = 0;
        bool activation;
        size_t start = u->th->n_native;

        if (u->th->n_native >= MAX_NATIVE_FRAMES) {
                u->error = -E2BIG;
                return DWARF_CB_ABORT;
        }
        if (!dwfl_frame_pc(state, &pc, &activation)) {
                u->error = -EFAULT;
                return DWARF_CB_ABORT;
        }
        if (symbolize(u, pc, activation) < 0) {
                u->error = -ENOMEM;
                return DWARF_CB_ABORT;
        }
        if (dwfl_frame_reg(state, u->a->core->arch->dwarf_sp, &sp) != 0)
                sp = 0;
        for (size_t k = start; k < u->th->n_native; k++)
                u->th->native[k].sp = sp;
        return DWARF_CB_OK;
}

/* ---- merging marks: which native frames are the eval loop, which are plumbing ---- */

static bool is_eval(const struct analysis *a, const char *fn) {
        if (!fn)
                return false;
        if (a->py_major == 2 || (a->py_major == 3 && a->py_minor < 6))
                return strcmp(fn, "PyEval_EvalFrameEx") == 0;
        return strcmp(fn, "_PyEval_EvalFrameDefault") == 0;
}

/* The interpreter's own machinery between Python frames, and the C calls that start them. */
static bool is_plumbing(const char *fn) {
        static const char *const prefixes[] = {
                "_PyEval_", "PyEval_", "_PyFunction_", "PyFunction_", "_PyObject_Call", "PyObject_Call",
                "_PyObject_Vectorcall", "PyObject_Vectorcall", "_PyObject_FastCall", "_PyObject_MakeTpCall",
                "PyVectorcall_", "_PyVectorcall", "cfunction_", "method_vectorcall", "_PyMethodDef_",
                "_PyCFunction_", "PyCFunction_Call", "function_code_fastcall", "call_function",
                "fast_function", "do_call_core", "slot_tp_call", "gen_send_ex", "gen_iternext",
                "_PyGen_", "run_mod", "run_eval_code_obj", "_PyEval_Vector", "builtin_exec",
                "method_call", "partial_", "vectorcall_", "object_vacall", "call_trampoline",
                "thread_run", "t_bootstrap", "_PyThread", "pythread_wrapper",
        };

        if (!fn)
                return true;  /* an unnamed frame inside the interpreter: a static function of its own */
        for (size_t i = 0; i < ELEMENTSOF(prefixes); i++)
                if (strncmp(fn, prefixes[i], strlen(prefixes[i])) == 0)
                        return true;
        return false;
}

/* The physical native frame whose stack holds addr: [sp, the next physical frame's sp). */
static ssize_t frame_holding(const struct thread_info *th, uint64_t addr) {
        for (size_t i = 0; i < th->n_native; i++) {
                size_t next = i + 1;

                if (th->native[i].inlined)
                        continue;
                while (next < th->n_native && th->native[next].inlined)
                        next++;
                uint64_t end = next < th->n_native ? th->native[next].sp : th->native_sp_end;

                if (th->native[i].sp && th->native[i].sp <= addr && addr < end)
                        return (ssize_t)i;
        }
        return -1;
}

/*
 * 3.12+: every C-level entry into the interpreter keeps its own frame (the
 * shim before each run of Python frames) as a local of the eval loop that
 * runs them, so the native frame whose stack holds it is that eval loop —
 * found without symbols, which stripped interpreters (Debian's 3.14, with
 * the eval loop split into a .cold part) do not have.  Used only when every
 * shim is found.
 */
static bool eval_by_stack(struct thread_info *th, bool *eval) {
        size_t shims = 0, found = 0;

        for (size_t k = 0; k < th->n_frames; k++) {
                ssize_t i;

                if (!th->frames[k].shim)
                        continue;
                shims++;
                i = frame_holding(th, th->frames[k].shim);
                if (i >= 0 && !eval[i]) {
                        eval[i] = true;
                        found++;
                }
        }
        return shims > 0 && found == shims;
}

static void classify(struct analysis *a, struct thread_info *th) {
        _cleanup_free_ bool *by_stack = calloc(MAX(th->n_native, (size_t)1), sizeof(bool));
        bool stack = by_stack && eval_by_stack(th, by_stack);

        for (size_t i = 0; i < th->n_native; i++) {
                struct native_frame_info *f = &th->native[i];
                struct module *m = target_module_at(a->target, f->pc);
                bool in_interp = m && a->py_module && m == a->py_module;

                f->eval = stack ? by_stack[i] : in_interp && !f->inlined && is_eval(a, f->function);
                f->hidden = in_interp && !f->eval && is_plumbing(f->function);
        }
        /* what the thread was executing is never plumbing: for the crashed thread it is the crash site */
        for (size_t i = 0; i < th->n_native && (i == 0 || th->native[i - 1].inlined); i++)
                th->native[i].hidden = false;
}

/* ---- one OS thread, several interpreters ---- */

/* Entry i is one more interpreter's part of the OS thread of entry i - 1 (py_runtime puts them
 * together, outermost first). */
static bool same_os_thread(const struct analysis *a, size_t i) {
        return i > 0 && a->threads[i].tid > 0 && a->threads[i].tid == a->threads[i - 1].tid;
}

/* The outermost native frame whose stack holds one of the shims of th's Python frames, or -1. */
static ssize_t outermost_eval(const struct thread_info *whole, const struct thread_info *th) {
        ssize_t best = -1;

        for (size_t k = 0; k < th->n_frames; k++) {
                ssize_t i = th->frames[k].shim ? frame_holding(whole, th->frames[k].shim) : -1;

                if (i > best)
                        best = i;
        }
        return best;
}

/* Move n frames (their strings with them) from a shared stack into an entry of its own. */
static int move_native(struct thread_info *to, struct native_frame_info *from, size_t n) {
        to->native = calloc(MAX(n, (size_t)1), sizeof(*to->native));
        if (!to->native)
                return -ENOMEM;
        to->native_allocated = MAX(n, (size_t)1);
        memcpy(to->native, from, n * sizeof(*from));
        to->n_native = n;
        for (size_t i = 0; i < n; i++)
                from[i].function = from[i].file = NULL;
        return 0;
}

/* 3.12+: each part ends at the outermost eval loop whose stack holds one of its entry frames. */
static bool bounds_by_stack(const struct analysis *a, size_t first, size_t last, size_t *bound) {
        const struct thread_info *whole = &a->threads[first];

        bound[0] = whole->n_native;
        for (size_t k = 1; k <= last - first; k++) {
                ssize_t e = outermost_eval(whole, &a->threads[first + k]);

                if (e < 0 || (size_t)e + 1 >= bound[k - 1])
                        return false;
                bound[k] = (size_t)e + 1;
        }
        return true;
}

/* Before 3.12: from the innermost part out, each takes as many eval loops (by symbol) as it has
 * runs of Python frames. */
static bool bounds_by_count(const struct analysis *a, size_t first, size_t last, size_t *bound) {
        const struct thread_info *whole = &a->threads[first];
        size_t at = 0;

        bound[0] = whole->n_native;
        for (size_t k = last - first; k >= 1; k--) {
                size_t runs = stack_merge_runs(a, &a->threads[first + k]), seen = 0;

                while (at < whole->n_native && seen < runs) {
                        const struct native_frame_info *f = &whole->native[at++];
                        struct module *m = target_module_at(a->target, f->pc);

                        seen += !f->inlined && m && m == a->py_module && is_eval(a, f->function);
                }
                if (runs == 0 || seen < runs)
                        return false;
                bound[k] = at;
        }
        return bound[1] < bound[0];
}

/*
 * The entries first..last share the native stack unwound into `first`: give
 * each interpreter's entry its part — from the outermost eval loop of its
 * Python frames inwards to where the next interpreter's part starts; the C
 * frames between two interpreters (the call that switched) stay with the
 * outer one.  When a part cannot be found, the outermost entry keeps the
 * whole stack and the others get none (then the merge fails and says so).
 */
static int split_stack(struct analysis *a, size_t first) {
        struct thread_info *whole = &a->threads[first];
        size_t last = first, n = whole->n_native;
        size_t bound[64];               /* entry first+k's part ends (exclusive, innermost first) here */
        int r = 0;

        while (last + 1 < a->n_threads && same_os_thread(a, last + 1) && last + 1 - first < ELEMENTSOF(bound))
                last++;
        if (!bounds_by_stack(a, first, last, bound) && !bounds_by_count(a, first, last, bound))
                return 0;
        struct native_frame_info *all = whole->native;
        uint64_t all_end = whole->native_sp_end;

        whole->native = NULL;
        whole->n_native = whole->native_allocated = 0;
        for (size_t k = 0; k <= last - first && r == 0; k++) {
                struct thread_info *th = &a->threads[first + k];
                size_t lo = k == last - first ? 0 : bound[k + 1], hi = bound[k], outer = hi;

                r = move_native(th, all + lo, hi - lo);
                /* this part's stack ends where the next physical frame's begins */
                while (outer < n && all[outer].inlined)
                        outer++;
                th->native_sp_end = outer < n ? all[outer].sp : all_end;
        }
        for (size_t i = 0; i < n; i++) {        /* what was not moved (out of memory) */
                free(all[i].function);
                free(all[i].file);
        }
        free(all);
        return r;
}

/* ---- the whole pass ---- */

static Dwfl *report_modules(struct analysis *a) {
        Dwfl *dwfl = dwfl_begin(&dwfl_callbacks);

        if (!dwfl)
                return NULL;
        dwfl_report_begin(dwfl);
        for (size_t i = 0; i < a->target->n_modules; i++) {
                struct module *m = &a->target->modules[i];
                struct elf_image *img;

                if (!m->base)
                        continue;
                img = target_module_image(a->target, m);
                if (!img)
                        continue;  /* missing or refused: its frames will read "???" */
                /* the file we verified, by descriptor: its path may be one an unprivileged analyzer
                 * cannot reopen (/dev/fd/N of a root-only kept binary); libdwfl owns the duplicate */
                int fd = fcntl(elf_image_fd(img), F_DUPFD_CLOEXEC, 3);
                if (fd < 0 || !dwfl_report_elf(dwfl, path_base_name(m->path), elf_image_path(img), fd, m->base,
                                               false)) {
                        if (fd >= 0)
                                close(fd);
                }
        }
        dwfl_report_end(dwfl, NULL, NULL);
        return dwfl;
}

/* Where a thread's stack normally ends: reaching it is not an unwinding failure. */
static bool outermost(const struct thread_info *th) {
        static const char *const ends[] = { "_start", "__clone", "clone", "clone3", "__clone3", "start_thread" };
        const char *fn = th->n_native ? th->native[th->n_native - 1].function : NULL;

        for (size_t i = 0; fn && i < ELEMENTSOF(ends); i++)
                if (strcmp(fn, ends[i]) == 0 || strncmp(fn, "__clone", 7) == 0)
                        return true;
        return false;
}

int native_unwind(struct analysis *a) {
        struct process_arg arg = { .core = a->core, .target = a->target };
        _cleanup_free_ struct thread_arg *targs = calloc(MAX(a->core->n_threads, (size_t)1), sizeof(*targs));
        struct memo memo = {};
        _cleanup_free_ struct scope_cache *scopes = calloc(1, sizeof(*scopes));
        struct symbol_index *symbols = symbol_index_new();
        Dwfl *dwfl;
        int r = 0;

        if (!scopes || !symbols || !targs) {
                symbol_index_free(symbols);
                return -ENOMEM;
        }
        for (size_t i = 0; i < a->core->n_threads; i++)
                targs[i] = (struct thread_arg) { .t = &a->core->threads[i], .p = &arg };
        arg.threads = targs;
        if (a->core->arch->machine == EM_AARCH64)
                /* the kernel's mask (NT_ARM_PAC_MASK), or bits 48-54, the signature's place with 48-bit
                 * virtual addresses (qemu-user's cores carry no mask) */
                arg.pac_mask = a->core->pac_insn_mask ? a->core->pac_insn_mask : 0x007f000000000000ull;
        dwfl = report_modules(a);
        if (!dwfl) {
                strv_addf(&a->warnings, "native frames unavailable: %s", dwfl_errmsg(-1));
                symbol_index_free(symbols);
                return 0;
        }
        if (!dwfl_attach_state(dwfl, NULL, a->core->process.pid ? a->core->process.pid : 1,
                               &thread_callbacks, &arg)) {
                strv_addf(&a->warnings, "native frames unavailable: %s", dwfl_errmsg(-1));
                goto out;
        }
        for (size_t i = 0; i < a->n_threads; i++) {
                struct thread_info *th = &a->threads[i];
                struct unwind_ctx u = { .a = a, .th = th, .thread = i, .dwfl = dwfl, .memo = &memo,
                                        .scopes = scopes, .symbols = symbols };

                if (th->tid <= 0 || same_os_thread(a, i))
                        continue;
                int rc = dwfl_getthread_frames(dwfl, th->tid, frame_cb, &u);
                if (u.error == -ENOMEM) {
                        r = -ENOMEM;
                        goto out;
                }
                if (u.error == -E2BIG)
                        th->native_error = strdup("more than 65536 native frames: the rest are not shown");
                else if (rc != 0 && !outermost(th) &&
                         asprintf(&th->native_error, "unwinding stopped: %s", dwfl_errmsg(-1)) < 0)
                        th->native_error = NULL;
                if (i + 1 < a->n_threads && same_os_thread(a, i + 1)) {
                        r = split_stack(a, i);
                        if (r < 0)
                                goto out;
                }
        }
        for (size_t i = 0; i < a->n_threads; i++)
                classify(a, &a->threads[i]);
out:
        scope_cache_free(scopes);
        symbol_index_free(symbols);
        free(memo.slots);
        dwfl_end(dwfl);
        return r;
}
