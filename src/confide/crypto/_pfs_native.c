/*
 * confide.crypto._pfs_native: AES-128-GCM over a batch of teaclave-file-128 nodes.
 *
 * Every 4 KiB node of the SGX protected-FS layout has its own key and a zero IV
 * (_pfs_layout.py). Through `cryptography` each node costs a new AESGCM object
 * and a call; here one libgcrypt cipher handle is re-keyed per node and a whole
 * batch is done in one call, with the GIL released during the loop.
 *
 * Why libgcrypt and not OpenSSL's libcrypto: with a key per 4 KiB node the key
 * setup is paid 16384 times per 64 MiB. OpenSSL 3.0's EVP re-key costs about
 * 0.3 us a node (20.0 ms per 64 MiB against 14.7 ms for one stream, measured),
 * libgcrypt's is within noise of its stream rate (13.9-14.8 ms), which is itself
 * faster than OpenSSL 3.0's on the AVX-512 machines measured. docs/crypto.md has
 * the numbers.
 *
 * Optional: setup.py builds it when a C compiler and libgcrypt's headers are
 * present; _pfs.py falls back to the pure-Python path otherwise. Both write
 * identical bytes (a known-answer check runs when the module loads).
 *
 * Keys are secrets: they are read in place from the caller's buffer (never
 * copied), and the handle holding the key schedule is closed, which wipes it,
 * before returning. The tag compare is libgcrypt's (gcry_cipher_checktag),
 * which is constant-time.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#include <gcrypt.h>

/* The oldest libgcrypt whose GCM has the AES-NI/PCLMUL paths and per-handle thread safety. */
#define GCRYPT_MIN_VERSION "1.8.0"
#define NODE_SIZE 4096
#define KEY_SIZE 16
#define TAG_SIZE 16
#define ENTRY_SIZE (KEY_SIZE + TAG_SIZE)
/* At most this many nodes per call (16 MiB): callers work in small rounds. */
#define MAX_NODES 4096

static const unsigned char ZERO_IV[12] = {0};

/* Raise ValueError unless `a` and `b` are the same buffer or do not overlap. */
static int
check_overlap(const Py_buffer *a, const Py_buffer *b, const char *what)
{
    const char *pa = (const char *)a->buf;
    const char *pb = (const char *)b->buf;
    if (pa == pb || a->len == 0 || b->len == 0) {
        return 0;
    }
    if (pa < pb + b->len && pb < pa + a->len) {
        PyErr_Format(PyExc_ValueError, "%s overlap partially", what);
        return -1;
    }
    return 0;
}

/* The node count from a keys (per = 16) or entries (per = 32) buffer, or -1 with ValueError. */
static Py_ssize_t
node_count(const Py_buffer *keys, Py_ssize_t per, const char *what)
{
    if (keys->len % per != 0) {
        PyErr_Format(PyExc_ValueError, "%s length %zd is not a multiple of %zd", what,
                     keys->len, per);
        return -1;
    }
    Py_ssize_t n = keys->len / per;
    if (n > MAX_NODES) {
        PyErr_Format(PyExc_ValueError, "%zd nodes in one call, more than %d", n, MAX_NODES);
        return -1;
    }
    return n;
}

static int
check_length(const Py_buffer *buf, Py_ssize_t want, const char *what)
{
    if (buf->len != want) {
        PyErr_Format(PyExc_ValueError, "%s is %zd bytes, expected %zd", what, buf->len, want);
        return -1;
    }
    return 0;
}

/* Encrypt n nodes; 0 on success, -1 if libgcrypt failed (no Python error set: GIL released). */
static int
seal_loop(gcry_cipher_hd_t h, const unsigned char *keys, const unsigned char *plain,
          unsigned char *out, unsigned char *gmacs, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char *dst = out + i * NODE_SIZE;
        const unsigned char *src = plain + i * NODE_SIZE;
        /* in place: libgcrypt's documented form is in = NULL, inlen = 0 */
        if (gcry_cipher_setkey(h, keys + i * KEY_SIZE, KEY_SIZE)
            || gcry_cipher_setiv(h, ZERO_IV, sizeof ZERO_IV)
            || gcry_cipher_final(h)
            || gcry_cipher_encrypt(h, dst, NODE_SIZE, src == dst ? NULL : src,
                                   src == dst ? 0 : NODE_SIZE)
            || gcry_cipher_gettag(h, gmacs + i * TAG_SIZE, TAG_SIZE)) {
            return -1;
        }
    }
    return 0;
}

/* Decrypt n nodes; the index of the first node that does not verify, -1 if all do,
 * or -2 if libgcrypt failed otherwise. The failing node's output is zeroed. */
static Py_ssize_t
open_loop(gcry_cipher_hd_t h, const unsigned char *entries, const unsigned char *ct,
          unsigned char *out, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        const unsigned char *entry = entries + i * ENTRY_SIZE;
        unsigned char *dst = out + i * NODE_SIZE;
        const unsigned char *src = ct + i * NODE_SIZE;
        if (gcry_cipher_setkey(h, entry, KEY_SIZE)
            || gcry_cipher_setiv(h, ZERO_IV, sizeof ZERO_IV)
            || gcry_cipher_final(h)
            || gcry_cipher_decrypt(h, dst, NODE_SIZE, src == dst ? NULL : src,
                                   src == dst ? 0 : NODE_SIZE)) {
            memset(dst, 0, NODE_SIZE);
            return -2;
        }
        gcry_error_t err = gcry_cipher_checktag(h, entry + KEY_SIZE, TAG_SIZE);
        if (err) {
            memset(dst, 0, NODE_SIZE);
            return gcry_err_code(err) == GPG_ERR_CHECKSUM ? i : -2;
        }
    }
    return -1;
}

/* A handle for AES-128-GCM, or NULL with a Python error set. */
static gcry_cipher_hd_t
new_handle(void)
{
    gcry_cipher_hd_t h = NULL;
    gcry_error_t err = gcry_cipher_open(&h, GCRY_CIPHER_AES128, GCRY_CIPHER_MODE_GCM, 0);
    if (err) {
        PyErr_Format(PyExc_RuntimeError, "libgcrypt refused to set up AES-128-GCM: %s",
                     gcry_strerror(err));
        return NULL;
    }
    return h;
}

PyDoc_STRVAR(seal_nodes_doc,
"seal_nodes(keys, plain, out, gmacs, /) -> None\n\n"
"Encrypt n = len(keys) // 16 nodes of 4096 bytes with AES-128-GCM, node i under\n"
"keys[16i:16i+16] and a zero IV: ciphertext into out[4096i:...], tag into\n"
"gmacs[16i:16i+16]. plain and out are exactly 4096 * n bytes, gmacs 16 * n;\n"
"at most MAX_NODES nodes. ValueError on any other length.");

static PyObject *
seal_nodes(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    Py_buffer keys = {0}, plain = {0}, out = {0}, gmacs = {0};
    PyObject *result = NULL;
    gcry_cipher_hd_t h = NULL;
    int rc = 0;
    Py_ssize_t n = 0;
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "seal_nodes takes 4 arguments (%zd given)", nargs);
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &keys, PyBUF_SIMPLE) < 0
        || PyObject_GetBuffer(args[1], &plain, PyBUF_SIMPLE) < 0
        || PyObject_GetBuffer(args[2], &out, PyBUF_WRITABLE) < 0
        || PyObject_GetBuffer(args[3], &gmacs, PyBUF_WRITABLE) < 0) {
        goto done;
    }
    n = node_count(&keys, KEY_SIZE, "keys");
    if (n < 0
        || check_length(&plain, n * NODE_SIZE, "plain") < 0
        || check_length(&out, n * NODE_SIZE, "out") < 0
        || check_length(&gmacs, n * TAG_SIZE, "gmacs") < 0
        || check_overlap(&plain, &out, "plain and out") < 0
        || check_overlap(&keys, &out, "keys and out") < 0
        || check_overlap(&keys, &gmacs, "keys and gmacs") < 0
        || check_overlap(&out, &gmacs, "out and gmacs") < 0) {
        goto done;
    }
    if (n > 0) {
        if ((h = new_handle()) == NULL) {
            goto done;
        }
        Py_BEGIN_ALLOW_THREADS
        rc = seal_loop(h, keys.buf, plain.buf, out.buf, gmacs.buf, n);
        Py_END_ALLOW_THREADS
        if (rc < 0) {
            PyErr_SetString(PyExc_RuntimeError, "libgcrypt failed to encrypt a node");
            goto done;
        }
    }
    result = Py_NewRef(Py_None);
done:
    if (h != NULL) {
        gcry_cipher_close(h); /* wipes the key schedule */
    }
    PyBuffer_Release(&keys);
    PyBuffer_Release(&plain);
    PyBuffer_Release(&out);
    PyBuffer_Release(&gmacs);
    return result;
}

PyDoc_STRVAR(open_nodes_doc,
"open_nodes(entries, ct, out, /) -> int\n\n"
"Verify and decrypt n = len(entries) // 32 nodes of 4096 bytes; entry i is\n"
"key16 || gmac16 as an MHT node stores it, ct[4096i:...] its ciphertext, the\n"
"plaintext goes to out[4096i:...]. Returns -1 when every node verifies, else the\n"
"index of the first node that does not (its output is zeroed; later nodes are\n"
"not touched). ct and out are exactly 4096 * n bytes; at most MAX_NODES nodes.");

static PyObject *
open_nodes(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    Py_buffer entries = {0}, ct = {0}, out = {0};
    PyObject *result = NULL;
    gcry_cipher_hd_t h = NULL;
    Py_ssize_t failed = -1;
    Py_ssize_t n = 0;
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "open_nodes takes 3 arguments (%zd given)", nargs);
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &entries, PyBUF_SIMPLE) < 0
        || PyObject_GetBuffer(args[1], &ct, PyBUF_SIMPLE) < 0
        || PyObject_GetBuffer(args[2], &out, PyBUF_WRITABLE) < 0) {
        goto done;
    }
    n = node_count(&entries, ENTRY_SIZE, "entries");
    if (n < 0
        || check_length(&ct, n * NODE_SIZE, "ct") < 0
        || check_length(&out, n * NODE_SIZE, "out") < 0
        || check_overlap(&ct, &out, "ct and out") < 0
        || check_overlap(&entries, &out, "entries and out") < 0) {
        goto done;
    }
    if (n > 0) {
        if ((h = new_handle()) == NULL) {
            goto done;
        }
        Py_BEGIN_ALLOW_THREADS
        failed = open_loop(h, entries.buf, ct.buf, out.buf, n);
        Py_END_ALLOW_THREADS
        if (failed == -2) {
            PyErr_SetString(PyExc_RuntimeError, "libgcrypt failed to decrypt a node");
            goto done;
        }
    }
    result = PyLong_FromSsize_t(failed);
done:
    if (h != NULL) {
        gcry_cipher_close(h);
    }
    PyBuffer_Release(&entries);
    PyBuffer_Release(&ct);
    PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"seal_nodes", (PyCFunction)(void (*)(void))seal_nodes, METH_FASTCALL, seal_nodes_doc},
    {"open_nodes", (PyCFunction)(void (*)(void))open_nodes, METH_FASTCALL, open_nodes_doc},
    {NULL, NULL, 0, NULL},
};

/* Check libgcrypt's version and, unless the process already did, finish its
 * initialisation (no caller here needs its secure memory). */
static int
init_gcrypt(void)
{
    if (gcry_check_version(GCRYPT_MIN_VERSION) == NULL) {
        PyErr_Format(PyExc_ImportError, "libgcrypt %s is older than %s",
                     gcry_check_version(NULL), GCRYPT_MIN_VERSION);
        return -1;
    }
    if (!gcry_control(GCRYCTL_INITIALIZATION_FINISHED_P)) {
        gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
        gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
    }
    return 0;
}

static int
exec_module(PyObject *module)
{
    if (init_gcrypt() < 0
        || PyModule_AddIntConstant(module, "MAX_NODES", MAX_NODES) < 0
        || PyModule_AddIntConstant(module, "NODE_SIZE", NODE_SIZE) < 0) {
        return -1;
    }
    PyObject *backend = PyUnicode_FromFormat("libgcrypt %s", gcry_check_version(NULL));
    int rc = PyModule_AddObjectRef(module, "BACKEND", backend);
    Py_XDECREF(backend);
    return rc;
}

static PyModuleDef_Slot slots[] = {
    {Py_mod_exec, exec_module},
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "confide.crypto._pfs_native",
    .m_doc = "AES-128-GCM over batches of teaclave-file-128 nodes (libgcrypt).",
    .m_size = 0,
    .m_methods = methods,
    .m_slots = slots,
};

PyMODINIT_FUNC
PyInit__pfs_native(void)
{
    return PyModuleDef_Init(&module_def);
}
