/* SPDX-License-Identifier: MIT */
/*
 * TAP tests for analyzer/native/symbol_index.c: the name it gives an
 * address is dwfl_module_addrinfo()'s, compared around every symbol's
 * start and end (a sample of them in big tables) and at addresses spread
 * over the module, on this program itself (locals in .symtab), the C
 * library and the dynamic linker (with their debug files when installed),
 * and the files named in $PYSTACK_SYMBOL_FILES (colon-separated).
 */
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <link.h>
#include <gelf.h>
#include <string.h>

#include "symbol_index.h"
#include "tap.h"
#include "util.h"

#define SAMPLE_SYMBOLS 300
#define SAMPLE_SPREAD 600

static const Dwfl_Callbacks callbacks = {
        .find_elf = dwfl_build_id_find_elf,
        .find_debuginfo = dwfl_standard_find_debuginfo,
};

static bool same(const char *a, const char *b) {
        return a == b || (a && b && strcmp(a, b) == 0);
}

static size_t check_addr(struct symbol_index *x, Dwfl_Module *mod, GElf_Addr addr, size_t *checked) {
        GElf_Off off;
        GElf_Sym sym;
        const char *want = dwfl_module_addrinfo(mod, addr, &off, &sym, NULL, NULL, NULL);
        const char *got = symbol_index_name(x, mod, addr);

        ++*checked;
        if (same(got, want))
                return 0;
        printf("#   %#llx: got %s, want %s\n", (unsigned long long)addr, got ? got : "(null)",
               want ? want : "(null)");
        return 1;
}

static void check_file(const char *path) {
        Dwfl *dwfl = dwfl_begin(&callbacks);
        struct symbol_index *x = symbol_index_new();
        Dwfl_Module *mod;
        size_t wrong = 0, checked = 0;
        Dwarf_Addr low, high;
        int n;

        if (!dwfl || !x) {
                tap_ok(0, "%s: set up", path);
                goto out;
        }
        dwfl_report_begin(dwfl);
        mod = dwfl_report_elf(dwfl, path_base_name(path), path, -1, 0x7f0000000000, false);
        dwfl_report_end(dwfl, NULL, NULL);
        if (!mod || !dwfl_module_info(mod, NULL, &low, &high, NULL, NULL, NULL, NULL)) {
                printf("# %s: cannot report (%s)\n", path, dwfl_errmsg(-1));
                goto out;
        }
        n = dwfl_module_getsymtab(mod);
        for (int i = 1; i < n; i++) {
                GElf_Sym sym;
                GElf_Addr value;

                /* a sample spread over the table, the same each run */
                if (n > SAMPLE_SYMBOLS && (size_t)i * 2654435761u % (size_t)n >= SAMPLE_SYMBOLS)
                        continue;
                if (!dwfl_module_getsym_info(mod, i, &sym, &value, NULL, NULL, NULL))
                        continue;
                GElf_Addr probe[] = { value - 1, value, value + 1, value + sym.st_size - 1, value + sym.st_size };
                for (size_t k = 0; k < ELEMENTSOF(probe); k++)
                        wrong += check_addr(x, mod, probe[k], &checked);
        }
        for (GElf_Addr i = 0; i < SAMPLE_SPREAD; i++)
                wrong += check_addr(x, mod, low + (high - low) / SAMPLE_SPREAD * i + i % 7, &checked);
        tap_ok(wrong == 0 && checked > 0, "%s: %zu of %zu addresses named as libdwfl names them",
               path, checked - wrong, checked);
out:
        symbol_index_free(x);
        if (dwfl)
                dwfl_end(dwfl);
}

/* The C library and the dynamic linker this program runs with, whatever the architecture: their
 * names as the dynamic linker has them. */
static int add_libc(struct dl_phdr_info *info, size_t size, void *data) {
        const char **files = data;
        const char *base = strrchr(info->dlpi_name, '/');

        if (base && strncmp(base + 1, "libc.so", 7) == 0)
                files[1] = info->dlpi_name;
        else if (base && strncmp(base + 1, "ld-linux", 8) == 0)
                files[2] = info->dlpi_name;
        return 0;
}

int main(void) {
        const char *defaults[3] = { "/proc/self/exe" };
        char self[4096];
        ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
        const char *env = getenv("PYSTACK_SYMBOL_FILES");

        if (len > 0) {
                self[len] = 0;
                defaults[0] = self;
        }
        dl_iterate_phdr(add_libc, defaults);
        for (size_t i = 0; i < ELEMENTSOF(defaults); i++)
                if (defaults[i] && access(defaults[i], R_OK) == 0)
                        check_file(defaults[i]);
        if (env) {
                _cleanup_free_ char *list = strdup(env);
                char *save = NULL;

                for (char *p = list ? strtok_r(list, ":", &save) : NULL; p; p = strtok_r(NULL, ":", &save))
                        check_file(p);
        }
        return tap_done();
}
