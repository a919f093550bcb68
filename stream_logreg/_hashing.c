/* The hashing trick, in C: river 0.26's preprocessing.FeatureHasher, bucket for bucket.
 *
 * A feature's token is its name, or "name=value" when its value is a string (which then
 * counts 1). The token's UTF-8 bytes go through MurmurHash3 (x86, 32-bit) with a 32-bit
 * seed; read as a signed int h, the bucket is h mod n_features (Euclid's: in
 * [0, n_features)), and with alternate_sign the value is negated when h < 0. Values of one
 * bucket are added in the order the features come, the first one kept as it is: the same
 * Python objects, additions and order as river's Rust function, hence the same result.
 *
 * murmur3(token, seed) -> the signed 32-bit hash of the token's UTF-8 bytes.
 * hash_features(x, n_features, seed, alternate_sign) -> dict of bucket -> value.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

static int32_t murmur3_x86_32(const unsigned char *data, Py_ssize_t len, uint32_t seed) {
    const uint32_t c1 = 0xcc9e2d51u, c2 = 0x1b873593u;
    uint32_t h1 = seed, k1;
    Py_ssize_t nblocks = len / 4;
    for (Py_ssize_t i = 0; i < nblocks; i++) {
        memcpy(&k1, data + 4 * i, 4); /* little-endian, as the reference reads it */
        k1 *= c1;
        k1 = rotl32(k1, 15);
        k1 *= c2;
        h1 ^= k1;
        h1 = rotl32(h1, 13);
        h1 = h1 * 5 + 0xe6546b64u;
    }
    const unsigned char *tail = data + 4 * nblocks;
    k1 = 0;
    switch (len & 3) {
    case 3: k1 ^= (uint32_t)tail[2] << 16; /* fall through */
    case 2: k1 ^= (uint32_t)tail[1] << 8;  /* fall through */
    case 1:
        k1 ^= tail[0];
        k1 *= c1;
        k1 = rotl32(k1, 15);
        k1 *= c2;
        h1 ^= k1;
    }
    h1 ^= (uint32_t)len;
    h1 ^= h1 >> 16;
    h1 *= 0x85ebca6bu;
    h1 ^= h1 >> 13;
    h1 *= 0xc2b2ae35u;
    h1 ^= h1 >> 16;
    return (int32_t)h1;
}

/* The hash of a str's UTF-8 bytes; -1 with an exception set on failure (*ok = 0). */
static int32_t hash_str(PyObject *token, uint32_t seed, int *ok) {
    Py_ssize_t len;
    const char *bytes = PyUnicode_AsUTF8AndSize(token, &len);
    if (bytes == NULL) {
        *ok = 0;
        return -1;
    }
    *ok = 1;
    return murmur3_x86_32((const unsigned char *)bytes, len, seed);
}

/* The hash of the token "name=value" (the two strs' UTF-8 bytes joined by '='), without
 * making the token: in a stack buffer when it fits, else in one from the heap. */
static int32_t hash_pair(PyObject *name, PyObject *value, uint32_t seed, int *ok) {
    Py_ssize_t name_len, value_len;
    const char *name_bytes = PyUnicode_AsUTF8AndSize(name, &name_len);
    const char *value_bytes = name_bytes ? PyUnicode_AsUTF8AndSize(value, &value_len) : NULL;
    *ok = 0;
    if (value_bytes == NULL) return -1;
    Py_ssize_t len = name_len + 1 + value_len;
    char stack[512];
    char *token = len <= (Py_ssize_t)sizeof stack ? stack : PyMem_Malloc(len);
    if (token == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(token, name_bytes, name_len);
    token[name_len] = '=';
    memcpy(token + name_len + 1, value_bytes, value_len);
    int32_t h = murmur3_x86_32((const unsigned char *)token, len, seed);
    if (token != stack) PyMem_Free(token);
    *ok = 1;
    return h;
}

static PyObject *murmur3(PyObject *self, PyObject *args) {
    PyObject *token;
    unsigned long long seed;
    if (!PyArg_ParseTuple(args, "UK", &token, &seed)) return NULL;
    int ok;
    int32_t h = hash_str(token, (uint32_t)seed, &ok);
    return ok ? PyLong_FromLong(h) : NULL;
}

static PyObject *hash_features(PyObject *self, PyObject *args) {
    PyObject *x;
    long long n_features;
    unsigned long long seed;
    int alternate_sign;
    if (!PyArg_ParseTuple(args, "O!LKp", &PyDict_Type, &x, &n_features, &seed, &alternate_sign)) return NULL;
    if (n_features <= 0) {
        PyErr_Format(PyExc_ValueError, "n_features must be > 0, got %lld", n_features);
        return NULL;
    }
    PyObject *out = PyDict_New();
    if (out == NULL) return NULL;
    PyObject *key, *value, *one = PyLong_FromLong(1), *minus_one = PyLong_FromLong(-1);
    Py_ssize_t pos = 0;
    if (one == NULL || minus_one == NULL) goto fail;
    while (PyDict_Next(x, &pos, &key, &value)) {
        int is_str = PyUnicode_Check(value);
        PyObject *name = PyUnicode_CheckExact(key) ? (Py_INCREF(key), key) : PyObject_Str(key);
        if (name == NULL) goto fail;
        int ok;
        int32_t h = is_str ? hash_pair(name, value, (uint32_t)seed, &ok) : hash_str(name, (uint32_t)seed, &ok);
        Py_DECREF(name);
        if (!ok) goto fail;
        long long bucket = (long long)h % n_features;
        if (bucket < 0) bucket += n_features;
        PyObject *contribution = is_str ? one : value;
        Py_INCREF(contribution);
        if (alternate_sign && h < 0) {
            PyObject *negated = PyNumber_Multiply(contribution, minus_one);
            Py_DECREF(contribution);
            if (negated == NULL) goto fail;
            contribution = negated;
        }
        PyObject *index = PyLong_FromLongLong(bucket);
        if (index == NULL) {
            Py_DECREF(contribution);
            goto fail;
        }
        PyObject *existing = PyDict_GetItemWithError(out, index);
        if (existing != NULL) {
            PyObject *sum = PyNumber_Add(existing, contribution);
            Py_DECREF(contribution);
            contribution = sum;
        } else if (PyErr_Occurred()) {
            Py_DECREF(contribution);
            contribution = NULL;
        }
        int failed = contribution == NULL || PyDict_SetItem(out, index, contribution) < 0;
        Py_DECREF(index);
        Py_XDECREF(contribution);
        if (failed) goto fail;
    }
    Py_DECREF(one);
    Py_DECREF(minus_one);
    return out;
fail:
    Py_XDECREF(one);
    Py_XDECREF(minus_one);
    Py_DECREF(out);
    return NULL;
}

static PyMethodDef methods[] = {
    {"murmur3", murmur3, METH_VARARGS, "The signed 32-bit MurmurHash3 (x86) of a str's UTF-8 bytes."},
    {"hash_features", hash_features, METH_VARARGS, "river's FeatureHasher.transform_one: bucket -> value."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_hashing", NULL, -1, methods};

PyMODINIT_FUNC PyInit__hashing(void) { return PyModule_Create(&module); }
