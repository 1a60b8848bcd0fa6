/*
 * confide.crypto._pfs_native: AES-128-GCM over a batch of teaclave-file-128 nodes.
 *
 * Every 4 KiB node of the SGX protected-FS layout has its own key and a zero IV
 * (_pfs_layout.py). Through `cryptography` each node costs a new AESGCM object
 * and a call; here one EVP_CIPHER_CTX is re-keyed per node and a whole batch is
 * done in one call, with the GIL released during the loop.
 *
 * Optional: setup.py builds it when a C compiler and libssl-dev are present;
 * _pfs.py falls back to the pure-Python path otherwise. Both write identical bytes.
 *
 * Keys are secrets: they are read in place from the caller's buffer (never
 * copied), and the context holding the key schedule is freed, which cleanses
 * it, before returning. The tag compare is OpenSSL's (EVP_DecryptFinal_ex with
 * the expected tag set), which is constant-time.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

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

/* Encrypt n nodes; 0 on success, -1 if OpenSSL failed (no Python error set: GIL released). */
static int
seal_loop(EVP_CIPHER_CTX *ctx, const unsigned char *keys, const unsigned char *plain,
          unsigned char *out, unsigned char *gmacs, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        int len = 0;
        int fin = 0;
        if (EVP_EncryptInit_ex(ctx, NULL, NULL, keys + i * KEY_SIZE, ZERO_IV) != 1
            || EVP_EncryptUpdate(ctx, out + i * NODE_SIZE, &len, plain + i * NODE_SIZE,
                                 NODE_SIZE) != 1
            || len != NODE_SIZE
            || EVP_EncryptFinal_ex(ctx, out + i * NODE_SIZE + len, &fin) != 1
            || fin != 0
            || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_SIZE,
                                   gmacs + i * TAG_SIZE) != 1) {
            return -1;
        }
    }
    return 0;
}

/* Decrypt n nodes; the index of the first node that does not verify, -1 if all do,
 * or -2 if OpenSSL failed otherwise. The failing node's output is zeroed. */
static Py_ssize_t
open_loop(EVP_CIPHER_CTX *ctx, const unsigned char *entries, const unsigned char *ct,
          unsigned char *out, Py_ssize_t n)
{
    unsigned char tag[TAG_SIZE];
    for (Py_ssize_t i = 0; i < n; i++) {
        const unsigned char *entry = entries + i * ENTRY_SIZE;
        int len = 0;
        int fin = 0;
        memcpy(tag, entry + KEY_SIZE, TAG_SIZE); /* EVP wants a writable pointer */
        if (EVP_DecryptInit_ex(ctx, NULL, NULL, entry, ZERO_IV) != 1
            || EVP_DecryptUpdate(ctx, out + i * NODE_SIZE, &len, ct + i * NODE_SIZE,
                                 NODE_SIZE) != 1
            || len != NODE_SIZE
            || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_SIZE, tag) != 1) {
            memset(out + i * NODE_SIZE, 0, NODE_SIZE);
            return -2;
        }
        if (EVP_DecryptFinal_ex(ctx, out + i * NODE_SIZE + len, &fin) <= 0) {
            memset(out + i * NODE_SIZE, 0, NODE_SIZE);
            return i;
        }
    }
    return -1;
}

static EVP_CIPHER_CTX *
new_ctx(int encrypt)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    if (EVP_CipherInit_ex(ctx, EVP_aes_128_gcm(), NULL, NULL, NULL, encrypt) != 1) {
        EVP_CIPHER_CTX_free(ctx);
        PyErr_SetString(PyExc_RuntimeError, "OpenSSL refused to set up AES-128-GCM");
        return NULL;
    }
    return ctx;
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
    EVP_CIPHER_CTX *ctx = NULL;
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
        if ((ctx = new_ctx(1)) == NULL) {
            goto done;
        }
        Py_BEGIN_ALLOW_THREADS
        rc = seal_loop(ctx, keys.buf, plain.buf, out.buf, gmacs.buf, n);
        Py_END_ALLOW_THREADS
        if (rc < 0) {
            PyErr_SetString(PyExc_RuntimeError, "OpenSSL failed to encrypt a node");
            goto done;
        }
    }
    result = Py_NewRef(Py_None);
done:
    EVP_CIPHER_CTX_free(ctx); /* cleanses the key schedule; NULL is fine */
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
    EVP_CIPHER_CTX *ctx = NULL;
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
        if ((ctx = new_ctx(0)) == NULL) {
            goto done;
        }
        Py_BEGIN_ALLOW_THREADS
        failed = open_loop(ctx, entries.buf, ct.buf, out.buf, n);
        Py_END_ALLOW_THREADS
        if (failed == -2) {
            PyErr_SetString(PyExc_RuntimeError, "OpenSSL failed to decrypt a node");
            goto done;
        }
    }
    result = PyLong_FromSsize_t(failed);
done:
    EVP_CIPHER_CTX_free(ctx);
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

static int
exec_module(PyObject *module)
{
    if (PyModule_AddIntConstant(module, "MAX_NODES", MAX_NODES) < 0
        || PyModule_AddIntConstant(module, "NODE_SIZE", NODE_SIZE) < 0) {
        return -1;
    }
    return PyModule_AddStringConstant(module, "OPENSSL_VERSION",
                                      OpenSSL_version(OPENSSL_VERSION));
}

static PyModuleDef_Slot slots[] = {
    {Py_mod_exec, exec_module},
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "confide.crypto._pfs_native",
    .m_doc = "AES-128-GCM over batches of teaclave-file-128 nodes (OpenSSL libcrypto).",
    .m_size = 0,
    .m_methods = methods,
    .m_slots = slots,
};

PyMODINIT_FUNC
PyInit__pfs_native(void)
{
    return PyModuleDef_Init(&module_def);
}
