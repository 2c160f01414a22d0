/* A tiny extension whose object code records its source path (__FILE__) and debug info:
   both must be free of the random build directory. It also reports how it was compiled, so a test can
   tell that the interpreter's own flags (-O3 -DNDEBUG) reached the compiler. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *add(PyObject *self, PyObject *args) {
    long a, b;
    if (!PyArg_ParseTuple(args, "ll", &a, &b)) {
        return NULL;
    }
    return PyLong_FromLong(a + b);
}

static PyObject *where(PyObject *self, PyObject *unused) {
    return PyUnicode_FromString(__FILE__);
}

static PyObject *optimized(PyObject *self, PyObject *unused) {
#ifdef __OPTIMIZE__
    Py_RETURN_TRUE;
#else
    Py_RETURN_FALSE;
#endif
}

static PyObject *ndebug(PyObject *self, PyObject *unused) {
#ifdef NDEBUG
    Py_RETURN_TRUE;
#else
    Py_RETURN_FALSE;
#endif
}

static PyMethodDef methods[] = {
    {"add", add, METH_VARARGS, "Add two integers."},
    {"where", where, METH_NOARGS, "The source path the compiler saw."},
    {"optimized", optimized, METH_NOARGS, "True when compiled with optimisation (__OPTIMIZE__)."},
    {"ndebug", ndebug, METH_NOARGS, "True when compiled with NDEBUG (asserts off)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speed", NULL, -1, methods};

PyMODINIT_FUNC PyInit__speed(void) { return PyModule_Create(&module); }
