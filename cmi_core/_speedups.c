/* The ver3 plaintext in one pass: an optional accelerator for cmi_core.hashing.
 *
 * plaintext(fields, names, kept, tail) -> bytes: the values of names[:kept] (names
 * already in hash order; names[kept:] are only checked to be present), each trimmed like
 * PHP's trim(), "\" and "|" escaped with a backslash, the "document" rule applied,
 * UTF-8; joined with "|"; tail appended. It is exactly hashing._join_python over the
 * looked-up values (the pure-Python definition, used when this module is not built); the
 * tests hold the two to the same output and the same exceptions.
 *
 * Working on UTF-8 bytes is exact: PHP's trim characters, "\", "|" and the letters of
 * "document" are ASCII, and an ASCII byte never occurs inside a multi-byte sequence.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define TRIMMED 1  /* PHP trim: " \t\n\r\0\x0B" */
#define ESCAPED 2  /* "\" and "|" get a backslash before them */
#define LETTER_D 4 /* "d" or "D": a "document" may start here */

static unsigned char CLASS[256];

static int
is_document(const unsigned char *p)
{
    /* ASCII letters only, case-insensitively; "| 0x20" folds exactly A-Z onto a-z here. */
    return (p[1] | 0x20) == 'o' && (p[2] | 0x20) == 'c' && (p[3] | 0x20) == 'u' &&
           (p[4] | 0x20) == 'm' && (p[5] | 0x20) == 'e' && (p[6] | 0x20) == 'n' &&
           (p[7] | 0x20) == 't';
}

static Py_ssize_t
utf8_length(unsigned char lead)
{
    if (lead < 0x80) {
        return 1;
    }
    if (lead >= 0xF0) {
        return 4;
    }
    return lead >= 0xE0 ? 3 : 2;
}

/* The "document" rule on one escaped value, in place: the character after each
 * "document" (any case), left to right without overlaps, becomes ".". Returns the new end. */
static unsigned char *
document_rule(unsigned char *start, unsigned char *end)
{
    unsigned char *read = start, *write = start;
    while (end - read > 8) {
        if ((read[0] | 0x20) == 'd' && is_document(read)) {
            Py_ssize_t skip = utf8_length(read[8]);
            memmove(write, read, 8);
            write[8] = '.';
            write += 9;
            read += 8 + skip;
        }
        else {
            *write++ = *read++;
        }
    }
    while (read < end) {
        *write++ = *read++;
    }
    return write;
}

/* Looks up every name (all must be present: KeyError otherwise) and writes the
 * plaintext of the first `kept` values, joined with "|", then the tail. */
static PyObject *
plaintext(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 4 || !PyTuple_Check(args[1]) || !PyLong_Check(args[2]) ||
        !PyBytes_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError,
                        "plaintext(fields, names: tuple[str, ...], kept: int, tail: bytes)");
        return NULL;
    }
    PyObject *fields = args[0], *names = args[1], *tail = args[3];
    Py_ssize_t count = PyTuple_GET_SIZE(names);
    Py_ssize_t kept = PyLong_AsSsize_t(args[2]);
    if (kept == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (kept < 0 || kept > count) {
        PyErr_SetString(PyExc_ValueError, "kept must be between 0 and len(names)");
        return NULL;
    }
    PyObject *stack[128];
    PyObject **values = count <= 128 ? stack : PyMem_New(PyObject *, count);
    if (values == NULL) {
        return PyErr_NoMemory();
    }
    PyObject *result = NULL;
    Py_ssize_t found = 0, bound = PyBytes_GET_SIZE(tail) + kept;
    int exact = PyDict_CheckExact(fields);
    for (; found < count; found++) {
        PyObject *name = PyTuple_GET_ITEM(names, found), *value;
        if (exact) {
            value = PyDict_GetItemWithError(fields, name);
            if (value == NULL) {
                if (!PyErr_Occurred()) {
                    PyErr_SetObject(PyExc_KeyError, name);
                }
                goto done;
            }
            Py_INCREF(value);
        }
        else if ((value = PyObject_GetItem(fields, name)) == NULL) {
            goto done;
        }
        values[found] = value;
    }
    /* Then, as the Python definition fails (itemgetter, then str.join, then encode): every
     * kept value must be a str, and only then is any encoded. */
    for (Py_ssize_t i = 0; i < kept; i++) {
        if (!PyUnicode_Check(values[i])) {
            PyErr_Format(PyExc_TypeError, "field %R: expected str, %.80s found",
                         PyTuple_GET_ITEM(names, i), Py_TYPE(values[i])->tp_name);
            goto done;
        }
    }
    for (Py_ssize_t i = 0; i < kept; i++) {
        Py_ssize_t length;
        if (PyUnicode_AsUTF8AndSize(values[i], &length) == NULL) {
            goto done; /* a lone surrogate: UnicodeEncodeError, as str.encode raises */
        }
        if (length > (PY_SSIZE_T_MAX - bound) / 2) {
            PyErr_NoMemory();
            goto done;
        }
        bound += 2 * length; /* every byte escaped, at worst */
    }
    if (kept == 0) { /* nothing hashed but the store key: no "|" before it */
        Py_ssize_t skip = PyBytes_GET_SIZE(tail) > 0; /* as tail[1:], also for b"" */
        result = PyBytes_FromStringAndSize(PyBytes_AS_STRING(tail) + skip,
                                           PyBytes_GET_SIZE(tail) - skip);
        goto done;
    }
    if ((result = PyBytes_FromStringAndSize(NULL, bound)) == NULL) {
        goto done;
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    unsigned char *write = out;
    for (Py_ssize_t i = 0; i < kept; i++) {
        Py_ssize_t length;
        /* The UTF-8 form is cached on the str by the loop above: no second encoding. */
        const unsigned char *read =
            (const unsigned char *)PyUnicode_AsUTF8AndSize(values[i], &length);
        const unsigned char *end = read + length;
        if (i) {
            *write++ = '|';
        }
        while (read < end && (CLASS[*read] & TRIMMED)) {
            read++;
        }
        while (end > read && (CLASS[end[-1]] & TRIMMED)) {
            end--;
        }
        unsigned char *start = write;
        unsigned char seen = 0;
        for (; read < end; read++) {
            unsigned char byte = *read, kind = CLASS[byte];
            seen |= kind;
            if (kind & ESCAPED) {
                *write++ = '\\';
            }
            *write++ = byte;
        }
        if (seen & LETTER_D) {
            write = document_rule(start, write);
        }
    }
    memcpy(write, PyBytes_AS_STRING(tail), (size_t)PyBytes_GET_SIZE(tail));
    write += PyBytes_GET_SIZE(tail);
    _PyBytes_Resize(&result, write - out); /* on failure result is NULL, error set */
done:
    for (Py_ssize_t i = 0; i < found; i++) {
        Py_DECREF(values[i]);
    }
    if (values != stack) {
        PyMem_Free(values);
    }
    return result;
}

static PyMethodDef methods[] = {
    {"plaintext", (PyCFunction)(void (*)(void))plaintext, METH_FASTCALL,
     "plaintext(fields, names, kept, tail) -> bytes: the ver3 plaintext of the first kept\n"
     "names' values (names in hash order; every name must be a key: KeyError otherwise)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "cmi_core._speedups",
    "Optional C accelerator for the ver3 plaintext (see cmi_core.hashing).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    const char *trimmed = " \t\n\r\x0B";
    for (const char *c = trimmed; *c; c++) {
        CLASS[(unsigned char)*c] |= TRIMMED;
    }
    CLASS[0] |= TRIMMED;
    CLASS['\\'] |= ESCAPED;
    CLASS['|'] |= ESCAPED;
    CLASS['d'] |= LETTER_D;
    CLASS['D'] |= LETTER_D;
    return PyModule_Create(&module);
}
