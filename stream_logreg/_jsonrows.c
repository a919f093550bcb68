/* Flat JSON objects of numbers -> rows of a float64 matrix, in C, without holding the GIL.
 *
 * The common Kafka record is one flat JSON object, every value a number, in the same key
 * order every time: {"f0": 0.12, "f1": -3.4, ..., "label": 1}. Decoding it with orjson
 * and checking it in Python costs more than everything else the service does per record;
 * here it is one pass over the bytes, and the rows are ready for the dense kernel.
 *
 * Only the plain form is taken: keys are ASCII strings without escapes; values are JSON
 * numbers (integers of at most 18 digits, so that orjson would read them too); the target
 * is a number equal to 0 or 1; every other number is finite. Numbers are rounded correctly
 * (by the Eisel-Lemire algorithm, or strtod in the C locale where that needs help), as
 * orjson and Python's float() round them, so a row holds the same bits the slow path
 * (orjson, then stream_logreg.decode.Schema) would produce.
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
#include <stdint.h>
#include <string.h>

#include "_pow5.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "_jsonrows.c reads eight digits at a time as a little-endian word"
#endif

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

/* Whether the 8 bytes at p are ASCII digits; if so, their value (fast_float's SWAR). */
static int eight_digits(const char *p, const char *end, uint64_t *value) {
    uint64_t v;
    if (end - p < 8) return 0;
    memcpy(&v, p, 8);
    if (((v + 0x4646464646464646ull) | (v - 0x3030303030303030ull)) & 0x8080808080808080ull) return 0;
    v = ((v & 0x0F0F0F0F0F0F0F0Full) * 2561) >> 8;
    v = ((v & 0x00FF00FF00FF00FFull) * 6553601) >> 16;
    *value = (uint32_t)(((v & 0x0000FFFF0000FFFFull) * 42949672960001ull) >> 32);
    return 1;
}

/* Reads a run of digits at *pp into w = w * 10^k + digits (zeros before the number's first
 * significant digit are skipped and not counted in *digits; past 19 digits w wraps and the
 * caller must not use it). Returns how many characters it read. */
static Py_ssize_t read_digits(const char **pp, const char *end, uint64_t *w, int *digits) {
    const char *p = *pp, *start = p;
    uint64_t eight;
    if (*digits == 0) {
        while (p < end && *p == '0') p++;
    }
    while (eight_digits(p, end, &eight)) {
        *w = *w * 100000000 + eight;
        *digits += 8;
        p += 8;
    }
    for (; p < end && is_digit(*p); p++, (*digits)++) *w = *w * 10 + (uint64_t)(*p - '0');
    *pp = p;
    return p - start;
}

/* w * 10^q as the nearest double (ties to even), by the Eisel-Lemire algorithm as
 * fast_float computes it (github.com/fastfloat/fast_float, MIT licence), for w < 2^64.
 * Returns 0, leaving the answer to strtod, where that needs more work: subnormal or
 * infinite results, and the rare products too close to call. */
static int eisel_lemire(uint64_t w, int64_t q, int negative, double *out) {
    if (q < POW5_SMALLEST || q > POW5_LARGEST) return 0;
    if (w == 0) {
        *out = negative ? -0.0 : 0.0;
        return 1;
    }
    int lz = __builtin_clzll(w);
    w <<= lz;
    const uint64_t *pow5 = POW5_128 + 2 * (q - POW5_SMALLEST);
    __uint128_t product = (__uint128_t)w * pow5[0];
    uint64_t high = (uint64_t)(product >> 64), low = (uint64_t)product;
    const uint64_t precision_mask = UINT64_MAX >> 55; /* 52 mantissa bits + 3 */
    if ((high & precision_mask) == precision_mask) {
        uint64_t second_high = (uint64_t)(((__uint128_t)w * pow5[1]) >> 64);
        low += second_high;
        if (second_high > low) high++;
    }
    if (low == UINT64_MAX && (q < -27 || q > 55)) return 0;
    int upperbit = (int)(high >> 63);
    int shift = upperbit + 64 - 52 - 3;
    uint64_t mantissa = high >> shift;
    int64_t power2 = ((((152170 + 65536) * q) >> 16) + 63) + upperbit - lz + 1023;
    if (power2 <= 0) return 0;
    if (low <= 1 && q >= -4 && q <= 23 && (mantissa & 3) == 1 && (mantissa << shift) == high) {
        mantissa &= ~(uint64_t)1; /* exactly halfway: round to even, down */
    }
    mantissa += mantissa & 1;
    mantissa >>= 1;
    if (mantissa >= ((uint64_t)2 << 52)) {
        mantissa = (uint64_t)1 << 52;
        power2++;
    }
    mantissa &= ~((uint64_t)1 << 52);
    if (power2 >= 0x7FF) return 0;
    uint64_t bits = mantissa | ((uint64_t)power2 << 52) | ((uint64_t)negative << 63);
    memcpy(out, &bits, sizeof bits);
    return 1;
}

/* A JSON number, finite as a double, rounded correctly (as strtod, orjson and float() do).
 * Returns the end, or NULL if it is not one (or an integer too long for orjson, or out of
 * range). Up to 19 significant digits go through eisel_lemire, the rest through strtod. */
static const char *read_number(const char *p, const char *end, double *out) {
    const char *start = p;
    int integer = 1, negative = 0, digits = 0;
    uint64_t w = 0;
    int64_t q = 0;
    if (p < end && *p == '-') {
        negative = 1;
        p++;
    }
    if (p >= end) return NULL;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        read_digits(&p, end, &w, &digits);
    } else {
        return NULL;
    }
    if (p < end && *p == '.') {
        integer = 0;
        p++;
        if (p >= end || !is_digit(*p)) return NULL;
        q -= read_digits(&p, end, &w, &digits);
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        integer = 0;
        p++;
        int exponent_negative = 0;
        int64_t exponent = 0;
        if (p < end && (*p == '+' || *p == '-')) exponent_negative = *p++ == '-';
        if (p >= end || !is_digit(*p)) return NULL;
        for (; p < end && is_digit(*p); p++) {
            if (exponent < 100000) exponent = exponent * 10 + (*p - '0');
        }
        q += exponent_negative ? -exponent : exponent;
    }
    Py_ssize_t length = p - start;
    if (integer && length - negative > MAX_INT_DIGITS) return NULL;
    double value;
    if (digits > 19 || !eisel_lemire(w, q, negative, &value)) {
        if (length >= MAX_NUMBER) return NULL;
        char text[MAX_NUMBER];
        memcpy(text, start, length);
        text[length] = '\0';
        char *stop;
        errno = 0;
        value = strtod_l(text, &stop, c_locale);
        /* ERANGE: an overflow, or an underflow to zero or to a subnormal; only the last is kept */
        if (stop != text + length || (errno == ERANGE && (value == 0.0 || !isfinite(value)))) return NULL;
    }
    if (!isfinite(value)) return NULL;
    *out = integer && value == 0.0 ? 0.0 : value; /* orjson reads -0 as the int 0 */
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
            if (keys == NULL) {
                p = read_key(p, end, &key);
                if (p == NULL || k >= MAX_KEYS) return 0;
                found[k] = key;
            } else { /* the expected key, quoted (rows() checked it needs no escapes) */
                Py_ssize_t length = k < nkeys ? keys[k].length : -1;
                if (length < 0 || end - p < length + 2 || p[0] != '"' || p[length + 1] != '"' ||
                    memcmp(p + 1, keys[k].start, length) != 0)
                    return 0;
                p += length + 2;
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
        for (Py_ssize_t j = 0; j < key_spans[k].length; j++) {
            char c = key_spans[k].start[j];
            if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
                PyErr_SetString(PyExc_ValueError, "rows: keys must be printable, without quotes or backslashes");
                goto done;
            }
        }
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
