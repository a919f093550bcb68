/* Flat JSON objects of numbers -> rows of a float64 matrix, in C, without holding the GIL.
 *
 * The common Kafka record is one flat JSON object, every value a number, in the same key
 * order every time: {"f0": 0.12, "f1": -3.4, ..., "label": 1}. Decoding it with orjson
 * and checking it in Python costs more than everything else the service does per record;
 * here it is one pass over the bytes, and the rows are ready for the dense kernel.
 *
 * Only the plain form is taken: keys are ASCII strings without escapes; values are JSON
 * numbers (integers of at most 18 digits, so that orjson would read them too); the target
 * is a number equal to 0 or 1; every other number is finite. Numbers are read by strtod in
 * the C locale, which rounds correctly, as orjson and Python's float() do, so a row holds
 * the same bits the slow path (orjson, then stream_logreg.decode.Schema) would produce.
 * Anything else is left to that slow path, which accepts or refuses it with its reasons.
 *
 * layout(value, target) -> tuple of the keys, in order, if value is such an object with
 *   the target among its keys; None otherwise.
 * rows(values, keys, target, out, labels, ok) -> number of rows taken. For each value
 *   (bytes or None) of the list that is such an object with exactly these keys in this
 *   order: out[i] = its features (keys without the target, in order), labels[i] = its
 *   target, ok[i] = 1; otherwise ok[i] = 0. out is a writable float64 buffer of
 *   len(values) x (len(keys) - 1), labels float64 of len(values), ok uint8 of len(values).
 */
#define _GNU_SOURCE
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEYS 4096
#define MAX_NUMBER 64
#define MAX_INT_DIGITS 18

static locale_t c_locale;

typedef struct {
    const char *start;
    Py_ssize_t length;
} span;

static const char *skip_space(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* A key: '"', printable ASCII without '"' or '\\', '"'. Returns the end, or NULL. */
static const char *read_key(const char *p, const char *end, span *key) {
    if (p >= end || *p != '"') return NULL;
    const char *start = ++p;
    while (p < end && *p != '"') {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c >= 0x7f || c == '\\') return NULL;
        p++;
    }
    if (p >= end) return NULL;
    key->start = start;
    key->length = p - start;
    return p + 1;
}

/* A JSON number, finite as a double, read exactly as strtod rounds it. Returns the end,
 * or NULL if it is not one (or an integer too long for orjson, or out of range). */
static const char *read_number(const char *p, const char *end, double *out) {
    const char *start = p;
    int integer = 1;
    if (p < end && *p == '-') p++;
    if (p >= end) return NULL;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && is_digit(*p)) p++;
    } else {
        return NULL;
    }
    if (p < end && *p == '.') {
        integer = 0;
        p++;
        if (p >= end || !is_digit(*p)) return NULL;
        while (p < end && is_digit(*p)) p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        integer = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || !is_digit(*p)) return NULL;
        while (p < end && is_digit(*p)) p++;
    }
    Py_ssize_t length = p - start;
    if (length >= MAX_NUMBER) return NULL;
    if (integer && length - (*start == '-') > MAX_INT_DIGITS) return NULL;
    char text[MAX_NUMBER];
    memcpy(text, start, length);
    text[length] = '\0';
    char *stop;
    errno = 0;
    double value = strtod_l(text, &stop, c_locale);
    if (stop != text + length || errno == ERANGE || !isfinite(value)) return NULL;
    *out = integer && value == 0.0 ? 0.0 : value;  /* orjson reads -0 as the int 0 */
    return p;
}

/* Walks one object. With keys == NULL, records up to MAX_KEYS key spans in found and
 * their count in *n_found; otherwise requires exactly nkeys keys equal to keys, and writes
 * the features into row and the target's value into *label. Returns 1 if the value is a
 * plain object as described above (target not checked in the first form), 0 otherwise. */
static int walk(const char *p, const char *end, const span *keys, Py_ssize_t nkeys, Py_ssize_t target,
                double *row, double *label, span *found, Py_ssize_t *n_found) {
    Py_ssize_t k = 0;
    p = skip_space(p, end);
    if (p >= end || *p != '{') return 0;
    p = skip_space(p + 1, end);
    if (p < end && *p == '}') {
        p++;
    } else {
        for (;;) {
            span key;
            double value;
            p = read_key(p, end, &key);
            if (p == NULL) return 0;
            if (keys == NULL) {
                if (k >= MAX_KEYS) return 0;
                found[k] = key;
            } else if (k >= nkeys || keys[k].length != key.length ||
                       memcmp(keys[k].start, key.start, key.length) != 0) {
                return 0;
            }
            p = skip_space(p, end);
            if (p >= end || *p != ':') return 0;
            p = read_number(skip_space(p + 1, end), end, &value);
            if (p == NULL) return 0;
            if (keys != NULL) {
                if (k == target) {
                    if (value != 0.0 && value != 1.0) return 0;
                    *label = value == 1.0 ? 1.0 : 0.0;  /* -0.0 is 0.0 */
                } else {
                    row[k < target ? k : k - 1] = value;
                }
            }
            k++;
            p = skip_space(p, end);
            if (p < end && *p == ',') {
                p = skip_space(p + 1, end);
                continue;
            }
            if (p < end && *p == '}') {
                p++;
                break;
            }
            return 0;
        }
    }
    if (skip_space(p, end) != end) return 0;
    if (keys != NULL) return k == nkeys;
    *n_found = k;
    return 1;
}

static PyObject *layout(PyObject *self, PyObject *args) {
    Py_buffer value;
    PyObject *target;
    if (!PyArg_ParseTuple(args, "y*U", &value, &target)) return NULL;
    span *found = PyMem_Malloc(MAX_KEYS * sizeof(span));
    if (found == NULL) {
        PyBuffer_Release(&value);
        return PyErr_NoMemory();
    }
    Py_ssize_t n = 0;
    PyObject *result = NULL;
    const char *start = value.buf;
    if (!walk(start, start + value.len, NULL, 0, 0, NULL, NULL, found, &n)) goto none;
    result = PyTuple_New(n);
    if (result == NULL) goto done;
    Py_ssize_t targets = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *key = PyUnicode_DecodeASCII(found[k].start, found[k].length, NULL);
        if (key == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyTuple_SET_ITEM(result, k, key);
        targets += PyUnicode_Compare(key, target) == 0;
        for (Py_ssize_t j = 0; j < k; j++) {
            if (PyUnicode_Compare(PyTuple_GET_ITEM(result, j), key) == 0) targets = 2;  /* a repeated key */
        }
    }
    if (targets == 1) goto done;
    Py_CLEAR(result);
none:
    result = Py_NewRef(Py_None);
done:
    PyMem_Free(found);
    PyBuffer_Release(&value);
    return result;
}

static PyObject *rows(PyObject *self, PyObject *args) {
    PyObject *values, *keys, *target;
    Py_buffer out, labels, ok;
    if (!PyArg_ParseTuple(args, "O!O!Uw*w*w*", &PyList_Type, &values, &PyTuple_Type, &keys, &target, &out, &labels,
                          &ok))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(values), nkeys = PyTuple_GET_SIZE(keys), target_index = -1, taken = 0;
    span *key_spans = NULL, *value_spans = NULL;
    PyObject *result = NULL;
    if (nkeys < 1 || out.len < (Py_ssize_t)(n * (nkeys - 1) * sizeof(double)) ||
        labels.len < (Py_ssize_t)(n * sizeof(double)) || ok.len < n) {
        PyErr_SetString(PyExc_ValueError, "rows: keys must not be empty, and out, labels and ok need room for every value");
        goto done;
    }
    key_spans = PyMem_Malloc(nkeys * sizeof(span));
    value_spans = PyMem_Malloc((n ? n : 1) * sizeof(span));
    if (key_spans == NULL || value_spans == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t k = 0; k < nkeys; k++) {
        PyObject *key = PyTuple_GET_ITEM(keys, k);
        if (!PyUnicode_Check(key) || !PyUnicode_IS_ASCII(key)) {
            PyErr_SetString(PyExc_TypeError, "rows: keys must be ASCII strings");
            goto done;
        }
        key_spans[k].start = (const char *)PyUnicode_DATA(key);
        key_spans[k].length = PyUnicode_GET_LENGTH(key);
        if (PyUnicode_Compare(key, target) == 0) target_index = k;
    }
    if (target_index < 0) {
        PyErr_SetString(PyExc_ValueError, "rows: the target must be one of the keys");
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {  /* the list's bytes stay alive: we hold the list */
        PyObject *value = PyList_GET_ITEM(values, i);
        if (PyBytes_Check(value)) {
            value_spans[i].start = PyBytes_AS_STRING(value);
            value_spans[i].length = PyBytes_GET_SIZE(value);
        } else {
            value_spans[i].start = NULL;
            value_spans[i].length = 0;
        }
    }
    double *row = out.buf, *label = labels.buf;
    unsigned char *taken_flags = ok.buf;
    Py_ssize_t width = nkeys - 1;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        const char *start = value_spans[i].start;
        int good = start != NULL && walk(start, start + value_spans[i].length, key_spans, nkeys, target_index,
                                         row + i * width, label + i, NULL, NULL);
        taken_flags[i] = (unsigned char)good;
        taken += good;
    }
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(taken);
done:
    PyMem_Free(key_spans);
    PyMem_Free(value_spans);
    PyBuffer_Release(&out);
    PyBuffer_Release(&labels);
    PyBuffer_Release(&ok);
    return result;
}

static PyMethodDef methods[] = {
    {"layout", layout, METH_VARARGS, "layout(value, target) -> the keys of a plain JSON object of numbers, or None"},
    {"rows", rows, METH_VARARGS, "rows(values, keys, target, out, labels, ok) -> number of rows taken"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_jsonrows",
                                    "Flat JSON objects of numbers to float64 rows.", -1, methods};

PyMODINIT_FUNC PyInit__jsonrows(void) {
    c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (c_locale == (locale_t)0) return PyErr_NoMemory();
    return PyModule_Create(&module);
}
