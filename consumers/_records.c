/* Reads the records of one Kafka record batch (message format v2) in one call.

   read_records(data, base_offset, count, first_offset) -> (offsets, keys, values)

   `data` is the batch's records section, after the 61-byte batch header and, for a
   compressed batch, after decompression. Each record is
       length varint, attributes int8, timestampDelta varlong, offsetDelta varint,
       keyLength varint, key, valueLength varint, value,
       headerCount varint, headers [keyLength varint, key, valueLength varint, value]
   (varints zigzag-encoded; a negative key or value length is null). Records below
   `first_offset` are skipped. The whole layout is checked: every length inside the data,
   each record exactly its stated length, exactly `count` records and no bytes after them;
   anything else raises ValueError naming the record and the fault. Headers and timestamps
   are checked and skipped: the service does not use them.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

typedef struct {
    const unsigned char *data;
    Py_ssize_t pos, end;
} Reader;

/* A zigzag varint of at most 10 bytes (an int64), as Kafka writes them. 0 or -1 (truncated
   or too long). */
static int read_varint(Reader *r, int64_t *out) {
    uint64_t u = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->pos >= r->end) return -1;
        unsigned char b = r->data[r->pos++];
        u |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
            return 0;
        }
    }
    return -1;
}

/* A length-prefixed field: sets *start and *length (-1 for null) and steps over it. */
static int read_field(Reader *r, Py_ssize_t *start, int64_t *length) {
    if (read_varint(r, length) < 0) return -1;
    *start = r->pos;
    if (*length < 0) return 0;
    if (*length > r->end - r->pos) return -1;
    r->pos += (Py_ssize_t)*length;
    return 0;
}

static PyObject *field_or_none(Reader *r, Py_ssize_t start, int64_t length) {
    if (length < 0) Py_RETURN_NONE;
    return PyBytes_FromStringAndSize((const char *)r->data + start, (Py_ssize_t)length);
}

static PyObject *corrupt(long long index, long long offset, const char *fault) {
    PyErr_Format(PyExc_ValueError, "record %lld of the batch (offset %lld): %s", index, offset, fault);
    return NULL;
}

static PyObject *read_records(PyObject *self, PyObject *args) {
    Py_buffer buffer;
    long long base_offset, first_offset;
    int count;
    if (!PyArg_ParseTuple(args, "y*LiL", &buffer, &base_offset, &count, &first_offset)) return NULL;
    Reader r = {(const unsigned char *)buffer.buf, 0, buffer.len};
    PyObject *offsets = PyList_New(0), *keys = PyList_New(0), *values = PyList_New(0), *result = NULL;
    if (offsets == NULL || keys == NULL || values == NULL) goto done;
    if (count < 0) {
        PyErr_Format(PyExc_ValueError, "the batch says it holds %d records", count);
        goto done;
    }
    for (int i = 0; i < count; i++) {
        long long offset = base_offset;
        int64_t length, timestamp_delta, offset_delta, key_length, value_length, header_count, n;
        Py_ssize_t key_start, value_start, start;
        if (read_varint(&r, &length) < 0 || length < 0 || length > r.end - r.pos) {
            corrupt(i, offset, "its length runs past the end of the batch");
            goto done;
        }
        start = r.pos;
        r.end = start + (Py_ssize_t)length; /* nothing of this record may lie beyond it */
        r.pos += 1;                         /* attributes (unused) */
        if (r.pos > r.end || read_varint(&r, &timestamp_delta) < 0 || read_varint(&r, &offset_delta) < 0) {
            corrupt(i, offset, "its header is cut short");
            goto done;
        }
        if (offset_delta < 0 || offset_delta > INT32_MAX || __builtin_add_overflow(base_offset, offset_delta, &offset)) {
            corrupt(i, offset, "its offset delta is out of range");
            goto done;
        }
        if (read_field(&r, &key_start, &key_length) < 0 || read_field(&r, &value_start, &value_length) < 0) {
            corrupt(i, offset, "its key or value runs past the record's length");
            goto done;
        }
        if (read_varint(&r, &header_count) < 0 || header_count < 0) {
            corrupt(i, offset, "its header count is missing or negative");
            goto done;
        }
        for (int64_t h = 0; h < header_count; h++) {
            Py_ssize_t field_start;
            if (read_field(&r, &field_start, &n) < 0 || n < 0 || read_field(&r, &field_start, &n) < 0) {
                corrupt(i, offset, "a header is cut short or has a null key");
                goto done;
            }
        }
        if (r.pos != r.end) {
            corrupt(i, offset, "its fields do not fill its stated length");
            goto done;
        }
        r.end = buffer.len;
        if (offset < first_offset) continue;
        PyObject *o = PyLong_FromLongLong(offset);
        PyObject *k = o ? field_or_none(&r, key_start, key_length) : NULL;
        PyObject *v = k ? field_or_none(&r, value_start, value_length) : NULL;
        int failed = v == NULL || PyList_Append(offsets, o) < 0 || PyList_Append(keys, k) < 0 ||
                     PyList_Append(values, v) < 0;
        Py_XDECREF(o);
        Py_XDECREF(k);
        Py_XDECREF(v);
        if (failed) goto done;
    }
    if (r.pos != buffer.len) {
        PyErr_Format(PyExc_ValueError, "%zd bytes are left over after the batch's %d records", buffer.len - r.pos,
                     count);
        goto done;
    }
    result = PyTuple_Pack(3, offsets, keys, values);
done:
    PyBuffer_Release(&buffer);
    Py_XDECREF(offsets);
    Py_XDECREF(keys);
    Py_XDECREF(values);
    return result;
}

static PyMethodDef methods[] = {
    {"read_records", read_records, METH_VARARGS,
     "read_records(data, base_offset, count, first_offset) -> (offsets, keys, values)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_records", "Kafka record batch reader.", -1, methods};

PyMODINIT_FUNC PyInit__records(void) { return PyModule_Create(&module); }
