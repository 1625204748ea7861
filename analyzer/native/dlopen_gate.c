/* SPDX-License-Identifier: MIT */
/*
 * With elfutils linked statically (configure's --enable-static-elfutils),
 * the link wraps dlopen() with this.  libdwfl's last try for a module with
 * no debug file is debuginfod: it dlopen()s libdebuginfod -- about thirty
 * libraries (curl, gnutls, krb5, ...) mapped and relocated -- and only then
 * learns that no server is configured.  On a core of Debian's stripped
 * Python that was most of a --native run.  Without DEBUGINFOD_URLS the
 * library is refused here, as if it were not installed, which is what
 * libdwfl already handles; with it, nothing changes.
 *
 * Linked after the static libdw (its own small archive), so that libdw's
 * wrapped reference finds it; unused, and never pulled in, otherwise.
 */

#include <stdlib.h>
#include <string.h>

void *__real_dlopen(const char *file, int mode);
void *__wrap_dlopen(const char *file, int mode);

void *__wrap_dlopen(const char *file, int mode) {
        const char *urls = getenv("DEBUGINFOD_URLS");

        if (file && strncmp(file, "libdebuginfod", strlen("libdebuginfod")) == 0 && (!urls || !*urls))
                return NULL;
        return __real_dlopen(file, mode);
}
