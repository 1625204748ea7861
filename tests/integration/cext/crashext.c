/* crashext: a tiny CPython extension that crashes with SIGSEGV inside an
 * always-inlined static helper, for the `pystack core --native` tests.
 *
 * One source for Python 2.7 (Py_InitModule) and 3.x (PyModuleDef).  Built by
 * tests/integration/cext/build.py with the interpreter's own INCLUDEPY,
 * EXT_SUFFIX and CFLAGS plus `-shared -fPIC -O2 -g`.
 *
 * The tests find the expected line numbers through the two marker comments
 * named in build.py (HELPER_MARK: the faulting load, the line of the inlined
 * helper frame; CALL_MARK: the call of the helper, the line of
 * crash_in_helper's own frame).  Keep each marker on its line.
 */
#include <Python.h>

/* The compiler must not know that this is NULL: a visible NULL dereference
 * would be turned into a trap instruction (SIGILL) by
 * -fisolate-erroneous-paths-dereference. */
static int *volatile crashext_null_pointer = NULL;
static volatile long crashext_sink;

static inline __attribute__((always_inline)) long
crashext_deref_helper(long depth)
{
    volatile int *p = crashext_null_pointer;
    return (long)*p + depth; /* CRASHEXT-HELPER-LINE: SIGSEGV at address 0 */
}

static PyObject *
crash_in_helper(PyObject *self, PyObject *args)
{
    long depth = 0;
    long r;
    (void)self;
    if (!PyArg_ParseTuple(args, "|l:crash_in_helper", &depth))
        return NULL;
    r = crashext_deref_helper(depth); /* CRASHEXT-CALL-LINE */
    crashext_sink = r;
    return PyLong_FromLong(r);
}

static PyMethodDef crashext_methods[] = {
    {"crash_in_helper", crash_in_helper, METH_VARARGS,
     "crash_in_helper([n]): dereference NULL in an inlined helper."},
    {NULL, NULL, 0, NULL}
};

#if PY_MAJOR_VERSION >= 3
static struct PyModuleDef crashext_module = {
    PyModuleDef_HEAD_INIT, "crashext",
    "Crashes on purpose (pystack integration tests).", -1, crashext_methods,
    NULL, NULL, NULL, NULL
};

PyMODINIT_FUNC
PyInit_crashext(void)
{
    return PyModule_Create(&crashext_module);
}
#else
PyMODINIT_FUNC
initcrashext(void)
{
    (void)Py_InitModule3("crashext", crashext_methods,
                         "Crashes on purpose (pystack integration tests).");
}
#endif
