/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "source_lines.h"
#include "util.h"

struct source_file {
        char *path;
        char *text;             /* NULL when unreadable */
        size_t size;
        size_t *line_starts;    /* offsets of each line */
        size_t n_lines;
};

struct source_cache {
        char *root;
        struct source_file files[SOURCE_MAX_FILES];
        size_t n;
        char line[1024];
};

struct source_cache *source_cache_new(const char *root) {
        struct source_cache *c = calloc(1, sizeof(struct source_cache));

        if (c && root && !(c->root = strdup(root))) {
                free(c);
                return NULL;
        }
        return c;
}

void source_cache_free(struct source_cache *c) {
        if (!c)
                return;
        for (size_t i = 0; i < c->n; i++) {
                free(c->files[i].path);
                free(c->files[i].text);
                free(c->files[i].line_starts);
        }
        free(c->root);
        free(c);
}

static int open_source(const char *path) {
        return open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
}

static void load(struct source_file *f, const char *root) {
        _cleanup_close_ int fd = -1;
        struct stat st;
        size_t got = 0, allocated = 0;

        if (f->path[0] == '<')  /* "<string>", "<stdin>", "<frozen ...>" */
                return;
        if (root && f->path[0] == '/') {
                _cleanup_free_ char *inside = NULL;

                if (asprintf(&inside, "%s%s", root, f->path) >= 0)
                        fd = open_source(inside);
        }
        if (fd < 0)
                fd = open_source(f->path);
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > SOURCE_MAX_FILE)
                return;
        f->text = malloc(st.st_size + 1);
        if (!f->text)
                return;
        while (got < (size_t)st.st_size) {
                ssize_t n = read(fd, f->text + got, st.st_size - got);
                if (n <= 0)
                        break;
                got += n;
        }
        f->text[got] = 0;
        f->size = got;
        /* a line starts at 0 and after every newline but a final one */
        size_t i = 0;
        do {
                const char *nl;

                if (grow_array(&f->line_starts, &allocated, f->n_lines + 1, sizeof(size_t)) < 0)
                        break;
                f->line_starts[f->n_lines++] = i;
                nl = memchr(f->text + i, '\n', got - i);
                if (!nl)
                        break;
                i = (size_t)(nl - f->text) + 1;
        } while (i < got);
}

const char *source_line(struct source_cache *c, const char *file, int line) {
        struct source_file *f = NULL;
        const char *s, *e;

        if (!c || line <= 0)
                return NULL;
        for (size_t i = 0; i < c->n; i++)
                if (strcmp(c->files[i].path, file) == 0) {
                        f = &c->files[i];
                        break;
                }
        if (!f) {
                if (c->n == SOURCE_MAX_FILES)
                        return NULL;
                f = &c->files[c->n];
                f->path = strdup(file);
                if (!f->path)
                        return NULL;
                c->n++;
                load(f, c->root);
        }
        if (!f->text || (size_t)line > f->n_lines)
                return NULL;
        s = f->text + f->line_starts[line - 1];
        e = (size_t)line < f->n_lines ? f->text + f->line_starts[line] : f->text + f->size;
        while (s < e && isspace((unsigned char)*s))
                s++;
        while (e > s && isspace((unsigned char)e[-1]))
                e--;
        snprintf(c->line, sizeof(c->line), "%.*s", (int)(e - s), s);
        return c->line;
}
