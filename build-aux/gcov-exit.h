/* Forced into every file of a coverage build (configure --enable-coverage adds
 * -include build-aux/gcov-exit.h): libgcov writes a process's counters when it
 * exits, and _exit() skips that, so pystackd's query children and every child
 * that ends without exec would count for nothing.  Each _exit() writes them
 * first (the counters of a child start at zero: gcc's fork() wrapper resets
 * them).  A macro, not a function, so that this file has no lines of its own. */
#ifndef PYSTACK_GCOV_EXIT_H
#define PYSTACK_GCOV_EXIT_H

#include <unistd.h>

void __gcov_dump(void);

#define _exit(status) (__gcov_dump(), (_exit)(status))

#endif
