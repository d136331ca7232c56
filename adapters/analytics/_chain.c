/* The analytical copy's chain check in C: every row of a page of the event
 * log hashed with OpenSSL's SHA-256 (which uses the CPU's SHA instructions
 * where it has them) and compared with its stored hash, in one call, with
 * the GIL released. Built when a C compiler and OpenSSL's libcrypto are
 * there (an optional extension, see setup.py); without it the loader
 * checks in DuckDB and hashlib (uok.adapters.analytics.reader, .loader).
 *
 * The preimage is uok.domain.log.chain's, byte for byte:
 *   prev hash (32) || position (u64 BE) || len(stream) (u32 BE) || stream
 *   || version (u64 BE) || len(topic) (u32 BE) || topic
 *   || len(payload) (u32 BE) || payload
 * where "prev hash" is the stored hash of the row before (the caller's
 * `prev` for the first row), so a row is checked against its neighbour's
 * stored hash as the DuckDB and Python checks do.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* OpenSSL's low-level SHA-256 (libcrypto 1.1 and 3.x export it; 3.x
 * marks it deprecated in favour of EVP, whose per-context set-up is what
 * makes hashlib cost ~1 µs per short message). Declared here so that only
 * libcrypto itself, not its development headers, is needed to build. */
typedef struct {
    unsigned int h[8];
    unsigned int Nl, Nh;
    unsigned int data[16];
    unsigned int num, md_len;
} uok_sha256_ctx;
extern int SHA256_Init(uok_sha256_ctx *c);
extern int SHA256_Update(uok_sha256_ctx *c, const void *data, size_t len);
extern int SHA256_Final(unsigned char *md, uok_sha256_ctx *c);

static uint32_t be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static void put_be64(unsigned char *p, uint64_t v) {
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

#define SEPARATOR 0x1e /* what SQLite's group_concat puts between a packed page's values (char(30)) */

enum { PREV, VERSIONS, STREAM_LEN, TOPIC_LEN, PAYLOAD_LEN, STREAMS, TOPICS, PAYLOADS, HASHES, NBUF };

PyDoc_STRVAR(first_broken_doc,
"first_broken(prev, first, versions_be, stream_len_be, topic_len_be, payload_len_be,\n"
"             streams, topics, payloads, hashes) -> int\n\n"
"Recompute the hash of each of the n rows of a page and compare it with\n"
"the stored one; the index (0-based) of the first row that differs, or -1.\n"
"prev: the stored hash before the page (32 bytes); first: the position of\n"
"row 0 (row i is at first + i); versions_be: n big-endian u64; *_len_be: n\n"
"big-endian u32 each; streams, topics, payloads: the rows' bytes joined;\n"
"hashes: the n stored hashes joined (32 bytes each). ValueError if the\n"
"buffers do not fit together.");

static PyObject *first_broken(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer b[NBUF];
    long long first;
    memset(b, 0, sizeof b);
    if (!PyArg_ParseTuple(args, "y*Ly*y*y*y*y*y*y*y*", &b[PREV], &first, &b[VERSIONS], &b[STREAM_LEN],
                          &b[TOPIC_LEN], &b[PAYLOAD_LEN], &b[STREAMS], &b[TOPICS], &b[PAYLOADS], &b[HASHES])) {
        for (int i = 0; i < NBUF; i++)
            if (b[i].obj) PyBuffer_Release(&b[i]);
        return NULL;
    }
    PyObject *result = NULL;
    unsigned char *scratch = NULL;
    const char *problem = NULL;
    Py_ssize_t n = b[HASHES].len / 32;
    if (b[PREV].len != 32) problem = "prev is not 32 bytes";
    else if (first < 0) problem = "first is negative";
    else if (b[HASHES].len != 32 * n) problem = "hashes is not a whole number of 32-byte hashes";
    else if (b[VERSIONS].len != 8 * n || b[STREAM_LEN].len != 4 * n || b[TOPIC_LEN].len != 4 * n ||
             b[PAYLOAD_LEN].len != 4 * n)
        problem = "versions or lengths do not hold one value per hash";
    size_t longest = 0;
    if (!problem) {
        const unsigned char *sl = b[STREAM_LEN].buf, *tl = b[TOPIC_LEN].buf, *pl = b[PAYLOAD_LEN].buf;
        uint64_t s = 0, t = 0, p = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            uint64_t a = be32(sl + 4 * i), c = be32(tl + 4 * i), d = be32(pl + 4 * i);
            s += a;
            t += c;
            p += d;
            if (a + c + d > longest) longest = (size_t)(a + c + d);
        }
        if (s != (uint64_t)b[STREAMS].len || t != (uint64_t)b[TOPICS].len || p != (uint64_t)b[PAYLOADS].len)
            problem = "lengths do not add up to the joined streams, topics or payloads";
    }
    if (problem) {
        PyErr_SetString(PyExc_ValueError, problem);
        goto done;
    }
    scratch = PyMem_RawMalloc(longest + 64);
    if (!scratch) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t broken = -1;
    Py_BEGIN_ALLOW_THREADS
    const unsigned char *prev = b[PREV].buf, *hashes = b[HASHES].buf, *ver = b[VERSIONS].buf;
    const unsigned char *sl = b[STREAM_LEN].buf, *tl = b[TOPIC_LEN].buf, *pl = b[PAYLOAD_LEN].buf;
    const unsigned char *st = b[STREAMS].buf, *tp = b[TOPICS].buf, *py = b[PAYLOADS].buf;
    unsigned char md[32];
    uok_sha256_ctx ctx;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t s = be32(sl + 4 * i), t = be32(tl + 4 * i), p = be32(pl + 4 * i);
        unsigned char *w = scratch;
        memcpy(w, i ? hashes + 32 * (i - 1) : prev, 32);
        put_be64(w + 32, (uint64_t)first + (uint64_t)i);
        memcpy(w + 40, sl + 4 * i, 4);
        w += 44;
        memcpy(w, st, s);
        w += s;
        memcpy(w, ver + 8 * i, 8);
        memcpy(w + 8, tl + 4 * i, 4);
        w += 12;
        memcpy(w, tp, t);
        w += t;
        memcpy(w, pl + 4 * i, 4);
        w += 4;
        memcpy(w, py, p);
        w += p;
        st += s;
        tp += t;
        py += p;
        SHA256_Init(&ctx);
        SHA256_Update(&ctx, scratch, (size_t)(w - scratch));
        SHA256_Final(md, &ctx);
        if (memcmp(md, hashes + 32 * i, 32) != 0) {
            broken = i;
            break;
        }
    }
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(broken);
done:
    PyMem_RawFree(scratch);
    for (int i = 0; i < NBUF; i++) PyBuffer_Release(&b[i]);
    return result;
}

PyDoc_STRVAR(offsets_doc,
"offsets(lengths_be, columns) -> tuple[bytes, ...]\n\n"
"lengths_be: n rows of `columns` big-endian u32 each, interleaved (a packed\n"
"page's stream, topic and payload lengths). For each column, its n + 1\n"
"Arrow offsets (native int32, 0 first: the running sum of its lengths).\n"
"OverflowError if a column's sum does not fit an int32.");

static PyObject *offsets(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer lens;
    int columns;
    if (!PyArg_ParseTuple(args, "y*i", &lens, &columns)) return NULL;
    PyObject *out = NULL, *cols[8] = {NULL};
    if (columns < 1 || columns > 8 || lens.len % (4 * columns) != 0) {
        PyErr_SetString(PyExc_ValueError, "lengths_be is not n rows of `columns` (1-8) u32 values");
        goto done;
    }
    Py_ssize_t n = lens.len / (4 * columns);
    int32_t *dst[8];
    for (int c = 0; c < columns; c++) {
        cols[c] = PyBytes_FromStringAndSize(NULL, (n + 1) * (Py_ssize_t)sizeof(int32_t));
        if (!cols[c]) goto done;
        dst[c] = (int32_t *)PyBytes_AS_STRING(cols[c]);
        dst[c][0] = 0;
    }
    const unsigned char *src = lens.buf;
    for (int c = 0; c < columns; c++) {
        int64_t sum = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            sum += be32(src + 4 * (i * columns + c));
            if (sum > INT32_MAX) {
                PyErr_SetString(PyExc_OverflowError, "a column of the page is over 2 GiB");
                goto done;
            }
            dst[c][i + 1] = (int32_t)sum;
        }
    }
    out = PyTuple_New(columns);
    if (!out) goto done;
    for (int c = 0; c < columns; c++) {
        PyTuple_SET_ITEM(out, c, cols[c]);
        cols[c] = NULL;
    }
done:
    for (int c = 0; c < 8; c++) Py_XDECREF(cols[c]);
    PyBuffer_Release(&lens);
    return out;
}

/* One column of a page joined by SQLite with a separator byte: the values
 * without the separators, their Arrow offsets (native int32, n + 1) and
 * their big-endian u32 lengths. 0 if the column does not hold exactly n
 * values (a value containing the separator, or a NULL that group_concat
 * skipped), or is over 2 GiB. */
static int split_column(const unsigned char *src, Py_ssize_t len, Py_ssize_t n, PyObject **data, PyObject **offsets,
                        PyObject **lengths) {
    if (n == 0 || len > INT32_MAX - 1 || len < n - 1) return 0;
    *data = PyBytes_FromStringAndSize(NULL, len - (n - 1));
    *offsets = PyBytes_FromStringAndSize(NULL, (n + 1) * 4);
    *lengths = PyBytes_FromStringAndSize(NULL, n * 4);
    if (!*data || !*offsets || !*lengths) return -1;
    unsigned char *d = (unsigned char *)PyBytes_AS_STRING(*data), *l = (unsigned char *)PyBytes_AS_STRING(*lengths);
    int32_t *o = (int32_t *)PyBytes_AS_STRING(*offsets);
    const unsigned char *p = src, *end = src + len;
    int32_t at = 0;
    o[0] = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const unsigned char *sep = i + 1 < n ? memchr(p, SEPARATOR, (size_t)(end - p)) : NULL;
        if (i + 1 < n && !sep) return 0;
        const unsigned char *stop = sep ? sep : end;
        if (i + 1 == n && memchr(p, SEPARATOR, (size_t)(end - p))) return 0;
        uint32_t k = (uint32_t)(stop - p);
        memcpy(d + at, p, k);
        at += (int32_t)k;
        o[i + 1] = at;
        l[4 * i] = (unsigned char)(k >> 24);
        l[4 * i + 1] = (unsigned char)(k >> 16);
        l[4 * i + 2] = (unsigned char)(k >> 8);
        l[4 * i + 3] = (unsigned char)k;
        p = stop + 1;
    }
    return 1;
}

PyDoc_STRVAR(split_page_doc,
"split_page(n, versions, streams, topics, payloads) -> tuple | None\n\n"
"A page packed by SQLite with separators (uok.adapters.analytics.sources.PACKED_SPLIT):\n"
"versions: n decimal integers joined by ','; streams, topics, payloads: n\n"
"values each joined by the byte 0x1e. Returns (versions (native int64),\n"
"versions_be, then for streams, topics and payloads in turn: the values\n"
"joined without separators, their Arrow offsets (native int32) and their\n"
"big-endian u32 lengths); None when a column does not hold exactly n values\n"
"(a value holding the separator byte: the caller then reads the page row by row).");

static PyObject *split_page(PyObject *self, PyObject *args) {
    (void)self;
    Py_ssize_t n;
    Py_buffer b[4];
    memset(b, 0, sizeof b);
    if (!PyArg_ParseTuple(args, "ny*y*y*y*", &n, &b[0], &b[1], &b[2], &b[3])) {
        for (int i = 0; i < 4; i++)
            if (b[i].obj) PyBuffer_Release(&b[i]);
        return NULL;
    }
    PyObject *out = NULL, *parts[11] = {NULL};
    int ok = n > 0;
    if (ok) {
        parts[0] = PyBytes_FromStringAndSize(NULL, n * 8);
        parts[1] = PyBytes_FromStringAndSize(NULL, n * 8);
        if (!parts[0] || !parts[1]) goto done;
        int64_t *v = (int64_t *)PyBytes_AS_STRING(parts[0]);
        unsigned char *vb = (unsigned char *)PyBytes_AS_STRING(parts[1]);
        const unsigned char *p = b[0].buf, *end = p + b[0].len;
        for (Py_ssize_t i = 0; ok && i < n; i++) {
            int negative = p < end && *p == '-';
            p += negative;
            uint64_t x = 0;
            const unsigned char *digits = p;
            while (p < end && *p >= '0' && *p <= '9' && p - digits < 19) x = 10 * x + (uint64_t)(*p++ - '0');
            if (p == digits || (p < end && *p != ',') || (i + 1 < n) != (p < end)) ok = 0;
            p += p < end;
            if (negative) x = (uint64_t)0 - x;
            v[i] = (int64_t)x;
            put_be64(vb + 8 * i, x);
        }
    }
    for (int c = 0; ok && c < 3; c++) {
        int r = split_column(b[c + 1].buf, b[c + 1].len, n, &parts[2 + 3 * c], &parts[3 + 3 * c], &parts[4 + 3 * c]);
        if (r < 0) goto done;
        ok = r;
    }
    if (!ok) {
        out = Py_NewRef(Py_None);
        goto done;
    }
    out = PyTuple_New(11);
    if (!out) goto done;
    for (int i = 0; i < 11; i++) {
        PyTuple_SET_ITEM(out, i, parts[i]);
        parts[i] = NULL;
    }
done:
    for (int i = 0; i < 11; i++) Py_XDECREF(parts[i]);
    for (int i = 0; i < 4; i++) PyBuffer_Release(&b[i]);
    return out;
}

static PyMethodDef methods[] = {
    {"split_page", split_page, METH_VARARGS, split_page_doc},
    {"first_broken", first_broken, METH_VARARGS, first_broken_doc},
    {"offsets", offsets, METH_VARARGS, offsets_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "uok.adapters.analytics._chain",
    "The analytical copy's chain check over a whole page of rows, in C (OpenSSL SHA-256, GIL released).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__chain(void) { return PyModule_Create(&module); }
