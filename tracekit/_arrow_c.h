/* The Arrow C data and stream interfaces, and the PyCapsule interface over them, for
 * tracekit's compiled parts (collectors/_jsonscan.c, analyzers/_passes.c): the C side of
 * tracekit/_arrow.py. Include after Python.h.
 * https://arrow.apache.org/docs/format/CDataInterface.html */
#ifndef TRACEKIT_ARROW_C_H
#define TRACEKIT_ARROW_C_H

#include <stdint.h>
#include <stdlib.h>

struct ArrowSchema {
    const char *format;
    const char *name;
    const char *metadata;
    int64_t flags;
    int64_t n_children;
    struct ArrowSchema **children;
    struct ArrowSchema *dictionary;
    void (*release)(struct ArrowSchema *);
    void *private_data;
};

struct ArrowArray {
    int64_t length;
    int64_t null_count;
    int64_t offset;
    int64_t n_buffers;
    int64_t n_children;
    const void **buffers;
    struct ArrowArray **children;
    struct ArrowArray *dictionary;
    void (*release)(struct ArrowArray *);
    void *private_data;
};

struct ArrowArrayStream {
    int (*get_schema)(struct ArrowArrayStream *, struct ArrowSchema *out);
    int (*get_next)(struct ArrowArrayStream *, struct ArrowArray *out);
    const char *(*get_last_error)(struct ArrowArrayStream *);
    void (*release)(struct ArrowArrayStream *);
    void *private_data;
};

#define ARROW_FLAG_NULLABLE 2

static inline void arrow_capsule_schema_free(PyObject *cap) {
    struct ArrowSchema *sc = PyCapsule_GetPointer(cap, "arrow_schema");
    if (sc) {
        if (sc->release) sc->release(sc);
        free(sc);
    }
}

static inline void arrow_capsule_array_free(PyObject *cap) {
    struct ArrowArray *a = PyCapsule_GetPointer(cap, "arrow_array");
    if (a) {
        if (a->release) a->release(a);
        free(a);
    }
}

/* A (schema, array) pair of capsules that own `sc` and `arr` (malloc'd, with their release
 * callbacks set): polars takes the column over without a copy. On failure both are released
 * and freed here. */
static inline PyObject *arrow_capsules(struct ArrowSchema *sc, struct ArrowArray *arr) {
    PyObject *scap = PyCapsule_New(sc, "arrow_schema", arrow_capsule_schema_free);
    if (!scap) {
        sc->release(sc);
        free(sc);
        arr->release(arr);
        free(arr);
        return NULL;
    }
    PyObject *acap = PyCapsule_New(arr, "arrow_array", arrow_capsule_array_free);
    if (!acap) {
        Py_DECREF(scap);
        arr->release(arr);
        free(arr);
        return NULL;
    }
    return Py_BuildValue("(NN)", scap, acap);
}

#endif
