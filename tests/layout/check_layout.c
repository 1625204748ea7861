/* SPDX-License-Identifier: MIT */
/*
 * check_layout: compare the py_layout table entry for the CPython this file
 * is compiled against with offsetof()/sizeof() taken from that CPython's own
 * headers.  run-layout-check builds it once per installed interpreter.
 *
 * Output is TAP without numbers ("ok - ..." / "not ok - ..."); the driver
 * script numbers the lines of all interpreters and prints the plan.  A drift
 * prints a "#" line naming the field, the table value and the header value.
 *
 * argv[1] is a label for the interpreter (e.g. "pyenv-3.11.7"); with
 * "--dump" as argv[2] the header values are printed instead, which is how a
 * new table entry is written.
 */

#include <patchlevel.h>

#define AT_LEAST(maj, min) (PY_VERSION_HEX >= (((maj) << 24) | ((min) << 16)))

/* The runtime, interpreter and frame structs are internal from 3.7 on. */
#if AT_LEAST(3, 7)
#  ifndef Py_BUILD_CORE
#    define Py_BUILD_CORE 1
#  endif
#endif

#include <Python.h>

#if !AT_LEAST(3, 7)
#  include <code.h>
#  include <frameobject.h>
#elif !AT_LEAST(3, 8)
#  include <code.h>
#  include <frameobject.h>
#  include <internal/pystate.h>
#elif !AT_LEAST(3, 9)
#  include <code.h>
#  include <frameobject.h>
#  include <internal/pycore_pystate.h>
#elif !AT_LEAST(3, 11)
#  include <frameobject.h>
#  include <internal/pycore_interp.h>
#  include <internal/pycore_runtime.h>
#else
#  include <internal/pycore_code.h>
#  include <internal/pycore_frame.h>
#  if AT_LEAST(3, 14)
#    include <internal/pycore_interpframe.h>
#    include <internal/pycore_debug_offsets.h>
#  endif
#  include <internal/pycore_interp.h>
#  include <internal/pycore_runtime.h>
#  include <internal/pycore_dict.h>
#  if AT_LEAST(3, 12)
#    include <internal/pycore_gil.h>
#  endif
#endif
#if !AT_LEAST(3, 11)
#  include <longintrepr.h>
#endif

#if AT_LEAST(3, 6) && !AT_LEAST(3, 11)
/*
 * 3.6-3.10 keep the dict keys object in Objects/dict-common.h, which is not
 * installed: these are copies of it (identical in 3.6-3.10 up to the type of
 * dk_indices, which does not move it), so at least the arithmetic on it is
 * the compiler's.  PyDictKeyEntry lives in the same file.
 */
struct dict_keys_copy {
        Py_ssize_t dk_refcnt;
        Py_ssize_t dk_size;
        void *dk_lookup;
        Py_ssize_t dk_usable;
        Py_ssize_t dk_nentries;
        char dk_indices[];
};
typedef struct {
        Py_hash_t me_hash;
        PyObject *me_key;
        PyObject *me_value;
} dict_entry_copy;
#endif

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "py_layout.h"

#define NONE ((long)PY_OFF_NONE)

static const char *label;
static bool dump;
static int failures;

/* One field group becomes one TAP line; its rows are collected first. */
static struct row {
        const char *name;
        long table, header;
} rows[64];
static size_t nrows;

static void row(const char *name, long table, long header) {
        if (nrows < sizeof(rows) / sizeof(rows[0]))
                rows[nrows++] = (struct row){ name, table, header };
}

#define R(field, expr) row(#field, (long)L->field, (long)(expr))
/* A field this version does not have. */
#define N(field) row(#field, (long)L->field, NONE)

static void group(const char *what) {
        size_t bad = 0;

        if (dump) {
                for (size_t i = 0; i < nrows; i++)
                        printf("%-28s %ld\n", rows[i].name, rows[i].header);
                nrows = 0;
                return;
        }
        for (size_t i = 0; i < nrows; i++)
                if (rows[i].table != rows[i].header)
                        bad++;
        printf("%sok - %s %s: %zu fields\n", bad ? "not " : "", label, what, nrows);
        for (size_t i = 0; i < nrows; i++)
                if (rows[i].table != rows[i].header)
                        printf("#   %s %s: table %ld, header %ld\n", label,
                               rows[i].name, rows[i].table, rows[i].header);
        if (bad)
                failures++;
        nrows = 0;
}

static void check(bool cond, const char *what) {
        if (dump)
                return;
        printf("%sok - %s %s\n", cond ? "" : "not ", label, what);
        if (!cond)
                failures++;
}

static void check_table(const struct py_layout *L) {
        R(major, PY_MAJOR_VERSION);
        R(minor, PY_MINOR_VERSION);
#if !AT_LEAST(3, 7)
        R(runtime_kind, PY_RUNTIME_INTERP_HEAD);
#else
        R(runtime_kind, PY_RUNTIME_PYRUNTIME);
#endif
#if AT_LEAST(3, 12)
        R(gil_kind, PY_GIL_INTERP_GIL);
#else
        R(gil_kind, PY_GIL_TSTATE_CURRENT);
#endif
#if AT_LEAST(3, 9)
        R(gc_kind, PY_GC_INTERP);
#elif AT_LEAST(3, 7)
        R(gc_kind, PY_GC_RUNTIME);
#else
        R(gc_kind, PY_GC_STATIC_SYMBOL);
#endif
#if AT_LEAST(3, 13)
        R(frame_kind, PY_FRAMES_CURRENT);
#elif AT_LEAST(3, 11)
        R(frame_kind, PY_FRAMES_CFRAME);
#else
        R(frame_kind, PY_FRAMES_OBJECTS);
#endif
#if AT_LEAST(3, 11)
        R(line_format, PY_LINES_LOCATIONS311);
#elif AT_LEAST(3, 10)
        R(line_format, PY_LINES_LINETABLE310);
#elif AT_LEAST(3, 6)
        R(line_format, PY_LINES_LNOTAB36);
#else
        R(line_format, PY_LINES_LNOTAB27);
#endif
        group("version and kinds");

#if AT_LEAST(3, 7)
        R(runtime.interpreters_head, offsetof(_PyRuntimeState, interpreters.head));
#else
        N(runtime.interpreters_head);
#endif
#if AT_LEAST(3, 7) && !AT_LEAST(3, 12)
        R(runtime.gilstate_tstate_current, offsetof(_PyRuntimeState, gilstate.tstate_current));
#else
        N(runtime.gilstate_tstate_current);
#endif
#if AT_LEAST(3, 7) && !AT_LEAST(3, 9)
        R(runtime.gc_collecting, offsetof(_PyRuntimeState, gc.collecting));
#else
        N(runtime.gc_collecting);
#endif
        group("_PyRuntimeState");

        R(interp.next, offsetof(PyInterpreterState, next));
#if AT_LEAST(3, 7)
        R(interp.id, offsetof(PyInterpreterState, id));
#else
        N(interp.id);
#endif
#if AT_LEAST(3, 11)
        R(interp.tstate_head, offsetof(PyInterpreterState, threads.head));
#else
        R(interp.tstate_head, offsetof(PyInterpreterState, tstate_head));
#endif
#if AT_LEAST(3, 9)
        R(interp.gc_collecting, offsetof(PyInterpreterState, gc.collecting));
#else
        N(interp.gc_collecting);
#endif
#if AT_LEAST(3, 12)
        R(interp.ceval_gil, offsetof(PyInterpreterState, ceval.gil));
        R(interp.modules, offsetof(PyInterpreterState, imports.modules));
#else
        N(interp.ceval_gil);
        R(interp.modules, offsetof(PyInterpreterState, modules));
#endif
        group("PyInterpreterState");

#if AT_LEAST(3, 12)
        R(gil.locked, offsetof(struct _gil_runtime_state, locked));
        R(gil.last_holder, offsetof(struct _gil_runtime_state, last_holder));
#else
        N(gil.locked);
        N(gil.last_holder);
#endif
        group("_gil_runtime_state");

        R(tstate.next, offsetof(PyThreadState, next));
        R(tstate.interp, offsetof(PyThreadState, interp));
#if AT_LEAST(3, 11)
        N(tstate.frame);
#else
        R(tstate.frame, offsetof(PyThreadState, frame));
#endif
#if AT_LEAST(3, 10) && !AT_LEAST(3, 13)
        R(tstate.cframe, offsetof(PyThreadState, cframe));
#else
        N(tstate.cframe);
#endif
#if AT_LEAST(3, 13)
        R(tstate.current_frame, offsetof(PyThreadState, current_frame));
#else
        N(tstate.current_frame);
#endif
        R(tstate.thread_id, offsetof(PyThreadState, thread_id));
#if AT_LEAST(3, 11)
        R(tstate.native_thread_id, offsetof(PyThreadState, native_thread_id));
#else
        N(tstate.native_thread_id);
#endif
        /* what 3.15's debug offsets publish; earlier versions are not read for them */
#if AT_LEAST(3, 15)
        R(tstate.holds_gil, offsetof(PyThreadState, holds_gil));
        R(tstate.current_exception, offsetof(PyThreadState, current_exception));
        R(tstate.exc_state, offsetof(PyThreadState, exc_state));
        R(err_stackitem.exc_value, offsetof(_PyErr_StackItem, exc_value));
#else
        N(tstate.holds_gil);
        N(tstate.current_exception);
        N(tstate.exc_state);
        N(err_stackitem.exc_value);
#endif
#if AT_LEAST(3, 15)
        R(exc.args, offsetof(PyBaseExceptionObject, args));
#else
        N(exc.args);
#endif
        group("PyThreadState");

#if AT_LEAST(3, 11) && !AT_LEAST(3, 13)
        R(cframe.current_frame, offsetof(_PyCFrame, current_frame));
#else
        N(cframe.current_frame);
#endif
        group("_PyCFrame");

#if AT_LEAST(3, 11)
        N(frame.back);
        N(frame.code);
        N(frame.lasti);
        N(frame.lineno);
        N(frame.localsplus);
#else
        R(frame.back, offsetof(PyFrameObject, f_back));
        R(frame.code, offsetof(PyFrameObject, f_code));
        R(frame.lasti, offsetof(PyFrameObject, f_lasti));
        R(frame.lineno, offsetof(PyFrameObject, f_lineno));
        R(frame.localsplus, offsetof(PyFrameObject, f_localsplus));
#endif
        group("PyFrameObject");

#if AT_LEAST(3, 11)
        R(iframe.previous, offsetof(_PyInterpreterFrame, previous));
#  if AT_LEAST(3, 13)
        R(iframe.code, offsetof(_PyInterpreterFrame, f_executable));
        R(iframe.instr, offsetof(_PyInterpreterFrame, instr_ptr));
#  else
        R(iframe.code, offsetof(_PyInterpreterFrame, f_code));
        R(iframe.instr, offsetof(_PyInterpreterFrame, prev_instr));
#  endif
        R(iframe.localsplus, offsetof(_PyInterpreterFrame, localsplus));
#  if AT_LEAST(3, 14)
        N(iframe.stacktop);
        R(iframe.stackpointer, offsetof(_PyInterpreterFrame, stackpointer));
#  else
        R(iframe.stacktop, offsetof(_PyInterpreterFrame, stacktop));
        N(iframe.stackpointer);
#  endif
        R(iframe.owner, offsetof(_PyInterpreterFrame, owner));
        R(stackrefs, AT_LEAST(3, 14));
#  if AT_LEAST(3, 14)
        N(iframe.is_entry);
        /* entry frames (3.14) and base frames (3.15) are the interpreter's: every owner from
         * here on is not Python code */
        R(owner_cstack, FRAME_OWNED_BY_INTERPRETER);
#  elif AT_LEAST(3, 12)
        N(iframe.is_entry);
        R(owner_cstack, FRAME_OWNED_BY_CSTACK);
#  else
        R(iframe.is_entry, offsetof(_PyInterpreterFrame, is_entry));
        R(owner_cstack, -1);
#  endif
        R(owner_generator, FRAME_OWNED_BY_GENERATOR);
        R(instr_is_current, AT_LEAST(3, 13));
#else
        N(iframe.previous);
        N(iframe.code);
        N(iframe.instr);
        N(iframe.localsplus);
        N(iframe.stacktop);
        N(iframe.stackpointer);
        N(iframe.owner);
        N(iframe.is_entry);
        R(stackrefs, 0);
        R(owner_cstack, -1);
        R(owner_generator, -1);
        R(instr_is_current, 0);
#endif
        group("_PyInterpreterFrame");

        R(code.argcount, offsetof(PyCodeObject, co_argcount));
#if AT_LEAST(3, 8)
        R(code.posonlyargcount, offsetof(PyCodeObject, co_posonlyargcount));
#else
        N(code.posonlyargcount);
#endif
#if AT_LEAST(3, 0)
        R(code.kwonlyargcount, offsetof(PyCodeObject, co_kwonlyargcount));
#else
        N(code.kwonlyargcount);
#endif
        R(code.nlocals, offsetof(PyCodeObject, co_nlocals));
        R(code.flags, offsetof(PyCodeObject, co_flags));
        R(code.firstlineno, offsetof(PyCodeObject, co_firstlineno));
        R(code.filename, offsetof(PyCodeObject, co_filename));
        R(code.name, offsetof(PyCodeObject, co_name));
#if AT_LEAST(3, 10)
        N(code.lnotab);
        R(code.linetable, offsetof(PyCodeObject, co_linetable));
#else
        R(code.lnotab, offsetof(PyCodeObject, co_lnotab));
        N(code.linetable);
#endif
#if AT_LEAST(3, 11)
        N(code.code);
        R(code.qualname, offsetof(PyCodeObject, co_qualname));
        N(code.varnames);
        N(code.cellvars);
        N(code.freevars);
        R(code.localsplusnames, offsetof(PyCodeObject, co_localsplusnames));
        R(code.localspluskinds, offsetof(PyCodeObject, co_localspluskinds));
        R(code.firsttraceable, offsetof(PyCodeObject, _co_firsttraceable));
        R(code.code_adaptive, offsetof(PyCodeObject, co_code_adaptive));
#else
        R(code.code, offsetof(PyCodeObject, co_code));
        N(code.qualname);
        R(code.varnames, offsetof(PyCodeObject, co_varnames));
        R(code.cellvars, offsetof(PyCodeObject, co_cellvars));
        R(code.freevars, offsetof(PyCodeObject, co_freevars));
        N(code.localsplusnames);
        N(code.localspluskinds);
        N(code.firsttraceable);
        N(code.code_adaptive);
#endif
        group("PyCodeObject");

        R(object.ob_type, offsetof(PyObject, ob_type));
        R(object.ob_size, offsetof(PyVarObject, ob_size));
        R(object.tp_name, offsetof(PyTypeObject, tp_name));
        R(object.tp_flags, offsetof(PyTypeObject, tp_flags));
        group("PyObject/PyTypeObject");

#if AT_LEAST(3, 0)
        R(bytes.ob_size, offsetof(PyBytesObject, ob_base.ob_size));
        R(bytes.ob_sval, offsetof(PyBytesObject, ob_sval));
        group("PyBytesObject");
#else
        R(bytes.ob_size, offsetof(PyStringObject, ob_size));
        R(bytes.ob_sval, offsetof(PyStringObject, ob_sval));
        group("PyStringObject");
#endif

#if AT_LEAST(3, 3)
        R(unicode.length, offsetof(PyASCIIObject, length));
        R(unicode.state, offsetof(PyASCIIObject, state));
        R(unicode.ascii_data, sizeof(PyASCIIObject));
        R(unicode.compact_data, sizeof(PyCompactUnicodeObject));
        R(unicode.data_any, offsetof(PyUnicodeObject, data.any));
#else
        N(unicode.length);
        N(unicode.state);
        N(unicode.ascii_data);
        N(unicode.compact_data);
        N(unicode.data_any);
#endif
        group("PyUnicodeObject");

        R(seq.tuple_items, offsetof(PyTupleObject, ob_item));
        R(seq.list_items, offsetof(PyListObject, ob_item));
        group("PyTupleObject/PyListObject");

#if AT_LEAST(3, 0)
        N(unicode27.length);
        N(unicode27.str);
        R(unicode27.char_size, 0);
#else
        R(unicode27.length, offsetof(PyUnicodeObject, length));
        R(unicode27.str, offsetof(PyUnicodeObject, str));
        R(unicode27.char_size, Py_UNICODE_SIZE);
#endif
        group("PyUnicodeObject (2.7)");

#if AT_LEAST(3, 0)
        N(num.int_ival);
#else
        R(num.int_ival, offsetof(PyIntObject, ob_ival));
#endif
#if AT_LEAST(3, 12)
        R(num.long_lv_tag, offsetof(PyLongObject, long_value.lv_tag));
        R(num.long_digits, offsetof(PyLongObject, long_value.ob_digit));
#else
        N(num.long_lv_tag);
        R(num.long_digits, offsetof(PyLongObject, ob_digit));
#endif
        R(num.long_shift, PyLong_SHIFT);
        R(num.long_digit_size, sizeof(digit));
        R(num.float_fval, offsetof(PyFloatObject, ob_fval));
        R(num.cell_ref, offsetof(PyCellObject, ob_ref));
        group("PyIntObject/PyLongObject/PyFloatObject/PyCellObject");

        R(dict.ma_used, offsetof(PyDictObject, ma_used));
#if AT_LEAST(3, 0)
        R(dict_kind, AT_LEAST(3, 13) ? PY_DICT_KEYS313 : AT_LEAST(3, 11) ? PY_DICT_KEYS311 : PY_DICT_KEYS36);
        R(dict.ma_keys, offsetof(PyDictObject, ma_keys));
        R(dict.ma_values, offsetof(PyDictObject, ma_values));
        N(dict.ma_mask);
        N(dict.ma_table);
#else
        R(dict_kind, PY_DICT_TABLE27);
        N(dict.ma_keys);
        N(dict.ma_values);
        R(dict.ma_mask, offsetof(PyDictObject, ma_mask));
        R(dict.ma_table, offsetof(PyDictObject, ma_table));
#endif
#if AT_LEAST(3, 11)
        N(dict.dk_size);
        R(dict.dk_log2_size, offsetof(PyDictKeysObject, dk_log2_size));
        R(dict.dk_log2_index_bytes, offsetof(PyDictKeysObject, dk_log2_index_bytes));
        R(dict.dk_kind, offsetof(PyDictKeysObject, dk_kind));
        R(dict.dk_nentries, offsetof(PyDictKeysObject, dk_nentries));
        R(dict.dk_indices, offsetof(PyDictKeysObject, dk_indices));
        R(dict.entry_size, sizeof(PyDictKeyEntry));
        R(dict.entry_key, offsetof(PyDictKeyEntry, me_key));
        R(dict.entry_value, offsetof(PyDictKeyEntry, me_value));
        R(dict.unicode_entry_size, sizeof(PyDictUnicodeEntry));
        R(dict.unicode_entry_key, offsetof(PyDictUnicodeEntry, me_key));
        R(dict.unicode_entry_value, offsetof(PyDictUnicodeEntry, me_value));
        R(dict.values_values, offsetof(PyDictValues, values));
#  if AT_LEAST(3, 13)
        R(dict.values_capacity, offsetof(PyDictValues, capacity));
        R(dict.values_size, offsetof(PyDictValues, size));
#  else
        N(dict.values_size);
        N(dict.values_capacity);
#  endif
#elif AT_LEAST(3, 6)
        R(dict.dk_size, offsetof(struct dict_keys_copy, dk_size));
        N(dict.dk_log2_size);
        N(dict.dk_log2_index_bytes);
        N(dict.dk_kind);
        R(dict.dk_nentries, offsetof(struct dict_keys_copy, dk_nentries));
        R(dict.dk_indices, offsetof(struct dict_keys_copy, dk_indices));
        R(dict.entry_size, sizeof(dict_entry_copy));
        R(dict.entry_key, offsetof(dict_entry_copy, me_key));
        R(dict.entry_value, offsetof(dict_entry_copy, me_value));
        N(dict.unicode_entry_size);
        N(dict.unicode_entry_key);
        N(dict.unicode_entry_value);
        R(dict.values_values, 0);       /* ma_values is the PyObject * array itself */
        N(dict.values_capacity);
        N(dict.values_size);
#else
        N(dict.dk_size);
        N(dict.dk_log2_size);
        N(dict.dk_log2_index_bytes);
        N(dict.dk_kind);
        N(dict.dk_nentries);
        N(dict.dk_indices);
        R(dict.entry_size, sizeof(PyDictEntry));
        R(dict.entry_key, offsetof(PyDictEntry, me_key));
        R(dict.entry_value, offsetof(PyDictEntry, me_value));
        N(dict.unicode_entry_size);
        N(dict.unicode_entry_key);
        N(dict.unicode_entry_value);
        N(dict.values_values);
        N(dict.values_capacity);
        N(dict.values_size);
#endif
        group("PyDictObject/PyDictKeysObject");

        R(set.mask, offsetof(PySetObject, mask));
        R(set.table, offsetof(PySetObject, table));
        R(set.used, offsetof(PySetObject, used));
        R(set.entry_size, sizeof(setentry));
        R(set.entry_key, offsetof(setentry, key));
        group("PySetObject");

        R(consts.co_optimized, CO_OPTIMIZED);
        R(consts.co_varargs, CO_VARARGS);
        R(consts.co_varkeywords, CO_VARKEYWORDS);
#if AT_LEAST(3, 12)
        R(consts.fast_hidden, CO_FAST_HIDDEN);
#else
        R(consts.fast_hidden, 0);
#endif
#if AT_LEAST(3, 11)
        R(consts.fast_local, CO_FAST_LOCAL);
        R(consts.fast_cell, CO_FAST_CELL);
        R(consts.fast_free, CO_FAST_FREE);
#else
        R(consts.fast_local, 0);
        R(consts.fast_cell, 0);
        R(consts.fast_free, 0);
#endif
#if AT_LEAST(3, 0)
        R(consts.tpf_int, 0);
        R(consts.tpf_bytes, Py_TPFLAGS_BYTES_SUBCLASS);
#else
        R(consts.tpf_int, Py_TPFLAGS_INT_SUBCLASS);
        R(consts.tpf_bytes, Py_TPFLAGS_STRING_SUBCLASS);
#endif
        R(consts.tpf_long, Py_TPFLAGS_LONG_SUBCLASS);
        R(consts.tpf_list, Py_TPFLAGS_LIST_SUBCLASS);
        R(consts.tpf_tuple, Py_TPFLAGS_TUPLE_SUBCLASS);
        R(consts.tpf_unicode, Py_TPFLAGS_UNICODE_SUBCLASS);
        R(consts.tpf_dict, Py_TPFLAGS_DICT_SUBCLASS);
        group("code flags, local kinds, type flags");
}

#if AT_LEAST(3, 3)
/* The analyzer decodes the state word by bit position (py_layout.h), so
 * make sure the compiler puts the bitfields where it says. */
static void check_unicode_state_bits(void) {
        PyASCIIObject o;
        uint32_t word;

        memset(&o, 0, sizeof(o));
        o.state.kind = PyUnicode_4BYTE_KIND;
        o.state.compact = 1;
        o.state.ascii = 1;
        memcpy(&word, (char *)&o + offsetof(PyASCIIObject, state), sizeof(word));
        check(word == ((uint32_t)PyUnicode_4BYTE_KIND << 2 | 1u << 5 | 1u << 6),
              "unicode state word: kind bits 2-4, compact bit 5, ascii bit 6");
}
#endif

#if AT_LEAST(3, 13)
#include <internal/pycore_runtime_init.h>

/* Every field of struct py_layout, for whole-layout comparisons. */
#define LAYOUT_FIELDS(X) \
        X(major) X(minor) X(runtime_kind) X(gil_kind) X(gc_kind) X(frame_kind) X(line_format) \
        X(runtime.interpreters_head) X(runtime.gilstate_tstate_current) X(runtime.gc_collecting) \
        X(interp.next) X(interp.id) X(interp.tstate_head) X(interp.gc_collecting) X(interp.ceval_gil) \
        X(interp.modules) X(gil.locked) X(gil.last_holder) \
        X(tstate.next) X(tstate.interp) X(tstate.frame) X(tstate.cframe) X(tstate.current_frame) \
        X(tstate.thread_id) X(tstate.native_thread_id) X(tstate.holds_gil) \
        X(tstate.current_exception) X(tstate.exc_state) X(err_stackitem.exc_value) X(exc.args) \
        X(cframe.current_frame) \
        X(frame.back) X(frame.code) X(frame.lasti) X(frame.lineno) X(frame.localsplus) \
        X(iframe.previous) X(iframe.code) X(iframe.instr) X(iframe.localsplus) \
        X(iframe.stacktop) X(iframe.stackpointer) X(iframe.owner) X(iframe.is_entry) \
        X(owner_cstack) X(owner_generator) X(instr_is_current) X(stackrefs) \
        X(code.argcount) X(code.posonlyargcount) X(code.kwonlyargcount) X(code.nlocals) \
        X(code.flags) X(code.firstlineno) X(code.code) X(code.filename) X(code.name) \
        X(code.qualname) X(code.lnotab) X(code.linetable) X(code.varnames) X(code.cellvars) \
        X(code.freevars) X(code.localsplusnames) X(code.localspluskinds) \
        X(code.firsttraceable) X(code.code_adaptive) \
        X(object.ob_type) X(object.ob_size) X(object.tp_name) X(object.tp_flags) \
        X(bytes.ob_size) X(bytes.ob_sval) \
        X(unicode.length) X(unicode.state) X(unicode.ascii_data) X(unicode.compact_data) \
        X(unicode.data_any) X(seq.tuple_items) X(seq.list_items) \
        X(unicode27.length) X(unicode27.str) X(unicode27.char_size) \
        X(num.int_ival) X(num.long_lv_tag) X(num.long_digits) X(num.long_shift) \
        X(num.long_digit_size) X(num.float_fval) X(num.cell_ref) X(dict_kind) \
        X(dict.ma_used) X(dict.ma_keys) X(dict.ma_values) X(dict.ma_mask) X(dict.ma_table) \
        X(dict.dk_size) X(dict.dk_log2_size) X(dict.dk_log2_index_bytes) X(dict.dk_kind) \
        X(dict.dk_nentries) X(dict.dk_indices) X(dict.entry_size) X(dict.entry_key) \
        X(dict.entry_value) X(dict.unicode_entry_size) X(dict.unicode_entry_key) \
        X(dict.unicode_entry_value) X(dict.values_values) X(dict.values_capacity) X(dict.values_size) \
        X(set.mask) X(set.table) X(set.used) X(set.entry_size) X(set.entry_key) \
        X(consts.co_optimized) X(consts.co_varargs) X(consts.co_varkeywords) X(consts.fast_hidden) \
        X(consts.fast_local) X(consts.fast_cell) X(consts.fast_free) X(consts.tpf_int) \
        X(consts.tpf_long) X(consts.tpf_list) X(consts.tpf_tuple) X(consts.tpf_bytes) \
        X(consts.tpf_unicode) X(consts.tpf_dict)

static void compare_layouts(const char *what, const struct py_layout *got,
                            const struct py_layout *want) {
        size_t bad = 0;

#define CMP(f) if ((long)got->f != (long)want->f) { \
                printf("#   %s %s: %s gives %ld, table %ld\n", label, #f, what, \
                       (long)got->f, (long)want->f); \
                bad++; \
        }
        if (dump)
                return;
        LAYOUT_FIELDS(CMP)
#undef CMP
        printf("%sok - %s %s matches the table\n", bad ? "not " : "", label, what);
        if (bad)
                failures++;
}

#if AT_LEAST(3, 14)
/* 3.14+ build the block with a macro of its own. */
static const _Py_DebugOffsets by_hand = _Py_DebugOffsets_INIT(_Py_Debug_Cookie);
#else
/* The block as pycore_runtime_init.h builds it in _PyRuntimeState_INIT,
 * which cannot be used on its own (it initializes the whole runtime). */
static const _Py_DebugOffsets by_hand = {
        .cookie = _Py_Debug_Cookie,
        .version = PY_VERSION_HEX,
        .free_threaded = _Py_Debug_Free_Threaded,
        .runtime_state = {
                .size = sizeof(_PyRuntimeState),
                .finalizing = offsetof(_PyRuntimeState, _finalizing),
                .interpreters_head = offsetof(_PyRuntimeState, interpreters.head),
        },
        .interpreter_state = {
                .size = sizeof(PyInterpreterState),
                .id = offsetof(PyInterpreterState, id),
                .next = offsetof(PyInterpreterState, next),
                .threads_head = offsetof(PyInterpreterState, threads.head),
                .gc = offsetof(PyInterpreterState, gc),
                .imports_modules = offsetof(PyInterpreterState, imports.modules),
                .sysdict = offsetof(PyInterpreterState, sysdict),
                .builtins = offsetof(PyInterpreterState, builtins),
                .ceval_gil = offsetof(PyInterpreterState, ceval.gil),
                .gil_runtime_state = offsetof(PyInterpreterState, _gil),
                .gil_runtime_state_enabled = _Py_Debug_gilruntimestate_enabled,
                .gil_runtime_state_locked = offsetof(PyInterpreterState, _gil.locked),
                .gil_runtime_state_holder = offsetof(PyInterpreterState, _gil.last_holder),
        },
        .thread_state = {
                .size = sizeof(PyThreadState),
                .prev = offsetof(PyThreadState, prev),
                .next = offsetof(PyThreadState, next),
                .interp = offsetof(PyThreadState, interp),
                .current_frame = offsetof(PyThreadState, current_frame),
                .thread_id = offsetof(PyThreadState, thread_id),
                .native_thread_id = offsetof(PyThreadState, native_thread_id),
                .datastack_chunk = offsetof(PyThreadState, datastack_chunk),
                .status = offsetof(PyThreadState, _status),
        },
        .interpreter_frame = {
                .size = sizeof(_PyInterpreterFrame),
                .previous = offsetof(_PyInterpreterFrame, previous),
                .executable = offsetof(_PyInterpreterFrame, f_executable),
                .instr_ptr = offsetof(_PyInterpreterFrame, instr_ptr),
                .localsplus = offsetof(_PyInterpreterFrame, localsplus),
                .owner = offsetof(_PyInterpreterFrame, owner),
        },
        .code_object = {
                .size = sizeof(PyCodeObject),
                .filename = offsetof(PyCodeObject, co_filename),
                .name = offsetof(PyCodeObject, co_name),
                .qualname = offsetof(PyCodeObject, co_qualname),
                .linetable = offsetof(PyCodeObject, co_linetable),
                .firstlineno = offsetof(PyCodeObject, co_firstlineno),
                .argcount = offsetof(PyCodeObject, co_argcount),
                .localsplusnames = offsetof(PyCodeObject, co_localsplusnames),
                .localspluskinds = offsetof(PyCodeObject, co_localspluskinds),
                .co_code_adaptive = offsetof(PyCodeObject, co_code_adaptive),
        },
        .pyobject = {
                .size = sizeof(PyObject),
                .ob_type = offsetof(PyObject, ob_type),
        },
        .type_object = {
                .size = sizeof(PyTypeObject),
                .tp_name = offsetof(PyTypeObject, tp_name),
                .tp_repr = offsetof(PyTypeObject, tp_repr),
                .tp_flags = offsetof(PyTypeObject, tp_flags),
        },
        .tuple_object = {
                .size = sizeof(PyTupleObject),
                .ob_item = offsetof(PyTupleObject, ob_item),
                .ob_size = offsetof(PyTupleObject, ob_base.ob_size),
        },
        .list_object = {
                .size = sizeof(PyListObject),
                .ob_item = offsetof(PyListObject, ob_item),
                .ob_size = offsetof(PyListObject, ob_base.ob_size),
        },
        .dict_object = {
                .size = sizeof(PyDictObject),
                .ma_keys = offsetof(PyDictObject, ma_keys),
                .ma_values = offsetof(PyDictObject, ma_values),
        },
        .float_object = {
                .size = sizeof(PyFloatObject),
                .ob_fval = offsetof(PyFloatObject, ob_fval),
        },
        .long_object = {
                .size = sizeof(PyLongObject),
                .lv_tag = offsetof(PyLongObject, long_value.lv_tag),
                .ob_digit = offsetof(PyLongObject, long_value.ob_digit),
        },
        .bytes_object = {
                .size = sizeof(PyBytesObject),
                .ob_size = offsetof(PyBytesObject, ob_base.ob_size),
                .ob_sval = offsetof(PyBytesObject, ob_sval),
        },
        .unicode_object = {
                .size = sizeof(PyUnicodeObject),
                .state = offsetof(PyUnicodeObject, _base._base.state),
                .length = offsetof(PyUnicodeObject, _base._base.length),
                .asciiobject_size = sizeof(PyASCIIObject),
        },
        .gc = {
                .size = sizeof(struct _gc_runtime_state),
                .collecting = offsetof(struct _gc_runtime_state, collecting),
        },
};
#endif

#ifdef HAVE_LIBELF
#include <fcntl.h>
#include <gelf.h>
#include <unistd.h>

/* The start of the .PyRuntime section of an ELF file (an executable with
 * libpython linked in): the block a core of it carries before Python starts
 * changing the runtime.  0, or -1 when there is no such section. */
static int read_block_from_elf(const char *path, uint8_t *buf, size_t n) {
        int fd = open(path, O_RDONLY | O_CLOEXEC), r = -1;
        Elf *e;
        Elf_Scn *scn = NULL;
        size_t shstrndx;

        if (fd < 0)
                return -1;
        elf_version(EV_CURRENT);
        e = elf_begin(fd, ELF_C_READ, NULL);
        if (e && elf_getshdrstrndx(e, &shstrndx) == 0)
                while ((scn = elf_nextscn(e, scn))) {
                        GElf_Shdr sh;
                        const char *name;

                        if (!gelf_getshdr(scn, &sh) || !(name = elf_strptr(e, shstrndx, sh.sh_name)) ||
                            strcmp(name, ".PyRuntime") != 0 || sh.sh_size < n)
                                continue;
                        if (pread(fd, buf, n, (off_t)sh.sh_offset) == (ssize_t)n)
                                r = 0;
                        break;
                }
        if (e)
                elf_end(e);
        close(fd);
        return r;
}
#endif

static void check_debug_offsets(const struct py_layout *table) {
        struct py_layout got;
        int r;

        r = py_layout_from_debug_offsets(&by_hand, sizeof(by_hand), &got, NULL);
        check(r == 0, "py_layout_from_debug_offsets(block built from the headers) == 0");
        if (r == 0)
                compare_layouts("layout from the header-built _Py_DebugOffsets", &got, table);

#ifdef HAVE_LIBPYTHON
        /* The block libpython itself carries in its statically initialized
         * _PyRuntime: exactly what the analyzer finds in a core. */
        r = py_layout_from_debug_offsets(&_PyRuntime.debug_offsets,
                                         sizeof(_PyRuntime.debug_offsets), &got, NULL);
        check(r == 0, "py_layout_from_debug_offsets(libpython's _PyRuntime) == 0");
        if (r == 0)
                compare_layouts("layout from libpython's _PyRuntime.debug_offsets", &got, table);
#elif defined(HAVE_LIBELF)
        /* An interpreter of another system (Debian sid's, run chrooted): its
         * binary's .PyRuntime section instead of a linked libpython. */
        const char *file = getenv("PYSTACK_LAYOUT_BLOCK_FILE");
        static uint8_t block[sizeof(_Py_DebugOffsets)];
        uint64_t version = 0;

        if (!file || read_block_from_elf(file, block, sizeof(block)) < 0) {
                check(false, "the .PyRuntime section of PYSTACK_LAYOUT_BLOCK_FILE can be read");
                return;
        }
        r = py_layout_from_debug_offsets(block, sizeof(block), &got, &version);
        check(r == 0 && version == PY_VERSION_HEX,
              "py_layout_from_debug_offsets(the binary's .PyRuntime) == 0, of this very version");
        if (r == 0)
                compare_layouts("layout from the binary's .PyRuntime debug offsets", &got, table);
#else
        if (!dump)
                printf("ok - %s libpython's _PyRuntime.debug_offsets # SKIP no shared libpython to link\n",
                       label);
#endif
}
#endif

int main(int argc, char **argv) {
        static const struct py_layout empty;
        const struct py_layout *L;

        label = argc > 1 ? argv[1] : PY_VERSION;
        dump = argc > 2 && strcmp(argv[2], "--dump") == 0;

        L = py_layout_for(PY_MAJOR_VERSION, PY_MINOR_VERSION);
        check(L != NULL, "py_layout_for(" PY_VERSION ") has an entry");
        if (!L) {
                if (!dump)
                        return 1;
                L = &empty;
        }
        check_table(L);
#if AT_LEAST(3, 3)
        check_unicode_state_bits();
#endif
#if AT_LEAST(3, 13)
        check_debug_offsets(L);
#endif
        return failures ? 1 : 0;
}
