/* SPDX-License-Identifier: MIT */
#pragma once

#include <elfutils/libdwfl.h>

/*
 * symbol_index: the name dwfl_module_addrinfo() gives a pc, without its
 * scan of every symbol of the module for every pc.  Each module's symbols
 * (as libdwfl reads them: the debug file's .symtab, MiniDebugInfo, or
 * .dynsym) are read once through libdwfl into tables sorted by address,
 * and libdwfl's choice among the sized symbols holding the pc is replayed
 * in its order.  The cases whose answer depends on the order of the whole
 * scan (sizeless symbols near the pc, a pc under many symbols, errors
 * reading the table) are left to dwfl_module_addrinfo itself.
 */
struct symbol_index;

/* An empty index for the modules of one Dwfl; NULL when out of memory. */
struct symbol_index *symbol_index_new(void);
void symbol_index_free(struct symbol_index *x);

/*
 * The same string dwfl_module_addrinfo(mod, addr, ...) returns (a pointer
 * into libdwfl's data, valid until dwfl_end), or NULL.
 * Cost: the first call for a module reads its symbol table once
 * (O(n log n)); every call is then a binary search and a short scan.
 */
const char *symbol_index_name(struct symbol_index *x, Dwfl_Module *mod, GElf_Addr addr);
