/* SPDX-License-Identifier: MIT */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cmdline.h"
#include "json.h"
#include "util.h"

char *cmdline_script(const char *const *argv, size_t argc, const char *exe, const char *comm) {
        bool python = strstr(path_base_name(exe), "python") || (argc && strstr(path_base_name(argv[0]), "python"));
        char *s = NULL;

        for (size_t i = 1; python && i < argc; i++) {
                const char *a = argv[i];

                if (!strncmp(a, "-c", 2))
                        return strdup("-c");
                if (!strncmp(a, "-m", 2)) {
                        const char *module = a[2] ? a + 2 : i + 1 < argc ? argv[i + 1] : NULL;
                        if (!module)
                                return strdup("-m");
                        return asprintf(&s, "-m %s", module) < 0 ? NULL : s;
                }
                if (!strcmp(a, "-W") || !strcmp(a, "-X")) {
                        i++;    /* and its value */
                        continue;
                }
                if (!strcmp(a, "-") || a[0] != '-')
                        return strdup(a[0] == '-' ? "-" : path_base_name(a));
        }
        if (comm && *comm)
                return strdup(comm);
        return strdup(exe && *path_base_name(exe) ? path_base_name(exe) : "?");
}

int cmdline_join_json(const char *json, char **ret) {
        struct json_doc *doc = NULL;
        struct buf b = {};
        size_t n;
        int r;

        *ret = NULL;
        if (!json)
                return 0;
        r = json_parse(json, strlen(json), &doc);
        if (r < 0)
                return r == -ENOMEM ? r : 0;
        n = json_len(json_root(doc));
        buf_put(&b, "", 0);
        for (size_t i = 0; i < json_len(json_root(doc)); i++) {
                const char *arg = json_str(json_at(json_root(doc), i));
                if (i)
                        buf_put(&b, " ", 1);
                buf_puts(&b, arg ? arg : "");
        }
        json_free(doc);
        if (!buf_str(&b) || n == 0) {
                r = b.failed ? -ENOMEM : 0;
                buf_free(&b);
                return r;
        }
        *ret = b.p;
        return 0;
}
