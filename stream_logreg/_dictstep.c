/* The per-example SGD step on Python dicts, for learn_one and predict_proba_one.
 *
 * numba cannot read Python dicts, and a pure-Python loop over a dict of features costs
 * more than river's own Rust step, so this one small module walks the dicts in C. The
 * arithmetic is written exactly as in _learner.py's docstring and river's GLM, in the
 * same order (x's key order), so results are identical bit for bit.
 *
 * margin(weights, x, intercept) -> z = sum_j w_j x_j + b, checking every value of x.
 * step(weights, x, y, w, lr, intercept_lr, l2, clip, intercept) -> new intercept.
 *   Checks x completely before it changes anything, so a bad x leaves weights as they were.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>

#define EXP_LIMIT 700.0

/* Reads x[key] as a double. Returns -1 with a clear exception if it is not a finite real. */
static int read_value(PyObject *key, PyObject *value, double *out) {
    double v;
    if (PyFloat_CheckExact(value)) {
        v = PyFloat_AS_DOUBLE(value);
    } else if (PyUnicode_Check(value) || PyBytes_Check(value) || PyComplex_Check(value) ||
               !(PyNumber_Check(value))) {
        PyErr_Format(PyExc_TypeError,
                     "feature %R has the value %R of type %s, which is not a real number; "
                     "convert it to float (or one-hot encode it) first",
                     key, value, Py_TYPE(value)->tp_name);
        return -1;
    } else {
        v = PyFloat_AsDouble(value);
        if (v == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError,
                         "feature %R has the value %R of type %s, which is not a real number; "
                         "convert it to float (or one-hot encode it) first",
                         key, value, Py_TYPE(value)->tp_name);
            return -1;
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

static int weight_of(PyObject *weights, PyObject *key, double *out) {
    PyObject *w = PyDict_GetItemWithError(weights, key);
    if (w == NULL) {
        if (PyErr_Occurred()) return -1;
        *out = 0.0;
        return 0;
    }
    *out = PyFloat_AS_DOUBLE(w); /* the learner only ever stores exact floats */
    return 0;
}

/* z = sum_j w_j x_j + b in x's key order. When values/weights are given (room for len(x)
 * doubles each), each x_j and w_j read on the way is kept there for the update pass. */
static int compute_margin(PyObject *weights, PyObject *x, double intercept, double *out,
                          double *values, double *old_weights) {
    Py_ssize_t pos = 0, i = 0;
    PyObject *key, *value;
    double z = 0.0, v, w;
    while (PyDict_Next(x, &pos, &key, &value)) {
        if (read_value(key, value, &v) < 0 || weight_of(weights, key, &w) < 0) return -1;
        z += w * v;
        if (values != NULL) {
            values[i] = v;
            old_weights[i] = w;
            i++;
        }
    }
    z += intercept;
    if (!isfinite(z)) {
        PyErr_Format(PyExc_ValueError,
                     "the margin theta^T x + b is not finite on x=%R (the features are too "
                     "large); scale them, for example with river.preprocessing.StandardScaler",
                     x);
        return -1;
    }
    *out = z;
    return 0;
}

static PyObject *margin(PyObject *self, PyObject *args) {
    PyObject *weights, *x;
    double intercept, z;
    if (!PyArg_ParseTuple(args, "O!O!d", &PyDict_Type, &weights, &PyDict_Type, &x, &intercept))
        return NULL;
    if (compute_margin(weights, x, intercept, &z, NULL, NULL) < 0) return NULL;
    return PyFloat_FromDouble(z);
}

/* dLoss/dz = g(z) - y, as -s / (exp(s z) + 1); same as _math.log_loss_gradient. */
static double log_loss_gradient(double z, double y) {
    double s = y != 0.0 ? 1.0 : -1.0;
    double sz = s * z;
    if (sz <= EXP_LIMIT) return -s / (exp(sz) + 1.0);
    return -s * exp(-sz);
}

#define STACK_FEATURES 64

static PyObject *step(PyObject *self, PyObject *args) {
    PyObject *weights, *x, *key, *value, *updated, *result = NULL;
    double y, sample_weight, lr, intercept_lr, l2, clip, intercept, z, g, w;
    double stack[2 * STACK_FEATURES], *values = stack, *old_weights;
    Py_ssize_t pos = 0, i = 0, n;
    if (!PyArg_ParseTuple(args, "O!O!ddddddd", &PyDict_Type, &weights, &PyDict_Type, &x, &y,
                          &sample_weight, &lr, &intercept_lr, &l2, &clip, &intercept))
        return NULL;
    n = PyDict_GET_SIZE(x);
    if (n > STACK_FEATURES && (values = PyMem_Malloc(2 * n * sizeof(double))) == NULL)
        return PyErr_NoMemory();
    old_weights = values + (n > STACK_FEATURES ? n : STACK_FEATURES);
    if (compute_margin(weights, x, intercept, &z, values, old_weights) < 0) goto done;
    g = log_loss_gradient(z, y) * sample_weight;
    if (g > clip) g = clip;
    else if (g < -clip) g = -clip;
    intercept -= intercept_lr * g;
    while (PyDict_Next(x, &pos, &key, &value)) {
        w = old_weights[i];
        if (l2 != 0.0) w = w - lr * (g * values[i] + l2 * w);
        else w = w - lr * (g * values[i]);
        i++;
        updated = PyFloat_FromDouble(w);
        if (updated == NULL || PyDict_SetItem(weights, key, updated) < 0) {
            Py_XDECREF(updated);
            goto done;
        }
        Py_DECREF(updated);
    }
    result = PyFloat_FromDouble(intercept);
done:
    if (values != stack) PyMem_Free(values);
    return result;
}

static PyMethodDef methods[] = {
    {"margin", margin, METH_VARARGS, "margin(weights, x, intercept) -> theta^T x + b"},
    {"step", step, METH_VARARGS,
     "step(weights, x, y, w, lr, intercept_lr, l2, clip, intercept) -> new intercept"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_dictstep",
                                    "Per-example SGD on Python dicts.", -1, methods};

PyMODINIT_FUNC PyInit__dictstep(void) { return PyModule_Create(&module); }
