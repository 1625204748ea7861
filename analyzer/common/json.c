/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "json.h"
#include "util.h"

/* The arena: chunks, each used from the front. */
struct chunk {
        struct chunk *next;
        size_t used, size;
        max_align_t data[];
};

struct json_doc {
        struct chunk *chunks;
        struct json_value root;
};

struct parser {
        const char *s, *end;
        struct json_doc *doc;
        int error;                      /* -EBADMSG or -ENOMEM once something failed */
};

static void *arena_alloc(struct parser *p, size_t n) {
        struct chunk *c = p->doc->chunks;

        n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
        if (!c || c->size - c->used < n) {
                size_t size = MAX(n, (size_t)64 << 10);
                c = malloc(sizeof(*c) + size);
                if (!c) {
                        p->error = -ENOMEM;
                        return NULL;
                }
                c->size = size;
                c->used = 0;
                c->next = p->doc->chunks;
                p->doc->chunks = c;
        }
        void *r = (char *)c->data + c->used;
        c->used += n;
        return r;
}

static int bad(struct parser *p) {
        if (!p->error)
                p->error = -EBADMSG;
        return p->error;
}

static void skip_space(struct parser *p) {
        while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r'))
                p->s++;
}

static int hex4(const char *s, unsigned *out) {
        unsigned v = 0;

        for (int i = 0; i < 4; i++) {
                char c = s[i];
                v <<= 4;
                if (c >= '0' && c <= '9')
                        v |= (unsigned)(c - '0');
                else if (c >= 'a' && c <= 'f')
                        v |= (unsigned)(c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                        v |= (unsigned)(c - 'A' + 10);
                else
                        return -1;
        }
        *out = v;
        return 0;
}

static size_t put_utf8(char *o, unsigned cp) {
        if (cp < 0x80) {
                o[0] = (char)cp;
                return 1;
        }
        if (cp < 0x800) {
                o[0] = (char)(0xc0 | (cp >> 6));
                o[1] = (char)(0x80 | (cp & 0x3f));
                return 2;
        }
        if (cp < 0x10000) {
                o[0] = (char)(0xe0 | (cp >> 12));
                o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
                o[2] = (char)(0x80 | (cp & 0x3f));
                return 3;
        }
        o[0] = (char)(0xf0 | (cp >> 18));
        o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[3] = (char)(0x80 | (cp & 0x3f));
        return 4;
}

/* At the opening quote: the decoded string in the arena, its length in *len. */
static const char *string(struct parser *p, size_t *len) {
        const char *s = ++p->s, *q = s;
        char *out, *o;

        /* the decoded text is never longer than the escaped one */
        while (q < p->end && *q != '"') {
                if ((unsigned char)*q < 0x20)
                        return bad(p), NULL;
                q += *q == '\\' && q + 1 < p->end ? 2 : 1;
        }
        if (q >= p->end)
                return bad(p), NULL;
        out = o = arena_alloc(p, (size_t)(q - s) + 1);
        if (!out)
                return NULL;
        while (s < q) {
                if (*s != '\\') {
                        *o++ = *s++;
                        continue;
                }
                s++;
                switch (*s++) {
                case '"': *o++ = '"'; break;
                case '\\': *o++ = '\\'; break;
                case '/': *o++ = '/'; break;
                case 'b': *o++ = '\b'; break;
                case 'f': *o++ = '\f'; break;
                case 'n': *o++ = '\n'; break;
                case 'r': *o++ = '\r'; break;
                case 't': *o++ = '\t'; break;
                case 'u': {
                        unsigned cp, lo;

                        if (q - s < 4 || hex4(s, &cp) < 0)
                                return bad(p), NULL;
                        s += 4;
                        if (cp >= 0xdc80 && cp <= 0xdcff) {
                                *o++ = (char)(cp - 0xdc00);     /* a byte that was not UTF-8 */
                                break;
                        }
                        if (cp >= 0xd800 && cp <= 0xdbff && q - s >= 6 && s[0] == '\\' && s[1] == 'u' &&
                            hex4(s + 2, &lo) == 0 && lo >= 0xdc00 && lo <= 0xdfff) {
                                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                                s += 6;
                        } else if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff))
                                cp = 0xfffd;    /* a C string cannot hold NUL; a lone surrogate is no character */
                        /* "\uXXXX" is 6 bytes, its UTF-8 at most 3 (4 for a pair's 12): it fits */
                        o += put_utf8(o, cp);
                        break;
                }
                default:
                        return bad(p), NULL;
                }
        }
        *o = 0;
        *len = (size_t)(o - out);
        p->s = q + 1;
        return out;
}

static int number(struct parser *p, struct json_value *v) {
        const char *s = p->s, *q = s;
        char *out;

        if (q < p->end && *q == '-')
                q++;
        if (q >= p->end || *q < '0' || *q > '9')
                return bad(p);
        if (*q == '0')
                q++;
        else
                while (q < p->end && *q >= '0' && *q <= '9')
                        q++;
        if (q < p->end && *q == '.') {
                q++;
                if (q >= p->end || *q < '0' || *q > '9')
                        return bad(p);
                while (q < p->end && *q >= '0' && *q <= '9')
                        q++;
        }
        if (q < p->end && (*q == 'e' || *q == 'E')) {
                q++;
                if (q < p->end && (*q == '+' || *q == '-'))
                        q++;
                if (q >= p->end || *q < '0' || *q > '9')
                        return bad(p);
                while (q < p->end && *q >= '0' && *q <= '9')
                        q++;
        }
        out = arena_alloc(p, (size_t)(q - s) + 1);
        if (!out)
                return p->error;
        memcpy(out, s, (size_t)(q - s));
        out[q - s] = 0;
        *v = (struct json_value) { .type = JSON_NUMBER, .n = (size_t)(q - s), .str = out };
        p->s = q;
        return 0;
}

static int literal(struct parser *p, const char *word, enum json_type type, struct json_value *v) {
        size_t n = strlen(word);

        if ((size_t)(p->end - p->s) < n || memcmp(p->s, word, n))
                return bad(p);
        p->s += n;
        *v = (struct json_value) { .type = type };
        return 0;
}

static int value(struct parser *p, struct json_value *v, unsigned depth);

/* The items of an array or the members of an object, gathered in a growing buffer, then moved
 * into the arena. */
static int container(struct parser *p, struct json_value *v, unsigned depth, bool object) {
        _cleanup_free_ struct json_member *tmp = NULL;
        size_t n = 0, allocated = 0;
        char close = object ? '}' : ']';

        if (depth >= JSON_MAX_DEPTH)
                return bad(p);
        p->s++;
        skip_space(p);
        if (p->s < p->end && *p->s == close)
                p->s++;
        else
                for (;;) {
                        const char *key = NULL;
                        size_t key_len;

                        if (grow_array(&tmp, &allocated, n + 1, sizeof(*tmp)) < 0)
                                return p->error = -ENOMEM;
                        skip_space(p);
                        if (object) {
                                if (p->s >= p->end || *p->s != '"')
                                        return bad(p);
                                key = string(p, &key_len);
                                if (!key)
                                        return p->error;
                                skip_space(p);
                                if (p->s >= p->end || *p->s != ':')
                                        return bad(p);
                                p->s++;
                        }
                        tmp[n].key = key;
                        if (value(p, &tmp[n].value, depth + 1) < 0)
                                return p->error;
                        n++;
                        skip_space(p);
                        if (p->s < p->end && *p->s == ',') {
                                p->s++;
                                continue;
                        }
                        if (p->s < p->end && *p->s == close) {
                                p->s++;
                                break;
                        }
                        return bad(p);
                }
        *v = (struct json_value) { .type = object ? JSON_OBJECT : JSON_ARRAY, .n = n };
        if (object) {
                v->members = arena_alloc(p, n * sizeof(*tmp) + 1);
                if (!v->members)
                        return p->error;
                if (n)
                        memcpy(v->members, tmp, n * sizeof(*tmp));
        } else {
                v->items = arena_alloc(p, n * sizeof(struct json_value) + 1);
                if (!v->items)
                        return p->error;
                for (size_t i = 0; i < n; i++)
                        v->items[i] = tmp[i].value;
        }
        return 0;
}

static int value(struct parser *p, struct json_value *v, unsigned depth) {
        skip_space(p);
        if (p->s >= p->end)
                return bad(p);
        switch (*p->s) {
        case '{':
                return container(p, v, depth, true);
        case '[':
                return container(p, v, depth, false);
        case '"': {
                size_t len;
                const char *s = string(p, &len);
                if (!s)
                        return p->error;
                *v = (struct json_value) { .type = JSON_STRING, .n = len, .str = s };
                return 0;
        }
        case 't':
                return literal(p, "true", JSON_TRUE, v);
        case 'f':
                return literal(p, "false", JSON_FALSE, v);
        case 'n':
                return literal(p, "null", JSON_NULL, v);
        default:
                return number(p, v);
        }
}

void json_free(struct json_doc *d) {
        if (!d)
                return;
        for (struct chunk *c = d->chunks, *next; c; c = next) {
                next = c->next;
                free(c);
        }
        free(d);
}

int json_parse(const char *text, size_t len, struct json_doc **ret) {
        struct json_doc *d = calloc(1, sizeof(*d));
        struct parser p = { .s = text, .end = text + len, .doc = d };

        if (!d)
                return -ENOMEM;
        if (value(&p, &d->root, 0) == 0) {
                skip_space(&p);
                if (p.s != p.end)
                        bad(&p);
        }
        if (p.error) {
                json_free(d);
                return p.error;
        }
        *ret = d;
        return 0;
}

const struct json_value *json_root(const struct json_doc *d) {
        return &d->root;
}

const struct json_value *json_get(const struct json_value *v, const char *key) {
        if (!v || v->type != JSON_OBJECT)
                return NULL;
        for (size_t i = 0; i < v->n; i++)
                if (!strcmp(v->members[i].key, key))
                        return &v->members[i].value;
        return NULL;
}

const struct json_value *json_at(const struct json_value *v, size_t i) {
        return v && v->type == JSON_ARRAY && i < v->n ? &v->items[i] : NULL;
}

size_t json_len(const struct json_value *v) {
        return v && v->type == JSON_ARRAY ? v->n : 0;
}

const char *json_str(const struct json_value *v) {
        return v && v->type == JSON_STRING ? v->str : NULL;
}

bool json_true(const struct json_value *v) {
        return v && v->type == JSON_TRUE;
}

int64_t json_int(const struct json_value *v, int64_t def) {
        char *end;
        long long x;

        if (!v || v->type != JSON_NUMBER)
                return def;
        errno = 0;
        x = strtoll(v->str, &end, 10);
        return errno || *end ? def : x;
}

uint64_t json_uint(const struct json_value *v, uint64_t def) {
        char *end;
        unsigned long long x;

        if (!v || v->type != JSON_NUMBER || v->str[0] == '-')
                return def;
        errno = 0;
        x = strtoull(v->str, &end, 10);
        return errno || *end ? def : x;
}

void json_write(struct buf *b, const struct json_value *v) {
        static const char *const words[] = { [JSON_NULL] = "null", [JSON_FALSE] = "false", [JSON_TRUE] = "true" };

        switch (v->type) {
        case JSON_NULL:
        case JSON_FALSE:
        case JSON_TRUE:
                buf_puts(b, words[v->type]);
                return;
        case JSON_NUMBER:
                buf_puts(b, v->str);
                return;
        case JSON_STRING:
                buf_put_json_string(b, v->str, v->n);
                return;
        case JSON_ARRAY:
                buf_put(b, "[", 1);
                for (size_t i = 0; i < v->n; i++) {
                        if (i)
                                buf_put(b, ",", 1);
                        json_write(b, &v->items[i]);
                }
                buf_put(b, "]", 1);
                return;
        case JSON_OBJECT:
                buf_put(b, "{", 1);
                for (size_t i = 0; i < v->n; i++) {
                        if (i)
                                buf_put(b, ",", 1);
                        buf_put_json_string(b, v->members[i].key, strlen(v->members[i].key));
                        buf_put(b, ":", 1);
                        json_write(b, &v->members[i].value);
                }
                buf_put(b, "}", 1);
                return;
        }
}

void json_fput(FILE *out, const struct json_value *v) {
        struct buf b = {};

        json_write(&b, v);
        if (buf_str(&b))
                fwrite(b.p, 1, b.n, out);
        buf_free(&b);
}
