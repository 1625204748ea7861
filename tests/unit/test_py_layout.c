/* SPDX-License-Identifier: MIT */
/*
 * TAP tests for analyzer/python/py_layout.c: the table's shape and
 * py_layout_from_debug_offsets().
 *
 * The debug-offsets block is the one pyenv's CPython 3.13.0 carries at the
 * start of _PyRuntime, read with
 *   python3.13 -c "import ctypes; print(bytes((ctypes.c_char * 584)
 *                  .in_dll(ctypes.pythonapi, '_PyRuntime')))"
 * and spelled out below with the field names of 3.13's _Py_DebugOffsets
 * (all uint64_t, so the struct has no padding and matches the bytes).
 * tests/layout/run-layout-check checks the same function against the real
 * header and libpython.
 */

#include <errno.h>
#include <string.h>

#include "py_layout.h"
#include "tap.h"

struct debug_offsets_313 {
        char cookie[8];
        uint64_t version, free_threaded;
        struct { uint64_t size, finalizing, interpreters_head; } runtime_state;
        struct {
                uint64_t size, id, next, threads_head, gc, imports_modules, sysdict, builtins,
                         ceval_gil, gil_runtime_state, gil_runtime_state_enabled,
                         gil_runtime_state_locked, gil_runtime_state_holder;
        } interpreter_state;
        struct {
                uint64_t size, prev, next, interp, current_frame, thread_id, native_thread_id,
                         datastack_chunk, status;
        } thread_state;
        struct { uint64_t size, previous, executable, instr_ptr, localsplus, owner; } interpreter_frame;
        struct {
                uint64_t size, filename, name, qualname, linetable, firstlineno, argcount,
                         localsplusnames, localspluskinds, co_code_adaptive;
        } code_object;
        struct { uint64_t size, ob_type; } pyobject;
        struct { uint64_t size, tp_name, tp_repr, tp_flags; } type_object;
        struct { uint64_t size, ob_item, ob_size; } tuple_object;
        struct { uint64_t size, ob_item, ob_size; } list_object;
        struct { uint64_t size, ma_keys, ma_values; } dict_object;
        struct { uint64_t size, ob_fval; } float_object;
        struct { uint64_t size, lv_tag, ob_digit; } long_object;
        struct { uint64_t size, ob_size, ob_sval; } bytes_object;
        struct { uint64_t size, state, length, asciiobject_size; } unicode_object;
        struct { uint64_t size, collecting; } gc;
};

_Static_assert(sizeof(struct debug_offsets_313) == 584, "3.13's block is 584 bytes");

static const struct debug_offsets_313 real_313 = {
        .cookie = { 'x', 'd', 'e', 'b', 'u', 'g', 'p', 'y' },
        .version = 0x030d00f0,
        .free_threaded = 0,
        .runtime_state = { 283320, 608, 632 },
        .interpreter_state = { 194968, 7272, 7264, 7344, 7400, 7656, 7640, 7648, 16, 7752, 0, 7768, 7760 },
        .thread_state = { 304, 0, 8, 16, 72, 152, 160, 232, 32 },
        .interpreter_frame = { 80, 8, 0, 56, 72, 70 },
        .code_object = { 208, 112, 120, 128, 136, 68, 52, 96, 104, 200 },
        .pyobject = { 16, 8 },
        .type_object = { 416, 24, 88, 168 },
        .tuple_object = { 32, 24, 16 },
        .list_object = { 40, 24, 16 },
        .dict_object = { 48, 32, 40 },
        .float_object = { 24, 16 },
        .long_object = { 32, 16, 24 },
        .bytes_object = { 40, 16, 32 },
        .unicode_object = { 64, 32, 16, 40 },
        .gc = { 240, 200 },
};

static int from(const struct debug_offsets_313 *b, size_t len, struct py_layout *out) {
        return py_layout_from_debug_offsets(b, len, out, NULL);
}

static void test_table(void) {
        size_t n = py_layout_count();
        bool sorted = true, found = true;

        TAP_EQ_INT(n, 11, "the table has 2.7 and 3.6-3.15");
        for (size_t i = 0; i < n; i++) {
                const struct py_layout *l = py_layout_at(i);
                if (i > 0) {
                        const struct py_layout *p = py_layout_at(i - 1);
                        if (p->major > l->major || (p->major == l->major && p->minor >= l->minor))
                                sorted = false;
                }
                if (py_layout_for(l->major, l->minor) != l)
                        found = false;
        }
        tap_ok(sorted, "entries are sorted oldest first");
        tap_ok(found, "py_layout_for() finds every entry");
        tap_ok(py_layout_at(n) == NULL, "py_layout_at(count) is NULL");
        tap_ok(py_layout_for(3, 5) == NULL && py_layout_for(3, 16) == NULL && py_layout_for(4, 0) == NULL,
               "py_layout_for() of an unknown version is NULL");
}

static void test_valid(void) {
        const struct py_layout *t = py_layout_for(3, 13);
        struct py_layout l;
        int r;

        memset(&l, 0xa5, sizeof(l));
        r = from(&real_313, sizeof(real_313), &l);
        TAP_EQ_INT(r, 0, "3.13.0's real block is accepted");
        if (r != 0 || !t)
                return;
        tap_ok(l.major == 3 && l.minor == 13, "version 3.13 from the block");
        tap_ok(l.runtime_kind == PY_RUNTIME_PYRUNTIME && l.gil_kind == PY_GIL_INTERP_GIL &&
               l.gc_kind == PY_GC_INTERP && l.frame_kind == PY_FRAMES_CURRENT &&
               l.line_format == PY_LINES_LOCATIONS311 && l.instr_is_current,
               "mechanisms come from the 3.13 entry");
        TAP_EQ_INT(l.runtime.interpreters_head, 632, "runtime.interpreters_head");
        TAP_EQ_INT(l.interp.next, 7264, "interp.next");
        TAP_EQ_INT(l.interp.tstate_head, 7344, "interp.tstate_head (threads.head)");
        TAP_EQ_INT(l.interp.gc_collecting, 7400 + 200, "interp.gc_collecting is gc + gc.collecting");
        TAP_EQ_INT(l.interp.ceval_gil, 16, "interp.ceval_gil");
        TAP_EQ_INT(l.interp.modules, 7656, "interp.modules (imports.modules)");
        TAP_EQ_INT(l.gil.locked, 16, "gil.locked is relative to the _gil_runtime_state");
        TAP_EQ_INT(l.gil.last_holder, 8, "gil.last_holder is relative to the _gil_runtime_state");
        TAP_EQ_INT(l.tstate.current_frame, 72, "tstate.current_frame");
        TAP_EQ_INT(l.tstate.native_thread_id, 160, "tstate.native_thread_id");
        TAP_EQ_INT(l.iframe.code, 0, "iframe.code (f_executable)");
        TAP_EQ_INT(l.iframe.instr, 56, "iframe.instr (instr_ptr)");
        TAP_EQ_INT(l.iframe.owner, 70, "iframe.owner");
        TAP_EQ_INT(l.code.code_adaptive, 200, "code.code_adaptive");
        TAP_EQ_INT(l.code.linetable, 136, "code.linetable");
        TAP_EQ_INT(l.object.ob_size, 16, "object.ob_size from the tuple's ob_size");
        TAP_EQ_INT(l.unicode.ascii_data, 40, "unicode.ascii_data is sizeof(PyASCIIObject)");
        /* Not in the block: kept from the table. */
        TAP_EQ_INT(l.iframe.stacktop, t->iframe.stacktop, "iframe.stacktop comes from the table");
        TAP_EQ_INT(l.code.flags, t->code.flags, "code.flags comes from the table");
        TAP_EQ_INT(l.unicode.compact_data, t->unicode.compact_data, "unicode.compact_data comes from the table");
        TAP_EQ_INT(l.tstate.frame, PY_OFF_NONE, "tstate.frame stays PY_OFF_NONE");
        TAP_EQ_INT(l.owner_cstack, t->owner_cstack, "owner_cstack comes from the table");
}

static void test_overlay(void) {
        struct debug_offsets_313 b = real_313;
        struct py_layout l;
        uint8_t shifted[sizeof(b) + 1];

        /* A later 3.13.x that moved fields: the block wins over the table. */
        b.version = 0x030d05f0;
        b.thread_state.native_thread_id = 168;
        b.code_object.qualname = 144;
        TAP_EQ_INT(from(&b, sizeof(b), &l), 0, "3.13.5 block is accepted");
        TAP_EQ_INT(l.tstate.native_thread_id, 168, "a moved field is taken from the block");
        TAP_EQ_INT(l.code.qualname, 144, "another moved field is taken from the block");

        /* The block is read from core bytes at any alignment. */
        memcpy(shifted + 1, &real_313, sizeof(real_313));
        TAP_EQ_INT(py_layout_from_debug_offsets(shifted + 1, sizeof(real_313), &l, NULL), 0,
                   "an unaligned block is accepted");
        TAP_EQ_INT(l.interp.tstate_head, 7344, "and read correctly");
}

static void test_rejects(void) {
        struct debug_offsets_313 b;
        struct py_layout l, before;

        b = real_313;
        b.cookie[7] = 'z';
        TAP_EQ_INT(from(&b, sizeof(b), &l), -EINVAL, "bad cookie");

        TAP_EQ_INT(from(&real_313, sizeof(real_313) - 1, &l), -EINVAL, "block one byte short");
        TAP_EQ_INT(from(&real_313, 8, &l), -EINVAL, "cookie only");
        TAP_EQ_INT(from(&real_313, 0, &l), -EINVAL, "empty block");
        TAP_EQ_INT(py_layout_from_debug_offsets(NULL, 584, &l, NULL), -EINVAL, "NULL block");

        b = real_313;
        b.version = 0x030e00f0;
        TAP_EQ_INT(from(&b, sizeof(b), &l), -EINVAL, "a 3.14 version in 3.13's 584 bytes: too short for 3.14's list");
        b.version = 0x030c01f0;
        TAP_EQ_INT(from(&b, sizeof(b), &l), -EPROTONOSUPPORT, "3.12 never had the block");

        uint64_t version = 0;
        b.version = 0x031000f0;
        TAP_EQ_INT(py_layout_from_debug_offsets(&b, sizeof(b), &l, &version), -EPROTONOSUPPORT,
                   "3.16: a version whose block we do not know is refused, never guessed");
        tap_ok(version == 0x031000f0, "and the version it declares is handed back to be named");

        b = real_313;
        b.free_threaded = 1;
        TAP_EQ_INT(from(&b, sizeof(b), &l), -EINVAL,
                   "free-threaded, with ob_type where a default build has it: damaged");
        b.pyobject.ob_type = 200;
        TAP_EQ_INT(from(&b, sizeof(b), &l), -EINVAL, "free-threaded, ob_type past any object header: damaged");
        b.pyobject.ob_type = 28;
        TAP_EQ_INT(from(&b, sizeof(b), &l), -EINVAL, "free-threaded, ob_type not pointer-aligned: damaged");

        /* the real 3.13t header puts ob_type at 24: the table's object fields move by 16 */
        const struct py_layout *t313 = py_layout_for(3, 13);
        b = real_313;
        b.free_threaded = 1;
        b.pyobject.size = 32;
        b.pyobject.ob_type = 24;
        TAP_EQ_INT(from(&b, sizeof(b), &l), 0, "free-threaded 3.13 block");
        tap_ok(l.free_threaded && !t313->free_threaded, "the layout says free-threaded, the table does not");
        TAP_EQ_INT(l.code.nlocals, t313->code.nlocals + 16, "co_nlocals (not in the block) moves with the header");
        TAP_EQ_INT(l.unicode.compact_data, t313->unicode.compact_data + 16,
                   "the compact unicode data (not in 3.13's block) moves too");
        TAP_EQ_INT(l.dict.dk_nentries, t313->dict.dk_nentries, "dict keys are no object: they stay");
        TAP_EQ_INT(l.tstate.thread_id, (py_off)b.thread_state.thread_id, "the block's own offsets are kept");
        TAP_EQ_INT(l.iframe.tlbc_index, PY_OFF_NONE, "3.13 has no thread-local bytecode");

        b = real_313;
        b.runtime_state.interpreters_head = b.runtime_state.size;
        TAP_EQ_INT(from(&b, sizeof(b), &l), -EINVAL, "offset == its struct's size");

        b = real_313;
        b.thread_state.current_frame = 1ull << 40;
        TAP_EQ_INT(from(&b, sizeof(b), &l), -EINVAL, "offset far past its struct");

        b = real_313;
        b.interpreter_state.size = (1u << 20) + 8;
        TAP_EQ_INT(from(&b, sizeof(b), &l), -EINVAL, "struct size over 1 MiB");

        b = real_313;
        b.code_object.size = 0;
        TAP_EQ_INT(from(&b, sizeof(b), &l), -EINVAL, "struct size 0");

        b = real_313;
        b.interpreter_state.gil_runtime_state_locked = b.interpreter_state.gil_runtime_state - 8;
        TAP_EQ_INT(from(&b, sizeof(b), &l), -EINVAL, "gil.locked before the gil state");

        b = real_313;
        b.interpreter_state.gc = b.interpreter_state.size - 8;
        TAP_EQ_INT(from(&b, sizeof(b), &l), -EINVAL, "gc state running past the interpreter");

        b = real_313;
        b.unicode_object.asciiobject_size = b.unicode_object.size + 1;
        TAP_EQ_INT(from(&b, sizeof(b), &l), -EINVAL, "sizeof(PyASCIIObject) > sizeof(PyUnicodeObject)");

        /* A refused block leaves *out alone. */
        memset(&l, 0x5a, sizeof(l));
        before = l;
        b = real_313;
        b.gc.collecting = b.gc.size;
        TAP_EQ_INT(from(&b, sizeof(b), &l), -EINVAL, "gc.collecting == gc size");
        tap_ok(memcmp(&l, &before, sizeof(l)) == 0, "*out untouched on failure");
}

int main(void) {
        test_table();
        test_valid();
        test_overlay();
        test_rejects();
        return tap_done();
}
