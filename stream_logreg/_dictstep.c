/* Python dicts of features, walked in C: the margin, one step, and packing into CSR arrays.
 *
 * The model keeps its weights in a float64 array `coef` and, in `index`, either a dict from
 * feature name to column or, for a hashed model, the number of buckets n: its features are
 * the ints 0 to n - 1 and feature j is column j (no dict, nothing registered). numba cannot read Python dicts, and a pure-Python loop over a dict of
 * features costs more than river's own step, so this small module walks the dicts in C.
 * It does no learning arithmetic of its own: `step` hands the row, in x's key order, to the
 * compiled row of _kernel.py through its C entry point, so learn_one and the batch
 * kernels run the same code.
 *
 * margin(index, coef, x, intercept) -> z = sum_j w_j x_j + b, checking every value of x.
 * step(address, index, coef, slots, x, y, w, params, scalars, t) -> None. scalars is a
 *   float64 array [intercept, L1 total], updated in place once the step succeeded.
 *   Checks all of x before it changes anything; registers new names in index (their
 *   weight starts at 0) once the step succeeded; raises MarginError if the margin is not
 *   finite. coef must have room for len(index) + len(x) columns (a hashed model's n);
 *   address and params come from _kernel.one_step_address and _kernel.flat_params.
 * count(xs) -> the number of features in a list of dicts (what pack's arrays must hold).
 * pack(index, xs, indptr, indices, data) -> None: fills CSR arrays (sized by the caller)
 *   from a list of dicts, registering new names; the caller undoes them if it raises.
 *   Dicts of one stream usually hold the same key objects in the same order, so the
 *   column found for the k-th key of a row is kept, and a next row whose k-th key is the
 *   same object takes it without a dict lookup (about half of packing's time).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define STACK_FEATURES 64

static int not_real(PyObject *key, PyObject *value) {
    PyErr_Format(PyExc_TypeError,
                 "feature %R has the value %R of type %s, which is not a real number; "
                 "convert it to float (or one-hot encode it) first",
                 key, value, Py_TYPE(value)->tp_name);
    return -1;
}

/* Reads x[key] as a double. Returns -1 with a clear exception if it is not a finite real. */
static int read_value(PyObject *key, PyObject *value, double *out) {
    double v;
    if (PyFloat_CheckExact(value)) {
        v = PyFloat_AS_DOUBLE(value);
    } else {
        if (PyUnicode_Check(value) || PyBytes_Check(value) || PyComplex_Check(value) ||
            !PyNumber_Check(value))
            return not_real(key, value);
        v = PyFloat_AsDouble(value);
        if (v == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            return not_real(key, value);
        }
    }
    if (!isfinite(v)) {
        PyErr_Format(PyExc_ValueError,
                     "feature %R has the value %R, which is not finite; "
                     "drop or impute NaN and infinite values before learning or predicting",
                     key, value);
        return -1;
    }
    *out = v;
    return 0;
}

/* The number of buckets of a hashed model's index, or 0 for a dict of names. */
static Py_ssize_t n_buckets(PyObject *index) {
    return PyLong_CheckExact(index) ? PyLong_AsSsize_t(index) : 0;
}

/* The column of key in index, or -1 if absent; -2 with an exception on error. */
static Py_ssize_t column_of(PyObject *index, PyObject *key) {
    PyObject *col;
    Py_ssize_t n = n_buckets(index), bucket;
    if (n > 0) {
        bucket = PyLong_CheckExact(key) ? PyLong_AsSsize_t(key) : -1;
        if (bucket == -1 && PyErr_Occurred()) PyErr_Clear();
        if (bucket >= 0 && bucket < n) return bucket;
        PyErr_Format(PyExc_ValueError,
                     "feature %R is not a bucket of this hashed model, whose features are the ints "
                     "0 to %zd (n_features=%zd); hash the features first, with "
                     "stream_logreg.Features(hash_bits=...) or river's FeatureHasher(n_features=%zd)",
                     key, n - 1, n, n);
        return -2;
    }
    col = PyDict_GetItemWithError(index, key);
    if (col == NULL) return PyErr_Occurred() ? -2 : -1;
    return PyLong_AsSsize_t(col);
}

/* index: a dict, or a hashed model's number of buckets (> 0). */
static int check_index(PyObject *index) {
    if (PyDict_Check(index) || (PyLong_CheckExact(index) && n_buckets(index) > 0)) return 0;
    if (!PyErr_Occurred())
        PyErr_SetString(PyExc_TypeError, "index must be a dict of names or a number of buckets > 0");
    return -1;
}

static Py_ssize_t add_column(PyObject *index, PyObject *key) {
    Py_ssize_t col = PyDict_GET_SIZE(index);
    PyObject *number = PyLong_FromSsize_t(col);
    if (number == NULL || PyDict_SetItem(index, key, number) < 0) col = -2;
    Py_XDECREF(number);
    return col;
}

/* A contiguous buffer of 8-byte items whose struct format is one of `formats`; writable
 * unless `read_only` (a model loaded read-only, memory-mapped, still predicts). */
static int get_buffer(PyObject *obj, Py_buffer *view, const char *formats, const char *what,
                      int read_only) {
    const char *f;
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (read_only ? 0 : PyBUF_WRITABLE);
    if (PyObject_GetBuffer(obj, view, flags) < 0) return -1;
    f = view->format;
    if (*f == '@' || *f == '=' || *f == '<') f++;
    if (view->itemsize != 8 || strlen(f) != 1 || strchr(formats, *f) == NULL) {
        PyErr_Format(PyExc_TypeError, "%s must be a contiguous array of 8-byte '%s'", what, formats);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* Raise stream_logreg.exceptions.MarginError(x): the margin of x is not finite. */
static int margin_error(PyObject *x) {
    PyObject *module = PyImport_ImportModule("stream_logreg.exceptions");
    PyObject *cls = module == NULL ? NULL : PyObject_GetAttrString(module, "MarginError");
    PyObject *error = cls == NULL ? NULL : PyObject_CallOneArg(cls, x);
    if (error != NULL) PyErr_SetObject(cls, error);
    Py_XDECREF(error);
    Py_XDECREF(cls);
    Py_XDECREF(module);
    return -1;
}

/* z = sum_j w_j x_j + b in x's key order, checking every value of x. */
static int compute_margin(PyObject *index, const double *coef, PyObject *x, double intercept,
                          double *out) {
    Py_ssize_t pos = 0, col;
    PyObject *key, *value;
    double z = 0.0, v;
    while (PyDict_Next(x, &pos, &key, &value)) {
        if (read_value(key, value, &v) < 0) return -1;
        if ((col = column_of(index, key)) == -2) return -1;
        z += (col >= 0 ? coef[col] : 0.0) * v;
    }
    z += intercept;
    if (!isfinite(z)) return margin_error(x);
    *out = z;
    return 0;
}

static PyObject *margin(PyObject *self, PyObject *args) {
    PyObject *index, *coef_obj, *x;
    Py_buffer coef;
    double intercept, z;
    int failed;
    if (!PyArg_ParseTuple(args, "OOO!d", &index, &coef_obj, &PyDict_Type, &x, &intercept) ||
        check_index(index) < 0)
        return NULL;
    if (get_buffer(coef_obj, &coef, "d", "coef", 1) < 0) return NULL;
    failed = compute_margin(index, coef.buf, x, intercept, &z);
    PyBuffer_Release(&coef);
    return failed ? NULL : PyFloat_FromDouble(z);
}

/* The compiled one-example step (stream_logreg._kernel, _ONE_STEP_SIGNATURE). */
typedef double (*one_step_fn)(const long long *cols, const double *values, long long n, double y,
                              double w, double *coef, double *slots, long long capacity,
                              long long n_slots, const double *params, double *state);

#define MAX_PARAMS 16

static PyObject *step(PyObject *self, PyObject *args) {
    PyObject *index, *coef_obj, *slots_obj, *x, *params_obj, *scalars_obj, *key, *value;
    PyObject *result = NULL;
    Py_buffer coef, slots, scalars;
    unsigned long long address;
    long long t;
    double y, sample_weight, z, params[MAX_PARAMS], state[3], *scalar;
    double values_stack[STACK_FEATURES], *values = values_stack;
    long long cols_stack[STACK_FEATURES], *cols = cols_stack;
    Py_ssize_t pos = 0, i = 0, n, n_before, n_new = 0, capacity, n_params, col;
    one_step_fn fn;
    if (!PyArg_ParseTuple(args, "KOOOO!ddO!OL", &address, &index, &coef_obj, &slots_obj,
                          &PyDict_Type, &x, &y, &sample_weight, &PyTuple_Type, &params_obj,
                          &scalars_obj, &t) ||
        check_index(index) < 0)
        return NULL;
    n_params = PyTuple_GET_SIZE(params_obj);
    if (n_params > MAX_PARAMS) {
        PyErr_SetString(PyExc_ValueError, "too many step parameters");
        return NULL;
    }
    for (i = 0; i < n_params; i++) {
        params[i] = PyFloat_AsDouble(PyTuple_GET_ITEM(params_obj, i));
        if (params[i] == -1.0 && PyErr_Occurred()) return NULL;
    }
    if (get_buffer(coef_obj, &coef, "d", "coef", 0) < 0) return NULL;
    if (get_buffer(slots_obj, &slots, "d", "slots", 0) < 0) {
        PyBuffer_Release(&coef);
        return NULL;
    }
    if (get_buffer(scalars_obj, &scalars, "d", "scalars", 0) < 0) {
        PyBuffer_Release(&coef);
        PyBuffer_Release(&slots);
        return NULL;
    }
    scalar = scalars.buf;
    capacity = coef.len / 8;
    n = PyDict_GET_SIZE(x);
    if (scalars.len != 2 * 8) {
        PyErr_SetString(PyExc_ValueError, "scalars must hold [intercept, L1 total]");
        goto done;
    }
    n_before = PyDict_Check(index) ? PyDict_GET_SIZE(index) : n_buckets(index);
    if (capacity < n_before + (PyDict_Check(index) ? n : 0)) {
        PyErr_SetString(PyExc_RuntimeError, "coef has no room for the new features");
        goto done;
    }
    if (n > STACK_FEATURES) {
        values = PyMem_Malloc(n * sizeof(double));
        cols = PyMem_Malloc(n * sizeof(long long));
        if (values == NULL || cols == NULL) {
            PyErr_NoMemory();
            goto done;
        }
    }
    /* Check every value and find every column first; a new name gets the next free column
     * (whose weight and slots are 0), registered only once the step has succeeded. */
    i = 0;
    while (PyDict_Next(x, &pos, &key, &value)) {
        if (read_value(key, value, &values[i]) < 0) goto done;
        if ((col = column_of(index, key)) == -2) goto done;
        cols[i++] = col >= 0 ? col : n_before + n_new++;
    }
    state[0] = scalar[0];
    state[1] = (double)t;
    state[2] = scalar[1];
    fn = (one_step_fn)(uintptr_t)address;
    z = fn(cols, values, n, y, sample_weight, coef.buf, slots.buf, capacity,
           capacity ? slots.len / 8 / capacity : 0, params, state);
    if (!isfinite(z)) {
        margin_error(x);
        goto done;
    }
    pos = 0;
    i = 0;
    while (n_new > 0 && PyDict_Next(x, &pos, &key, &value)) {
        if (cols[i++] >= n_before && add_column(index, key) < 0) goto done; /* out of memory */
    }
    scalar[0] = state[0];
    scalar[1] = state[2];
    result = Py_None;
    Py_INCREF(result);
done:
    if (values != values_stack) PyMem_Free(values);
    if (cols != cols_stack) PyMem_Free(cols);
    PyBuffer_Release(&coef);
    PyBuffer_Release(&slots);
    PyBuffer_Release(&scalars);
    return result;
}

static PyObject *count(PyObject *self, PyObject *xs) {
    Py_ssize_t row, total = 0;
    PyObject *x;
    if (!PyList_Check(xs)) {
        PyErr_Format(PyExc_TypeError, "xs is a %s, not a list of dicts", Py_TYPE(xs)->tp_name);
        return NULL;
    }
    for (row = 0; row < PyList_GET_SIZE(xs); row++) {
        x = PyList_GET_ITEM(xs, row);
        if (!PyDict_Check(x)) {
            PyErr_Format(PyExc_TypeError, "xs[%zd] is a %s, not a dict of features", row,
                         Py_TYPE(x)->tp_name);
            return NULL;
        }
        total += PyDict_GET_SIZE(x);
    }
    return PyLong_FromSsize_t(total);
}

static PyObject *pack(PyObject *self, PyObject *args) {
    PyObject *index, *xs, *x, *key, *value, *result = NULL;
    PyObject *indptr_obj, *indices_obj, *data_obj;
    PyObject *seen_keys[STACK_FEATURES] = {NULL}; /* the k-th key of an earlier row (owned) */
    Py_ssize_t seen_cols[STACK_FEATURES];         /* and its column */
    Py_buffer indptr_view, indices_view, data_view;
    long long *indptr, *indices;
    double *data;
    Py_ssize_t row, pos, k, nnz = 0, col, capacity;
    if (!PyArg_ParseTuple(args, "OO!OOO", &index, &PyList_Type, &xs, &indptr_obj, &indices_obj,
                          &data_obj) ||
        check_index(index) < 0)
        return NULL;
    if (get_buffer(indptr_obj, &indptr_view, "lq", "indptr", 0) < 0) return NULL;
    if (get_buffer(indices_obj, &indices_view, "lq", "indices", 0) < 0) {
        PyBuffer_Release(&indptr_view);
        return NULL;
    }
    if (get_buffer(data_obj, &data_view, "d", "data", 0) < 0) {
        PyBuffer_Release(&indptr_view);
        PyBuffer_Release(&indices_view);
        return NULL;
    }
    indptr = indptr_view.buf;
    indices = indices_view.buf;
    data = data_view.buf;
    capacity = data_view.len / 8;
    if (indptr_view.len / 8 != PyList_GET_SIZE(xs) + 1 || indices_view.len != data_view.len) {
        PyErr_SetString(PyExc_ValueError, "indptr must have len(xs) + 1 entries, indices as many as data");
        goto done;
    }
    indptr[0] = 0;
    for (row = 0; row < PyList_GET_SIZE(xs); row++) {
        x = PyList_GET_ITEM(xs, row);
        if (!PyDict_Check(x)) {
            PyErr_Format(PyExc_TypeError, "xs[%zd] is a %s, not a dict of features", row,
                         Py_TYPE(x)->tp_name);
            goto done;
        }
        if (nnz + PyDict_GET_SIZE(x) > capacity) {
            PyErr_SetString(PyExc_ValueError, "data has no room for every feature of xs");
            goto done;
        }
        pos = 0;
        k = 0;
        while (PyDict_Next(x, &pos, &key, &value)) {
            if (read_value(key, value, &data[nnz]) < 0) goto done;
            if (k < STACK_FEATURES && seen_keys[k] == key) {
                col = seen_cols[k];
            } else {
                if ((col = column_of(index, key)) == -2) goto done;
                if (col == -1 && (col = add_column(index, key)) < 0) goto done;
                if (k < STACK_FEATURES) {
                    Py_INCREF(key);
                    Py_XSETREF(seen_keys[k], key);
                    seen_cols[k] = col;
                }
            }
            indices[nnz++] = col;
            k++;
        }
        indptr[row + 1] = nnz;
    }
    result = Py_None;
    Py_INCREF(result);
done:
    for (k = 0; k < STACK_FEATURES; k++) Py_XDECREF(seen_keys[k]);
    PyBuffer_Release(&indptr_view);
    PyBuffer_Release(&indices_view);
    PyBuffer_Release(&data_view);
    return result;
}

static PyMethodDef methods[] = {
    {"margin", margin, METH_VARARGS, "margin(index, coef, x, intercept) -> theta^T x + b"},
    {"step", step, METH_VARARGS,
     "step(address, index, coef, slots, x, y, w, params, scalars, t) -> None"},
    {"count", count, METH_O, "count(xs) -> the number of features in a list of dicts"},
    {"pack", pack, METH_VARARGS, "pack(index, xs, indptr, indices, data) -> None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_dictstep",
                                    "Python dicts of features, walked in C.", -1, methods};

PyMODINIT_FUNC PyInit__dictstep(void) { return PyModule_Create(&module); }
