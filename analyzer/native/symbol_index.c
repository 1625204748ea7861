/* SPDX-License-Identifier: MIT */
/*
 * symbol_index: dwfl_module_addrinfo()'s answers from sorted tables.
 *
 * libdwfl (elfutils 0.188, dwfl_module_addrsym.c) scans the global symbols
 * in table order, then the local ones only when no global one was chosen.
 * Among the sized symbols holding addr it keeps the first one it meets
 * unless a later one starts closer to addr or binds more strongly (GLOBAL >
 * WEAK > LOCAL), or starts at the same address, is smaller and binds no
 * less strongly.  A sizeless symbol can only be chosen when no sized one
 * holds addr; which one depends on every symbol met before it, so those
 * pcs are handed back to libdwfl.  On x86-64 and aarch64 a symbol's value
 * is never "resolved" through a function descriptor, so the second value
 * libdwfl tries for such symbols never exists; other machines are handed
 * back.  aarch64's mapping symbols ($x, $d), which libdwfl skips, are
 * sizeless: a pc only they hold is libdwfl's too.
 */
#include <gelf.h>

#include "symbol_index.h"
#include "util.h"

#define SYMBOL_MAX_MODULES 256
#define SYMBOL_MAX_SYMBOLS (1 << 22)    /* of one module */
#define SYMBOL_MAX_SCAN 64              /* symbols looked at below addr before asking libdwfl */

struct symbol {
        GElf_Addr value;                /* as libdwfl's scan sees it: biased */
        GElf_Addr last;                 /* value + size - 1, UINT64_MAX when that overflows */
        GElf_Xword size;
        const char *name;
        int index;                      /* in libdwfl's numbering: its scan order */
        int binding;                    /* libdwfl's binding_value() */
};

/* The sized symbols of one part of libdwfl's scan (globals or locals), by value then index. */
struct symbol_range {
        struct symbol *v;
        GElf_Addr *max_last;            /* the largest .last of v[0..i] */
        size_t n, allocated;
        /* the values of its sizeless symbols, sorted: those in a section, and the others (absolute,
         * or in a section not loaded), which libdwfl takes only at exactly their value */
        GElf_Addr *sizeless, *sizeless_abs;
        size_t n_sizeless, sizeless_allocated, n_sizeless_abs, sizeless_abs_allocated;
};

struct module_symbols {
        Dwfl_Module *mod;
        bool usable;                    /* false: ask dwfl_module_addrinfo */
        bool locals;                    /* libdwfl scans a local part */
        struct symbol_range global, local;
};

struct symbol_index {
        struct module_symbols modules[SYMBOL_MAX_MODULES];
        size_t n;
};

struct symbol_index *symbol_index_new(void) {
        return calloc(1, sizeof(struct symbol_index));
}

static void range_free(struct symbol_range *r) {
        free(r->v);
        free(r->max_last);
        free(r->sizeless);
        free(r->sizeless_abs);
        *r = (struct symbol_range) {};
}

void symbol_index_free(struct symbol_index *x) {
        if (!x)
                return;
        for (size_t i = 0; i < x->n; i++) {
                range_free(&x->modules[i].global);
                range_free(&x->modules[i].local);
        }
        free(x);
}

static int binding_value(const GElf_Sym *sym) {
        switch (GELF_ST_BIND(sym->st_info)) {
        case STB_GLOBAL:
                return 3;
        case STB_WEAK:
                return 2;
        case STB_LOCAL:
                return 1;
        default:
                return 0;
        }
}

static int by_value_then_index(const void *a, const void *b) {
        const struct symbol *x = a, *y = b;

        if (x->value != y->value)
                return x->value < y->value ? -1 : 1;
        return (x->index > y->index) - (x->index < y->index);
}

static int by_addr(const void *a, const void *b) {
        GElf_Addr x = *(const GElf_Addr *)a, y = *(const GElf_Addr *)b;

        return (x > y) - (x < y);
}

static int range_add(struct symbol_range *r, const GElf_Sym *sym, GElf_Addr value, GElf_Word shndx,
                     const char *name, int index) {
        if (sym->st_size == 0 && shndx >= SHN_LORESERVE) {
                if (grow_array(&r->sizeless_abs, &r->sizeless_abs_allocated, r->n_sizeless_abs + 1,
                               sizeof(*r->sizeless_abs)) < 0)
                        return -ENOMEM;
                r->sizeless_abs[r->n_sizeless_abs++] = value;
                return 0;
        }
        if (sym->st_size == 0) {
                if (grow_array(&r->sizeless, &r->sizeless_allocated, r->n_sizeless + 1, sizeof(*r->sizeless)) < 0)
                        return -ENOMEM;
                r->sizeless[r->n_sizeless++] = value;
                return 0;
        }
        if (grow_array(&r->v, &r->allocated, r->n + 1, sizeof(*r->v)) < 0)
                return -ENOMEM;
        r->v[r->n++] = (struct symbol) {
                .value = value,
                .last = sym->st_size - 1 > UINT64_MAX - value ? UINT64_MAX : value + sym->st_size - 1,
                .size = sym->st_size,
                .name = name,
                .index = index,
                .binding = binding_value(sym),
        };
        return 0;
}

static int range_sort(struct symbol_range *r) {
        /* an empty array is a NULL one: qsort() must not be given it */
        if (r->n)
                qsort(r->v, r->n, sizeof(*r->v), by_value_then_index);
        if (r->n_sizeless)
                qsort(r->sizeless, r->n_sizeless, sizeof(*r->sizeless), by_addr);
        if (r->n_sizeless_abs)
                qsort(r->sizeless_abs, r->n_sizeless_abs, sizeof(*r->sizeless_abs), by_addr);
        r->max_last = malloc(MAX(r->n, (size_t)1) * sizeof(*r->max_last));
        if (!r->max_last)
                return -ENOMEM;
        for (size_t i = 0; i < r->n; i++)
                r->max_last[i] = i == 0 ? r->v[i].last : MAX(r->max_last[i - 1], r->v[i].last);
        return 0;
}

/* Read mod's symbols as dwfl_module_addrinfo's scan sees them: 0, or -1 to leave mod to libdwfl. */
static int read_symbols(struct module_symbols *m, Dwfl_Module *mod) {
        int n = dwfl_module_getsymtab(mod), first_global;
        GElf_Addr bias;
        GElf_Ehdr ehdr;
        Elf *elf;

        if (n < 0 || n > SYMBOL_MAX_SYMBOLS)
                return -1;
        first_global = dwfl_module_getsymtab_first_global(mod);
        if (first_global < 0)
                return -1;
        elf = dwfl_module_getelf(mod, &bias);
        if (!elf || !gelf_getehdr(elf, &ehdr) || (ehdr.e_machine != EM_X86_64 && ehdr.e_machine != EM_AARCH64) || ehdr.e_type == ET_REL)
                return -1;
        /* first_global 0: only .dynsym read through the program headers, all of it scanned as globals */
        m->locals = first_global > 1;
        for (int i = 1; i < n; i++) {
                GElf_Sym sym;
                GElf_Addr value;
                GElf_Word shndx;
                const char *name = dwfl_module_getsym_info(mod, i, &sym, &value, &shndx, NULL, NULL);

                if (!name)
                        return -1;      /* libdwfl's scan would record an error for it */
                if (name[0] == '\0' || sym.st_shndx == SHN_UNDEF || GELF_ST_TYPE(sym.st_info) == STT_SECTION ||
                    GELF_ST_TYPE(sym.st_info) == STT_FILE || GELF_ST_TYPE(sym.st_info) == STT_TLS)
                        continue;
                if (range_add(first_global == 0 || i >= first_global ? &m->global : &m->local, &sym, value,
                              shndx, name, i) < 0)
                        return -1;
        }
        if (range_sort(&m->global) < 0 || range_sort(&m->local) < 0)
                return -1;
        return 0;
}

static struct module_symbols *module_symbols(struct symbol_index *x, Dwfl_Module *mod) {
        struct module_symbols *m;

        for (size_t i = 0; i < x->n; i++)
                if (x->modules[i].mod == mod)
                        return &x->modules[i];
        if (x->n == SYMBOL_MAX_MODULES)
                return NULL;
        m = &x->modules[x->n++];
        m->mod = mod;
        m->usable = read_symbols(m, mod) == 0;
        if (!m->usable) {
                range_free(&m->global);
                range_free(&m->local);
        }
        return m;
}

/* The number of values in a sorted array that are <= addr. */
static size_t count_upto(const GElf_Addr *v, size_t n, GElf_Addr addr) {
        size_t lo = 0, hi = n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (v[mid] <= addr)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

static size_t symbols_upto(const struct symbol_range *r, GElf_Addr addr) {
        size_t lo = 0, hi = r->n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (r->v[mid].value <= addr)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

/*
 * libdwfl's choice among the sized symbols of r holding addr, met in its
 * order: 1 and *best, 0 when none holds addr, -1 when too many would have
 * to be looked at.
 */
static int closest_sized(const struct symbol_range *r, GElf_Addr addr, const struct symbol **best) {
        const struct symbol *holding[SYMBOL_MAX_SCAN];
        size_t k = 0, scanned = 0;

        *best = NULL;
        for (size_t j = symbols_upto(r, addr); j > 0 && r->max_last[j - 1] >= addr; j--) {
                if (++scanned > SYMBOL_MAX_SCAN)
                        return -1;
                if (r->v[j - 1].last >= addr)
                        holding[k++] = &r->v[j - 1];
        }
        /* into libdwfl's order: by index (insertion sort, k <= SYMBOL_MAX_SCAN) */
        for (size_t i = 1; i < k; i++)
                for (size_t j = i; j > 0 && holding[j - 1]->index > holding[j]->index; j--) {
                        const struct symbol *t = holding[j];
                        holding[j] = holding[j - 1];
                        holding[j - 1] = t;
                }
        for (size_t i = 0; i < k; i++) {
                const struct symbol *s = holding[i], *b = *best;

                if (!b || b->value < s->value || b->binding < s->binding)
                        *best = s;
                else if (b->value == s->value &&
                         ((b->size > s->size && b->binding <= s->binding) ||
                          (b->size >= s->size && b->binding < s->binding)))
                        *best = s;
        }
        return k > 0;
}

static bool value_at(const GElf_Addr *v, size_t n, GElf_Addr addr) {
        size_t i = count_upto(v, n, addr);

        return i > 0 && v[i - 1] == addr;
}

/* Whether a sizeless symbol of r sits at addr (libdwfl may then skip the locals for it). */
static bool sizeless_at(const struct symbol_range *r, GElf_Addr addr) {
        return value_at(r->sizeless, r->n_sizeless, addr) || value_at(r->sizeless_abs, r->n_sizeless_abs, addr);
}

/* Whether libdwfl could settle on a sizeless symbol of r: then ask it. */
static bool sizeless_candidate(const struct symbol_range *r, GElf_Addr addr) {
        return (r->n_sizeless > 0 && r->sizeless[0] <= addr) || value_at(r->sizeless_abs, r->n_sizeless_abs, addr);
}

/* The answer from the tables: 1 and *name, or 0 when libdwfl must be asked. */
static int lookup(const struct module_symbols *m, GElf_Addr addr, const char **name) {
        const struct symbol *best;
        int r;

        r = closest_sized(&m->global, addr, &best);
        if (r != 0) {
                *name = r > 0 ? best->name : NULL;
                return r > 0;
        }
        /* no sized global holds addr: libdwfl scans the locals unless a sizeless global sits at addr */
        if (m->locals) {
                if (sizeless_at(&m->global, addr))
                        return 0;
                r = closest_sized(&m->local, addr, &best);
                if (r != 0) {
                        *name = r > 0 ? best->name : NULL;
                        return r > 0;
                }
        }
        if (sizeless_candidate(&m->global, addr) || (m->locals && sizeless_candidate(&m->local, addr)))
                return 0;
        *name = NULL;
        return 1;
}

const char *symbol_index_name(struct symbol_index *x, Dwfl_Module *mod, GElf_Addr addr) {
        struct module_symbols *m = module_symbols(x, mod);
        const char *name;
        GElf_Off off;
        GElf_Sym sym;

        if (m && m->usable && lookup(m, addr, &name))
                return name;
        return dwfl_module_addrinfo(mod, addr, &off, &sym, NULL, NULL, NULL);
}
