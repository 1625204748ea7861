/* SPDX-License-Identifier: MIT */
/*
 * check_layout: the py_layout table entry of the CPython this file is
 * compiled against, taken from that CPython's own headers.  This is the one
 * place that knows how each field of struct py_layout is derived: an offset
 * or size with offsetof()/sizeof(), a constant from the headers, and what the
 * headers cannot say (the kinds, which fields a version has, the owner values
 * that matter) from the version macros.  run-layout-check builds it once per
 * installed interpreter.
 *
 *   check_layout --version   prints PY_VERSION
 *   check_layout --entry     prints the table entry as C source, exactly as
 *                            analyzer/python/py_layout_table.h holds it; run-layout-check
 *                            diffs it against that file, or writes it there
 *   check_layout --analyzer-entry MACHINE
 *                            prints, in the same form, the layout the analyzer
 *                            uses for this version in a core of ELF machine
 *                            MACHINE (a number, e_machine): the table's entry
 *                            through py_layout_for_machine().  run-layout-check
 *                            diffs it against what --entry prints when
 *                            check_layout is built for that machine (aarch64)
 *   check_layout LABEL       the checks a diff cannot make, as TAP without
 *                            numbers ("ok - LABEL ..."): the unicode state bits
 *                            where the analyzer decodes them, and for 3.13+ the
 *                            layout py_layout_from_debug_offsets() makes of the
 *                            _Py_DebugOffsets block (built from the headers, and
 *                            as libpython or the binary carries it) against the
 *                            one from the headers
 *
 * Built with -DENTRY_ONLY (as --write does, and as the cross-compiled aarch64
 * build is), only --version and --entry are left and analyzer/python/py_layout.c is not needed: the table it compiles may be
 * the very thing being rewritten.
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
#  if AT_LEAST(3, 13)
#    include <internal/pycore_object.h>
#    include <internal/pycore_moduleobject.h>
#  endif
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

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "py_layout.h"

#define AS(field) __typeof__(((struct py_layout *)0)->field)
#define SET(field, value) (L->field = (AS(field))(value))
/* A field this version does not have. */
#define ABSENT(field) SET(field, PY_OFF_NONE)

/*
 * Every field of the entry for this version.  Which fields a version has, the
 * kinds and the owner values are the version macros' to say; the rest is the
 * headers'.  A field set in no branch stays UNSET and all_derived() refuses
 * the entry.
 */
static void layout_from_headers(struct py_layout *L) {
        SET(major, PY_MAJOR_VERSION);
        SET(minor, PY_MINOR_VERSION);
#if !AT_LEAST(3, 7)
        SET(runtime_kind, PY_RUNTIME_INTERP_HEAD);
#else
        SET(runtime_kind, PY_RUNTIME_PYRUNTIME);
#endif
#if AT_LEAST(3, 12)
        SET(gil_kind, PY_GIL_INTERP_GIL);
#else
        SET(gil_kind, PY_GIL_TSTATE_CURRENT);
#endif
#if AT_LEAST(3, 9)
        SET(gc_kind, PY_GC_INTERP);
#elif AT_LEAST(3, 7)
        SET(gc_kind, PY_GC_RUNTIME);
#else
        SET(gc_kind, PY_GC_STATIC_SYMBOL);
#endif
#if AT_LEAST(3, 13)
        SET(frame_kind, PY_FRAMES_CURRENT);
#elif AT_LEAST(3, 11)
        SET(frame_kind, PY_FRAMES_CFRAME);
#else
        SET(frame_kind, PY_FRAMES_OBJECTS);
#endif
#if AT_LEAST(3, 11)
        SET(line_format, PY_LINES_LOCATIONS311);
#elif AT_LEAST(3, 10)
        SET(line_format, PY_LINES_LINETABLE310);
#elif AT_LEAST(3, 6)
        SET(line_format, PY_LINES_LNOTAB36);
#else
        SET(line_format, PY_LINES_LNOTAB27);
#endif


#if AT_LEAST(3, 7)
        SET(runtime.interpreters_head, offsetof(_PyRuntimeState, interpreters.head));
#else
        ABSENT(runtime.interpreters_head);
#endif
#if AT_LEAST(3, 7) && !AT_LEAST(3, 12)
        SET(runtime.gilstate_tstate_current, offsetof(_PyRuntimeState, gilstate.tstate_current));
#else
        ABSENT(runtime.gilstate_tstate_current);
#endif
#if AT_LEAST(3, 7) && !AT_LEAST(3, 9)
        SET(runtime.gc_collecting, offsetof(_PyRuntimeState, gc.collecting));
#else
        ABSENT(runtime.gc_collecting);
#endif


        SET(interp.next, offsetof(PyInterpreterState, next));
#if AT_LEAST(3, 7)
        SET(interp.id, offsetof(PyInterpreterState, id));
#else
        ABSENT(interp.id);
#endif
#if AT_LEAST(3, 11)
        SET(interp.tstate_head, offsetof(PyInterpreterState, threads.head));
#else
        SET(interp.tstate_head, offsetof(PyInterpreterState, tstate_head));
#endif
#if AT_LEAST(3, 9)
        SET(interp.gc_collecting, offsetof(PyInterpreterState, gc.collecting));
#else
        ABSENT(interp.gc_collecting);
#endif
#if AT_LEAST(3, 12)
        SET(interp.ceval_gil, offsetof(PyInterpreterState, ceval.gil));
        SET(interp.modules, offsetof(PyInterpreterState, imports.modules));
#else
        ABSENT(interp.ceval_gil);
        SET(interp.modules, offsetof(PyInterpreterState, modules));
#endif


#if AT_LEAST(3, 12)
        SET(gil.locked, offsetof(struct _gil_runtime_state, locked));
        SET(gil.last_holder, offsetof(struct _gil_runtime_state, last_holder));
#else
        ABSENT(gil.locked);
        ABSENT(gil.last_holder);
#endif


        SET(tstate.next, offsetof(PyThreadState, next));
        SET(tstate.interp, offsetof(PyThreadState, interp));
#if AT_LEAST(3, 11)
        ABSENT(tstate.frame);
#else
        SET(tstate.frame, offsetof(PyThreadState, frame));
#endif
#if AT_LEAST(3, 10) && !AT_LEAST(3, 13)
        SET(tstate.cframe, offsetof(PyThreadState, cframe));
#else
        ABSENT(tstate.cframe);
#endif
#if AT_LEAST(3, 13)
        SET(tstate.current_frame, offsetof(PyThreadState, current_frame));
#else
        ABSENT(tstate.current_frame);
#endif
        SET(tstate.thread_id, offsetof(PyThreadState, thread_id));
#if AT_LEAST(3, 11)
        SET(tstate.native_thread_id, offsetof(PyThreadState, native_thread_id));
#else
        ABSENT(tstate.native_thread_id);
#endif
        /* what 3.15's debug offsets publish; earlier versions are not read for them */
#if AT_LEAST(3, 15)
        SET(tstate.holds_gil, offsetof(PyThreadState, holds_gil));
        SET(tstate.current_exception, offsetof(PyThreadState, current_exception));
        SET(tstate.exc_state, offsetof(PyThreadState, exc_state));
        SET(err_stackitem.exc_value, offsetof(_PyErr_StackItem, exc_value));
#else
        ABSENT(tstate.holds_gil);
        ABSENT(tstate.current_exception);
        ABSENT(tstate.exc_state);
        ABSENT(err_stackitem.exc_value);
#endif
#if AT_LEAST(3, 15)
        SET(exc.args, offsetof(PyBaseExceptionObject, args));
#else
        ABSENT(exc.args);
#endif


#if AT_LEAST(3, 11) && !AT_LEAST(3, 13)
        SET(cframe.current_frame, offsetof(_PyCFrame, current_frame));
#else
        ABSENT(cframe.current_frame);
#endif


#if AT_LEAST(3, 11)
        ABSENT(frame.back);
        ABSENT(frame.code);
        ABSENT(frame.lasti);
        ABSENT(frame.lineno);
        ABSENT(frame.localsplus);
#else
        SET(frame.back, offsetof(PyFrameObject, f_back));
        SET(frame.code, offsetof(PyFrameObject, f_code));
        SET(frame.lasti, offsetof(PyFrameObject, f_lasti));
        SET(frame.lineno, offsetof(PyFrameObject, f_lineno));
        SET(frame.localsplus, offsetof(PyFrameObject, f_localsplus));
#endif


#if AT_LEAST(3, 11)
        SET(iframe.previous, offsetof(_PyInterpreterFrame, previous));
#  if AT_LEAST(3, 13)
        SET(iframe.code, offsetof(_PyInterpreterFrame, f_executable));
        SET(iframe.instr, offsetof(_PyInterpreterFrame, instr_ptr));
#  else
        SET(iframe.code, offsetof(_PyInterpreterFrame, f_code));
        SET(iframe.instr, offsetof(_PyInterpreterFrame, prev_instr));
#  endif
        SET(iframe.localsplus, offsetof(_PyInterpreterFrame, localsplus));
#  if AT_LEAST(3, 14)
        ABSENT(iframe.stacktop);
        SET(iframe.stackpointer, offsetof(_PyInterpreterFrame, stackpointer));
#  else
        SET(iframe.stacktop, offsetof(_PyInterpreterFrame, stacktop));
        ABSENT(iframe.stackpointer);
#  endif
        SET(iframe.owner, offsetof(_PyInterpreterFrame, owner));
#  if AT_LEAST(3, 14) && defined(Py_GIL_DISABLED)
        SET(iframe.tlbc_index, offsetof(_PyInterpreterFrame, tlbc_index));
#  else
        ABSENT(iframe.tlbc_index);
#  endif
        SET(stackrefs, AT_LEAST(3, 14));
#  if AT_LEAST(3, 14)
        ABSENT(iframe.is_entry);
        /* entry frames (3.14) and base frames (3.15) are the interpreter's: every owner from
         * here on is not Python code */
        SET(owner_cstack, FRAME_OWNED_BY_INTERPRETER);
#  elif AT_LEAST(3, 12)
        ABSENT(iframe.is_entry);
        SET(owner_cstack, FRAME_OWNED_BY_CSTACK);
#  else
        SET(iframe.is_entry, offsetof(_PyInterpreterFrame, is_entry));
        SET(owner_cstack, -1);
#  endif
        SET(owner_generator, FRAME_OWNED_BY_GENERATOR);
        SET(instr_is_current, AT_LEAST(3, 13));
#else
        ABSENT(iframe.previous);
        ABSENT(iframe.code);
        ABSENT(iframe.instr);
        ABSENT(iframe.localsplus);
        ABSENT(iframe.stacktop);
        ABSENT(iframe.stackpointer);
        ABSENT(iframe.owner);
        ABSENT(iframe.tlbc_index);
        ABSENT(iframe.is_entry);
        SET(stackrefs, 0);
        SET(owner_cstack, -1);
        SET(owner_generator, -1);
        SET(instr_is_current, 0);
#endif
#if AT_LEAST(3, 14)
        /* what an asyncio task's coroutine is suspended in (py_tasks.c); the awaited object sits
         * one stack word below stackpointer, two from 3.15 (a NULL above it) */
        SET(gen.present, 1);
        SET(gen.iframe, offsetof(PyGenObject, gi_iframe));
        SET(gen.frame_state, offsetof(PyGenObject, gi_frame_state));
        SET(gen.yield_from, FRAME_SUSPENDED_YIELD_FROM);
        SET(gen.cleared, FRAME_CLEARED);
        SET(gen.awaited_slot, AT_LEAST(3, 15) ? 2 : 1);
#else
        SET(gen.present, 0);
        ABSENT(gen.iframe);
        ABSENT(gen.frame_state);
        SET(gen.yield_from, 0);
        SET(gen.cleared, 0);
        SET(gen.awaited_slot, 0);
#endif

#ifdef Py_GIL_DISABLED
        SET(free_threaded, 1);
#else
        SET(free_threaded, 0);
#endif

        SET(code.argcount, offsetof(PyCodeObject, co_argcount));
#if AT_LEAST(3, 8)
        SET(code.posonlyargcount, offsetof(PyCodeObject, co_posonlyargcount));
#else
        ABSENT(code.posonlyargcount);
#endif
#if AT_LEAST(3, 0)
        SET(code.kwonlyargcount, offsetof(PyCodeObject, co_kwonlyargcount));
#else
        ABSENT(code.kwonlyargcount);
#endif
        SET(code.nlocals, offsetof(PyCodeObject, co_nlocals));
        SET(code.flags, offsetof(PyCodeObject, co_flags));
        SET(code.firstlineno, offsetof(PyCodeObject, co_firstlineno));
        SET(code.filename, offsetof(PyCodeObject, co_filename));
        SET(code.name, offsetof(PyCodeObject, co_name));
#if AT_LEAST(3, 10)
        ABSENT(code.lnotab);
        SET(code.linetable, offsetof(PyCodeObject, co_linetable));
#else
        SET(code.lnotab, offsetof(PyCodeObject, co_lnotab));
        ABSENT(code.linetable);
#endif
#if AT_LEAST(3, 11)
        ABSENT(code.code);
        SET(code.qualname, offsetof(PyCodeObject, co_qualname));
        ABSENT(code.varnames);
        ABSENT(code.cellvars);
        ABSENT(code.freevars);
        SET(code.localsplusnames, offsetof(PyCodeObject, co_localsplusnames));
        SET(code.localspluskinds, offsetof(PyCodeObject, co_localspluskinds));
        SET(code.firsttraceable, offsetof(PyCodeObject, _co_firsttraceable));
        SET(code.code_adaptive, offsetof(PyCodeObject, co_code_adaptive));
#  if AT_LEAST(3, 14) && defined(Py_GIL_DISABLED)
        SET(code.tlbc, offsetof(PyCodeObject, co_tlbc));
#  else
        ABSENT(code.tlbc);
#  endif
#else
        SET(code.code, offsetof(PyCodeObject, co_code));
        ABSENT(code.qualname);
        SET(code.varnames, offsetof(PyCodeObject, co_varnames));
        SET(code.cellvars, offsetof(PyCodeObject, co_cellvars));
        SET(code.freevars, offsetof(PyCodeObject, co_freevars));
        ABSENT(code.localsplusnames);
        ABSENT(code.localspluskinds);
        ABSENT(code.firsttraceable);
        ABSENT(code.code_adaptive);
        ABSENT(code.tlbc);
#endif


        SET(object.ob_type, offsetof(PyObject, ob_type));
        SET(object.ob_size, offsetof(PyVarObject, ob_size));
        SET(object.tp_name, offsetof(PyTypeObject, tp_name));
        SET(object.tp_flags, offsetof(PyTypeObject, tp_flags));
        SET(object.tp_basicsize, offsetof(PyTypeObject, tp_basicsize));
        SET(object.tp_dictoffset, offsetof(PyTypeObject, tp_dictoffset));
#if AT_LEAST(3, 13)
        SET(object.ht_cached_keys, offsetof(PyHeapTypeObject, ht_cached_keys));
        SET(object.managed_dict, MANAGED_DICT_OFFSET);
#else
        ABSENT(object.ht_cached_keys);
        ABSENT(object.managed_dict);
#endif
#if AT_LEAST(3, 13)
        SET(module.md_state, offsetof(PyModuleObject, md_state));
#else
        ABSENT(module.md_state);
#endif
        SET(weakref.wr_object, offsetof(PyWeakReference, wr_object));


#if AT_LEAST(3, 0)
        SET(bytes.ob_size, offsetof(PyBytesObject, ob_base.ob_size));
        SET(bytes.ob_sval, offsetof(PyBytesObject, ob_sval));

#else
        SET(bytes.ob_size, offsetof(PyStringObject, ob_size));
        SET(bytes.ob_sval, offsetof(PyStringObject, ob_sval));

#endif

#if AT_LEAST(3, 3)
        SET(unicode.length, offsetof(PyASCIIObject, length));
        SET(unicode.state, offsetof(PyASCIIObject, state));
        SET(unicode.ascii_data, sizeof(PyASCIIObject));
        SET(unicode.compact_data, sizeof(PyCompactUnicodeObject));
        SET(unicode.data_any, offsetof(PyUnicodeObject, data.any));
#else
        ABSENT(unicode.length);
        ABSENT(unicode.state);
        ABSENT(unicode.ascii_data);
        ABSENT(unicode.compact_data);
        ABSENT(unicode.data_any);
#endif


        SET(seq.tuple_items, offsetof(PyTupleObject, ob_item));
        SET(seq.list_items, offsetof(PyListObject, ob_item));


#if AT_LEAST(3, 0)
        ABSENT(unicode27.length);
        ABSENT(unicode27.str);
        SET(unicode27.char_size, 0);
#else
        SET(unicode27.length, offsetof(PyUnicodeObject, length));
        SET(unicode27.str, offsetof(PyUnicodeObject, str));
        SET(unicode27.char_size, Py_UNICODE_SIZE);
#endif


#if AT_LEAST(3, 0)
        ABSENT(num.int_ival);
#else
        SET(num.int_ival, offsetof(PyIntObject, ob_ival));
#endif
#if AT_LEAST(3, 12)
        SET(num.long_lv_tag, offsetof(PyLongObject, long_value.lv_tag));
        SET(num.long_digits, offsetof(PyLongObject, long_value.ob_digit));
#else
        ABSENT(num.long_lv_tag);
        SET(num.long_digits, offsetof(PyLongObject, ob_digit));
#endif
        SET(num.long_shift, PyLong_SHIFT);
        SET(num.long_digit_size, sizeof(digit));
        SET(num.float_fval, offsetof(PyFloatObject, ob_fval));
        SET(num.cell_ref, offsetof(PyCellObject, ob_ref));


        SET(dict.ma_used, offsetof(PyDictObject, ma_used));
#if AT_LEAST(3, 0)
        SET(dict_kind, AT_LEAST(3, 13) ? PY_DICT_KEYS313 : AT_LEAST(3, 11) ? PY_DICT_KEYS311 : PY_DICT_KEYS36);
        SET(dict.ma_keys, offsetof(PyDictObject, ma_keys));
        SET(dict.ma_values, offsetof(PyDictObject, ma_values));
        ABSENT(dict.ma_mask);
        ABSENT(dict.ma_table);
#else
        SET(dict_kind, PY_DICT_TABLE27);
        ABSENT(dict.ma_keys);
        ABSENT(dict.ma_values);
        SET(dict.ma_mask, offsetof(PyDictObject, ma_mask));
        SET(dict.ma_table, offsetof(PyDictObject, ma_table));
#endif
#if AT_LEAST(3, 11)
        ABSENT(dict.dk_size);
        SET(dict.dk_log2_size, offsetof(PyDictKeysObject, dk_log2_size));
        SET(dict.dk_log2_index_bytes, offsetof(PyDictKeysObject, dk_log2_index_bytes));
        SET(dict.dk_kind, offsetof(PyDictKeysObject, dk_kind));
        SET(dict.dk_nentries, offsetof(PyDictKeysObject, dk_nentries));
        SET(dict.dk_indices, offsetof(PyDictKeysObject, dk_indices));
        SET(dict.entry_size, sizeof(PyDictKeyEntry));
        SET(dict.entry_key, offsetof(PyDictKeyEntry, me_key));
        SET(dict.entry_value, offsetof(PyDictKeyEntry, me_value));
        SET(dict.unicode_entry_size, sizeof(PyDictUnicodeEntry));
        SET(dict.unicode_entry_key, offsetof(PyDictUnicodeEntry, me_key));
        SET(dict.unicode_entry_value, offsetof(PyDictUnicodeEntry, me_value));
        SET(dict.values_values, offsetof(PyDictValues, values));
#  if AT_LEAST(3, 13)
        SET(dict.values_capacity, offsetof(PyDictValues, capacity));
        SET(dict.values_size, offsetof(PyDictValues, size));
        SET(dict.values_valid, offsetof(PyDictValues, valid));
#  else
        ABSENT(dict.values_valid);
        ABSENT(dict.values_size);
        ABSENT(dict.values_capacity);
#  endif
#elif AT_LEAST(3, 6)
        SET(dict.dk_size, offsetof(struct dict_keys_copy, dk_size));
        ABSENT(dict.dk_log2_size);
        ABSENT(dict.dk_log2_index_bytes);
        ABSENT(dict.dk_kind);
        SET(dict.dk_nentries, offsetof(struct dict_keys_copy, dk_nentries));
        SET(dict.dk_indices, offsetof(struct dict_keys_copy, dk_indices));
        SET(dict.entry_size, sizeof(dict_entry_copy));
        SET(dict.entry_key, offsetof(dict_entry_copy, me_key));
        SET(dict.entry_value, offsetof(dict_entry_copy, me_value));
        ABSENT(dict.unicode_entry_size);
        ABSENT(dict.unicode_entry_key);
        ABSENT(dict.unicode_entry_value);
        SET(dict.values_values, 0);       /* ma_values is the PyObject * array itself */
        ABSENT(dict.values_capacity);
        ABSENT(dict.values_size);
        ABSENT(dict.values_valid);
#else
        ABSENT(dict.dk_size);
        ABSENT(dict.dk_log2_size);
        ABSENT(dict.dk_log2_index_bytes);
        ABSENT(dict.dk_kind);
        ABSENT(dict.dk_nentries);
        ABSENT(dict.dk_indices);
        SET(dict.entry_size, sizeof(PyDictEntry));
        SET(dict.entry_key, offsetof(PyDictEntry, me_key));
        SET(dict.entry_value, offsetof(PyDictEntry, me_value));
        ABSENT(dict.unicode_entry_size);
        ABSENT(dict.unicode_entry_key);
        ABSENT(dict.unicode_entry_value);
        ABSENT(dict.values_values);
        ABSENT(dict.values_capacity);
        ABSENT(dict.values_size);
        ABSENT(dict.values_valid);
#endif


        SET(set.mask, offsetof(PySetObject, mask));
        SET(set.table, offsetof(PySetObject, table));
        SET(set.used, offsetof(PySetObject, used));
        SET(set.entry_size, sizeof(setentry));
        SET(set.entry_key, offsetof(setentry, key));


        SET(consts.co_optimized, CO_OPTIMIZED);
        SET(consts.co_varargs, CO_VARARGS);
        SET(consts.co_varkeywords, CO_VARKEYWORDS);
#if AT_LEAST(3, 12)
        SET(consts.fast_hidden, CO_FAST_HIDDEN);
#else
        SET(consts.fast_hidden, 0);
#endif
#if AT_LEAST(3, 11)
        SET(consts.fast_local, CO_FAST_LOCAL);
        SET(consts.fast_cell, CO_FAST_CELL);
        SET(consts.fast_free, CO_FAST_FREE);
#else
        SET(consts.fast_local, 0);
        SET(consts.fast_cell, 0);
        SET(consts.fast_free, 0);
#endif
#if AT_LEAST(3, 0)
        SET(consts.tpf_int, 0);
        SET(consts.tpf_bytes, Py_TPFLAGS_BYTES_SUBCLASS);
#else
        SET(consts.tpf_int, Py_TPFLAGS_INT_SUBCLASS);
        SET(consts.tpf_bytes, Py_TPFLAGS_STRING_SUBCLASS);
#endif
        SET(consts.tpf_long, Py_TPFLAGS_LONG_SUBCLASS);
        SET(consts.tpf_list, Py_TPFLAGS_LIST_SUBCLASS);
        SET(consts.tpf_tuple, Py_TPFLAGS_TUPLE_SUBCLASS);
        SET(consts.tpf_unicode, Py_TPFLAGS_UNICODE_SUBCLASS);
        SET(consts.tpf_dict, Py_TPFLAGS_DICT_SUBCLASS);
#if AT_LEAST(3, 13)
        SET(consts.tpf_inline_values, Py_TPFLAGS_INLINE_VALUES);
        SET(consts.tpf_managed_dict, Py_TPFLAGS_MANAGED_DICT);
#else
        SET(consts.tpf_inline_values, 0);
        SET(consts.tpf_managed_dict, 0);
#endif
}

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* How the table spells a field's value. */
enum spelling {
        S_MAJOR,        /* unsigned, and the next field on the same line */
        S_INT,          /* a number */
        S_OFF,          /* a py_off: NONE or a number */
        S_BOOL,         /* false or true */
        S_FLAG,         /* int flag bits: 0 or hexadecimal */
        S_TPFLAG,       /* uint32_t Py_TPFLAGS_* bit: 0 or 1u << n */
        S_RUNTIME, S_GIL, S_GC, S_FRAMES, S_LINES, S_DICT,      /* an enum's constant */
};

#define NAME(e) [e] = #e
static const char *const runtime_kinds[] = { NAME(PY_RUNTIME_INTERP_HEAD), NAME(PY_RUNTIME_PYRUNTIME) };
static const char *const gil_kinds[] = { NAME(PY_GIL_TSTATE_CURRENT), NAME(PY_GIL_INTERP_GIL) };
static const char *const gc_kinds[] = { NAME(PY_GC_STATIC_SYMBOL), NAME(PY_GC_RUNTIME), NAME(PY_GC_INTERP) };
static const char *const frame_kinds[] = {
        NAME(PY_FRAMES_OBJECTS), NAME(PY_FRAMES_CFRAME), NAME(PY_FRAMES_CURRENT),
};
static const char *const line_formats[] = {
        NAME(PY_LINES_LNOTAB27), NAME(PY_LINES_LNOTAB36), NAME(PY_LINES_LINETABLE310),
        NAME(PY_LINES_LOCATIONS311),
};
static const char *const dict_kinds[] = {
        NAME(PY_DICT_TABLE27), NAME(PY_DICT_KEYS36), NAME(PY_DICT_KEYS311), NAME(PY_DICT_KEYS313),
};
static const struct {
        const char *const *names;
        size_t n;
} enums[] = {
        [S_RUNTIME] = { runtime_kinds, ELEMENTSOF(runtime_kinds) },
        [S_GIL] = { gil_kinds, ELEMENTSOF(gil_kinds) },
        [S_GC] = { gc_kinds, ELEMENTSOF(gc_kinds) },
        [S_FRAMES] = { frame_kinds, ELEMENTSOF(frame_kinds) },
        [S_LINES] = { line_formats, ELEMENTSOF(line_formats) },
        [S_DICT] = { dict_kinds, ELEMENTSOF(dict_kinds) },
};

/*
 * Every field of struct py_layout, in the order py_layout.h declares them,
 * which is the order of the entry.  `group` is the member struct a field is
 * in, NULL for struct py_layout's own.  fields_cover_layout() notices a
 * member added to py_layout.h and not here.
 */
static const struct field {
        const char *group, *name;
        size_t offset, size;
        enum spelling spelling;
} fields[] = {
#define TOP(f, s) { NULL, #f, offsetof(struct py_layout, f), sizeof(AS(f)), s }
#define IN(g, f, s) { #g, #f, offsetof(struct py_layout, g.f), sizeof(AS(g.f)), s }
        TOP(major, S_MAJOR), TOP(minor, S_INT),
        TOP(runtime_kind, S_RUNTIME), TOP(gil_kind, S_GIL), TOP(gc_kind, S_GC),
        TOP(frame_kind, S_FRAMES), TOP(line_format, S_LINES),
        IN(runtime, interpreters_head, S_OFF), IN(runtime, gilstate_tstate_current, S_OFF),
        IN(runtime, gc_collecting, S_OFF),
        IN(interp, next, S_OFF), IN(interp, id, S_OFF), IN(interp, tstate_head, S_OFF),
        IN(interp, gc_collecting, S_OFF), IN(interp, ceval_gil, S_OFF), IN(interp, modules, S_OFF),
        IN(gil, locked, S_OFF), IN(gil, last_holder, S_OFF),
        IN(tstate, next, S_OFF), IN(tstate, interp, S_OFF), IN(tstate, frame, S_OFF),
        IN(tstate, cframe, S_OFF), IN(tstate, current_frame, S_OFF), IN(tstate, thread_id, S_OFF),
        IN(tstate, native_thread_id, S_OFF), IN(tstate, holds_gil, S_OFF),
        IN(tstate, current_exception, S_OFF), IN(tstate, exc_state, S_OFF),
        IN(err_stackitem, exc_value, S_OFF),
        IN(exc, args, S_OFF),
        IN(cframe, current_frame, S_OFF),
        IN(frame, back, S_OFF), IN(frame, code, S_OFF), IN(frame, lasti, S_OFF),
        IN(frame, lineno, S_OFF), IN(frame, localsplus, S_OFF),
        IN(iframe, previous, S_OFF), IN(iframe, code, S_OFF), IN(iframe, instr, S_OFF),
        IN(iframe, localsplus, S_OFF), IN(iframe, stacktop, S_OFF), IN(iframe, stackpointer, S_OFF),
        IN(iframe, owner, S_OFF), IN(iframe, tlbc_index, S_OFF), IN(iframe, is_entry, S_OFF),
        TOP(owner_cstack, S_INT), TOP(owner_generator, S_INT),
        TOP(instr_is_current, S_BOOL), TOP(free_threaded, S_BOOL), TOP(stackrefs, S_BOOL),
        IN(code, argcount, S_OFF), IN(code, posonlyargcount, S_OFF), IN(code, kwonlyargcount, S_OFF),
        IN(code, nlocals, S_OFF), IN(code, flags, S_OFF), IN(code, firstlineno, S_OFF),
        IN(code, code, S_OFF), IN(code, filename, S_OFF), IN(code, name, S_OFF),
        IN(code, qualname, S_OFF), IN(code, lnotab, S_OFF), IN(code, linetable, S_OFF),
        IN(code, varnames, S_OFF), IN(code, cellvars, S_OFF), IN(code, freevars, S_OFF),
        IN(code, localsplusnames, S_OFF), IN(code, localspluskinds, S_OFF),
        IN(code, firsttraceable, S_OFF), IN(code, code_adaptive, S_OFF), IN(code, tlbc, S_OFF),
        IN(object, ob_type, S_OFF), IN(object, ob_size, S_OFF), IN(object, tp_name, S_OFF),
        IN(object, tp_flags, S_OFF), IN(object, tp_basicsize, S_OFF), IN(object, tp_dictoffset, S_OFF),
        IN(object, ht_cached_keys, S_OFF), IN(object, managed_dict, S_OFF),
        IN(module, md_state, S_OFF), IN(weakref, wr_object, S_OFF),
        IN(bytes, ob_size, S_OFF), IN(bytes, ob_sval, S_OFF),
        IN(unicode, length, S_OFF), IN(unicode, state, S_OFF), IN(unicode, ascii_data, S_OFF),
        IN(unicode, compact_data, S_OFF), IN(unicode, data_any, S_OFF),
        IN(seq, tuple_items, S_OFF), IN(seq, list_items, S_OFF),
        IN(unicode27, length, S_OFF), IN(unicode27, str, S_OFF), IN(unicode27, char_size, S_INT),
        IN(num, int_ival, S_OFF), IN(num, long_lv_tag, S_OFF), IN(num, long_digits, S_OFF),
        IN(num, long_shift, S_INT), IN(num, long_digit_size, S_INT), IN(num, float_fval, S_OFF),
        IN(num, cell_ref, S_OFF),
        TOP(dict_kind, S_DICT),
        IN(dict, ma_used, S_OFF), IN(dict, ma_keys, S_OFF), IN(dict, ma_values, S_OFF),
        IN(dict, ma_mask, S_OFF), IN(dict, ma_table, S_OFF), IN(dict, dk_size, S_OFF),
        IN(dict, dk_log2_size, S_OFF), IN(dict, dk_log2_index_bytes, S_OFF), IN(dict, dk_kind, S_OFF),
        IN(dict, dk_nentries, S_OFF), IN(dict, dk_indices, S_OFF), IN(dict, entry_size, S_OFF),
        IN(dict, entry_key, S_OFF), IN(dict, entry_value, S_OFF), IN(dict, unicode_entry_size, S_OFF),
        IN(dict, unicode_entry_key, S_OFF), IN(dict, unicode_entry_value, S_OFF),
        IN(dict, values_values, S_OFF), IN(dict, values_capacity, S_OFF), IN(dict, values_size, S_OFF),
        IN(dict, values_valid, S_OFF),
        IN(set, mask, S_OFF), IN(set, table, S_OFF), IN(set, used, S_OFF), IN(set, entry_size, S_OFF),
        IN(set, entry_key, S_OFF),
        IN(gen, present, S_BOOL), IN(gen, iframe, S_OFF), IN(gen, frame_state, S_OFF),
        IN(gen, yield_from, S_INT), IN(gen, cleared, S_INT), IN(gen, awaited_slot, S_INT),
        IN(consts, co_optimized, S_FLAG), IN(consts, co_varargs, S_FLAG),
        IN(consts, co_varkeywords, S_FLAG), IN(consts, fast_hidden, S_FLAG),
        IN(consts, fast_local, S_FLAG), IN(consts, fast_cell, S_FLAG), IN(consts, fast_free, S_FLAG),
        IN(consts, tpf_int, S_TPFLAG), IN(consts, tpf_long, S_TPFLAG), IN(consts, tpf_list, S_TPFLAG),
        IN(consts, tpf_tuple, S_TPFLAG), IN(consts, tpf_bytes, S_TPFLAG),
        IN(consts, tpf_unicode, S_TPFLAG), IN(consts, tpf_dict, S_TPFLAG),
        IN(consts, tpf_inline_values, S_TPFLAG), IN(consts, tpf_managed_dict, S_TPFLAG),
#undef TOP
#undef IN
};

static const char *group_sep(const struct field *f) {
        return f->group ? "." : "";
}

static const char *group_name(const struct field *f) {
        return f->group ? f->group : "";
}

/*
 * The fields follow each other with no room for another between them (a gap
 * narrower than the struct's alignment is padding).  A bool added next to
 * the other bools can hide in padding: the list of TOP() fields is short
 * enough to compare with py_layout.h by eye.
 */
static int fields_cover_layout(void) {
        size_t end = 0;

        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                const struct field *f = &fields[i];

                if (f->offset < end || f->offset - end >= _Alignof(struct py_layout)) {
                        fprintf(stderr, "check_layout: struct py_layout has a member before %s%s%s "
                                "that the field list lacks, or the list is out of order\n",
                                group_name(f), group_sep(f), f->name);
                        return -1;
                }
                if (f->size != 1 && f->size != 4) {
                        fprintf(stderr, "check_layout: %s%s%s is %zu bytes: teach value_of() its type\n",
                                group_name(f), group_sep(f), f->name, f->size);
                        return -1;
                }
                end = f->offset + f->size;
        }
        if (sizeof(struct py_layout) - end >= _Alignof(struct py_layout)) {
                fprintf(stderr, "check_layout: struct py_layout has members after the field list's last\n");
                return -1;
        }
        return 0;
}

/* A field's value; the 1-byte fields are the bools, the others 32 bits. */
static int64_t value_of(const struct py_layout *L, const struct field *f) {
        const char *p = (const char *)L + f->offset;
        uint8_t b;
        int32_t v;

        if (f->size == 1) {
                memcpy(&b, p, 1);
                return b;
        }
        memcpy(&v, p, sizeof(v));
        return f->spelling == S_TPFLAG ? (int64_t)(uint32_t)v : v;
}

/* The byte layout_from_headers() starts from: a field still made of it was not derived. */
#define UNSET 0xa5

static int all_derived(const struct py_layout *L) {
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                const struct field *f = &fields[i];
                const uint8_t *p = (const uint8_t *)L + f->offset;
                size_t n = 0;

                while (n < f->size && p[n] == UNSET)
                        n++;
                if (n == f->size) {
                        fprintf(stderr, "check_layout: layout_from_headers() does not set %s%s%s for %s\n",
                                group_name(f), group_sep(f), f->name, PY_VERSION);
                        return -1;
                }
        }
        return 0;
}

static int spell(const struct field *f, int64_t v, char *buf, size_t len) {
        switch (f->spelling) {
        case S_MAJOR:
        case S_INT:
                snprintf(buf, len, "%" PRId64, v);
                return 0;
        case S_OFF:
                if (v == PY_OFF_NONE)
                        snprintf(buf, len, "NONE");
                else
                        snprintf(buf, len, "%" PRId64, v);
                return 0;
        case S_BOOL:
                snprintf(buf, len, "%s", v ? "true" : "false");
                return 0;
        case S_FLAG:
                snprintf(buf, len, v ? "%#" PRIx64 : "%" PRId64, v);
                return 0;
        case S_TPFLAG:
                if (v == 0)
                        snprintf(buf, len, "0");
                else if ((v & (v - 1)) == 0)
                        snprintf(buf, len, "1u << %d", __builtin_ctzll((unsigned long long)v));
                else
                        snprintf(buf, len, "%#" PRIx64 "u", v);
                return 0;
        default:
                if (v < 0 || (size_t)v >= enums[f->spelling].n || !enums[f->spelling].names[v]) {
                        fprintf(stderr, "check_layout: %s%s%s = %" PRId64 " has no name\n",
                                group_name(f), group_sep(f), f->name, v);
                        return -1;
                }
                snprintf(buf, len, "%s", enums[f->spelling].names[v]);
                return 0;
        }
}

static bool same_group(const char *a, const char *b) {
        return a == b || (a && b && strcmp(a, b) == 0);
}

/* The entry, with each group's "=" aligned on its longest name. */
static int print_entry(const struct py_layout *L) {
        const char *group = NULL;
        int width = 0;
        bool continued = false;

        printf("        {\n");
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                const struct field *f = &fields[i];
                char value[32];

                if (!same_group(group, f->group)) {
                        if (group)
                                printf("                },\n");
                        group = f->group;
                        if (group) {
                                printf("                .%s = {\n", group);
                                width = 0;
                                for (size_t j = i; j < ELEMENTSOF(fields) && same_group(group, fields[j].group); j++)
                                        if ((int)strlen(fields[j].name) > width)
                                                width = (int)strlen(fields[j].name);
                        }
                }
                if (spell(f, value_of(L, f), value, sizeof(value)) < 0)
                        return -1;
                if (group)
                        printf("                        .%-*s = %s,\n", width, f->name, value);
                else
                        printf("%s.%s = %s,%s", continued ? "" : "                ", f->name, value,
                               f->spelling == S_MAJOR ? " " : "\n");
                continued = f->spelling == S_MAJOR;
        }
        if (group)
                printf("                },\n");
        printf("        },\n");
        return 0;
}

static const char *label;
static int failures;

#if AT_LEAST(3, 3)
static void check(bool cond, const char *what) {
        printf("%sok - %s %s\n", cond ? "" : "not ", label, what);
        if (!cond)
                failures++;
}

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

/* Not with ENTRY_ONLY: the entry alone builds without analyzer/python/py_layout.c. */
#if AT_LEAST(3, 13) && !defined(ENTRY_ONLY)
#include <internal/pycore_runtime_init.h>

static void compare_layouts(const char *what, const struct py_layout *got,
                            const struct py_layout *want) {
        size_t bad = 0;

        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                const struct field *f = &fields[i];
                int64_t g = value_of(got, f), w = value_of(want, f);

                if (g != w) {
                        printf("#   %s %s%s%s: %s gives %" PRId64 ", the headers %" PRId64 "\n", label,
                               group_name(f), group_sep(f), f->name, what, g, w);
                        bad++;
                }
        }
        printf("%sok - %s %s matches the headers\n", bad ? "not " : "", label, what);
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

/* The block's layout keeps to the table entry where the block says nothing,
 * so a stale entry shows up here too; the diff of the entry names it. */
static void check_debug_offsets(const struct py_layout *headers) {
        struct py_layout got;
        int r;

        r = py_layout_from_debug_offsets(&by_hand, sizeof(by_hand), &got, NULL);
        check(r == 0, "py_layout_from_debug_offsets(block built from the headers) == 0");
        if (r == 0)
                compare_layouts("layout from the header-built _Py_DebugOffsets", &got, headers);

#ifdef HAVE_LIBPYTHON
        /* The block libpython itself carries in its statically initialized
         * _PyRuntime: exactly what the analyzer finds in a core. */
        r = py_layout_from_debug_offsets(&_PyRuntime.debug_offsets,
                                         sizeof(_PyRuntime.debug_offsets), &got, NULL);
        check(r == 0, "py_layout_from_debug_offsets(libpython's _PyRuntime) == 0");
        if (r == 0)
                compare_layouts("layout from libpython's _PyRuntime.debug_offsets", &got, headers);
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
                compare_layouts("layout from the binary's .PyRuntime debug offsets", &got, headers);
#else
        printf("ok - %s libpython's _PyRuntime.debug_offsets # SKIP no shared libpython to link\n", label);
#endif
}
#endif

#ifndef ENTRY_ONLY
/* For 3.13+ this is the table's entry too, the base a core's _Py_DebugOffsets block is read
 * over, and what the analyzer falls back to without one. */
static int print_analyzer_entry(const char *machine_arg) {
        const struct py_layout *entry = py_layout_for(PY_MAJOR_VERSION, PY_MINOR_VERSION);
        struct py_layout L;
        unsigned long machine;
        char *end;

        errno = 0;
        machine = strtoul(machine_arg, &end, 0);
        if (errno != 0 || end == machine_arg || *end != '\0' || machine > UINT16_MAX) {
                fprintf(stderr, "check_layout: --analyzer-entry takes an ELF machine number, not '%s'\n",
                        machine_arg);
                return 2;
        }
        if (!entry) {
                fprintf(stderr, "check_layout: the analyzer's table has no entry for %d.%d\n",
                        PY_MAJOR_VERSION, PY_MINOR_VERSION);
                return 2;
        }
        L = *entry;
        py_layout_for_machine(&L, (uint16_t)machine);
        return print_entry(&L) < 0 ? 2 : 0;
}
#endif

int main(int argc, char **argv) {
        struct py_layout L;

#ifndef ENTRY_ONLY
        if (argc == 3 && strcmp(argv[1], "--analyzer-entry") == 0)
                return print_analyzer_entry(argv[2]);
#endif
        if (argc != 2) {
                fprintf(stderr, "usage: check_layout --version | --entry | --analyzer-entry MACHINE | LABEL\n");
                return 2;
        }
        if (strcmp(argv[1], "--version") == 0) {
                puts(PY_VERSION);
                return 0;
        }
        memset(&L, UNSET, sizeof(L));
        layout_from_headers(&L);
        if (fields_cover_layout() < 0 || all_derived(&L) < 0)
                return 2;
        if (strcmp(argv[1], "--entry") == 0)
                return print_entry(&L) < 0 ? 2 : 0;

        label = argv[1];
#if AT_LEAST(3, 3)
        check_unicode_state_bits();
#endif
#if AT_LEAST(3, 13) && !defined(ENTRY_ONLY)
        check_debug_offsets(&L);
#endif
        return failures ? 1 : 0;
}
