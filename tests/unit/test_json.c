/* SPDX-License-Identifier: MIT */
/* Unit test: the report reader (analyzer/common/json.h) and the text renderer fed from it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "report_text.h"
#include "tap.h"

static int parse(const char *s, struct json_doc **d) {
        return json_parse(s, strlen(s), d);
}

static void check_bad(const char *s, const char *why) {
        struct json_doc *d = NULL;
        int r = parse(s, &d);

        tap_ok(r == -EBADMSG && !d, "refused (%s): %s", why, s);
        json_free(d);
}

static char *render(const char *json, struct text_options o) {
        struct json_doc *d = NULL;
        char *out = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&out, &len);

        if (parse(json, &d) < 0 || !m)
                abort();
        report_text_render(m, json_root(d), &o);
        fclose(m);
        json_free(d);
        return out;
}

int main(void) {
        struct json_doc *d = NULL;
        const struct json_value *r;

        TAP_EQ_INT(parse(" {\"a\": [1, -2, 3.5e2, true, false, null, \"x\"], \"b\": {}} ", &d), 0, "a document parses");
        r = json_root(d);
        tap_ok(json_len(json_get(r, "a")) == 7, "an array of 7");
        TAP_EQ_INT(json_int(json_at(json_get(r, "a"), 1), 0), -2, "a negative integer");
        TAP_EQ_INT(json_int(json_at(json_get(r, "a"), 2), 99), 99, "not an integer: the default");
        tap_ok(json_true(json_at(json_get(r, "a"), 3)) && !json_true(json_at(json_get(r, "a"), 4)), "true, false");
        tap_ok(json_at(json_get(r, "a"), 5)->type == JSON_NULL, "null");
        tap_ok(json_str(json_at(json_get(r, "a"), 6)) && !strcmp(json_str(json_at(json_get(r, "a"), 6)), "x"), "a string");
        tap_ok(json_get(r, "b")->type == JSON_OBJECT && json_get(r, "b")->n == 0, "an empty object");
        tap_ok(!json_get(r, "c") && !json_at(json_get(r, "a"), 7) && !json_str(json_get(r, "b")),
               "what is not there is NULL");
        json_free(d);

        TAP_EQ_INT(parse("\"a\\u00e9\\ud83d\\ude00\\udc80\\udcff\\u0000\\ud800z\\n\\\"\\\\\\/\"", &d), 0,
                   "escapes parse");
        tap_ok(!strcmp(json_str(json_root(d)), "a\xc3\xa9\xf0\x9f\x98\x80\x80\xff\xef\xbf\xbd\xef\xbf\xbdz\n\"\\/"),
               "\\udcNN is the byte again, a pair one character, NUL and a lone surrogate U+FFFD");
        json_free(d);
        TAP_EQ_INT(parse("18446744073709551615", &d), 0, "a large number parses");
        tap_ok(json_uint(json_root(d), 0) == UINT64_MAX && json_int(json_root(d), 7) == 7,
               "it fits uint64, not int64");
        json_free(d);

        check_bad("", "empty");
        check_bad("{", "unclosed object");
        check_bad("[1,]", "trailing comma");
        check_bad("{\"a\" 1}", "no colon");
        check_bad("{1: 2}", "a key that is not a string");
        check_bad("\"abc", "unclosed string");
        check_bad("\"a\x01\"", "a raw control character");
        check_bad("\"\\x41\"", "an unknown escape");
        check_bad("\"\\u12\"", "a short \\u escape");
        check_bad("01", "a leading zero");
        check_bad("1.", "no digits after the point");
        check_bad("-", "a lone minus");
        check_bad("tru", "a cut literal");
        check_bad("[] []", "two values");
        check_bad("\"\\", "a backslash at the end");

        /* nesting: JSON_MAX_DEPTH levels are fine, one more is refused, and a million cost nothing */
        char deep[2 * JSON_MAX_DEPTH + 3];
        memset(deep, '[', JSON_MAX_DEPTH);
        memset(deep + JSON_MAX_DEPTH, ']', JSON_MAX_DEPTH);
        deep[2 * JSON_MAX_DEPTH] = 0;
        TAP_EQ_INT(parse(deep, &d), 0, "%d levels of nesting parse", JSON_MAX_DEPTH);
        json_free(d);
        memset(deep, '[', JSON_MAX_DEPTH + 1);
        memset(deep + JSON_MAX_DEPTH + 1, ']', JSON_MAX_DEPTH + 1);
        deep[2 * JSON_MAX_DEPTH + 2] = 0;
        check_bad(deep, "one level too deep");
        size_t big = 1000000;
        char *many = malloc(big + 1);
        memset(many, '[', big);
        many[big] = 0;
        d = NULL;
        tap_ok(json_parse(many, big, &d) == -EBADMSG, "a million [ are refused at the depth limit");
        free(many);

        /* the renderer: what a stored report shows, with and without native frames and locals */
        static const char report[] =
                "{\"executable\":\"/usr/bin/python3\",\"executable_source\":\"core\","
                "\"process\":{\"pid\":7,\"ppid\":1,\"sid\":7,\"pgrp\":7,\"uid\":0,\"gid\":0,\"state\":\"R\","
                "\"zombie\":true,\"nice\":0,\"comm\":\"python3\",\"args\":\"python3 x.py\"},"
                "\"signal\":{\"number\":11,\"name\":\"SIGSEGV\"},"
                "\"threads\":[{\"tid\":7,\"python\":true,\"status\":[\"Has the GIL\"],\"merged\":false,"
                "\"native_error\":\"stack \\u001b[31m\",\"truncated\":null,\"frames\":["
                "{\"kind\":\"native\",\"function\":null,\"file\":null,\"line\":0,\"library\":\"libc.so.6\"},"
                "{\"kind\":\"python\",\"function\":\"f\",\"file\":\"x.py\",\"line\":3,\"source\":\"g()\","
                "\"arguments\":[{\"name\":\"a\",\"repr\":\"1\"}],\"locals\":[],\"locals_error\":null}]},"
                "{\"tid\":8,\"python\":false,\"status\":[],\"frames\":[]}]}";
        char *plain = render(report, (struct text_options) {});
        char *full = render(report, (struct text_options) { .native = true, .locals = true });
        tap_ok(!strcmp(plain, "Using executable found in the core file: /usr/bin/python3\n\n"
                              "Core file information:\nstate: R zombie: True niceness: 0\npid: 7 ppid: 1 sid: 7\n"
                              "uid: 0 gid: 0 pgrp: 7\nexecutable: python3 arguments: python3 x.py\n\n"
                              "The process died due receiving signal SIGSEGV\n"
                              "Traceback for thread 7 [Has the GIL] (most recent call last):\n"
                              "    (Python) File \"x.py\", line 3, in f\n        g()\n"),
               "plain: Python frames only, no native lines, the thread Python does not know left out");
        tap_ok(strstr(full, "* - Unable to merge native stack") && strstr(full, "(C) File \"libc.so.6\", line 0, in ??? (libc.so.6)") &&
               strstr(full, "      Arguments:\n        a: 1\n") && strstr(full, "(native frames missing: stack \\x1b[31m)") &&
               strstr(full, "The frame stack for thread 8 is empty"),
               "native and locals: the merge warning, the native frame, arguments, the escaped error, the other thread");
        free(plain);
        free(full);
        return tap_done();
}
