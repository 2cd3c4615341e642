/* The analysis' compiled passes over the hop events: each gives exactly what a polars
 * expression in _paths.py gives (the fallback where this is not built), or None for input it
 * does not take (another type, more rows than 32-bit indices hold, out of memory while
 * grouping), and the caller then runs the polars version. Out of memory while handing the
 * result over raises MemoryError.
 *
 * Every column is an Arrow (schema, array) capsule pair (the PyCapsule interface); the inputs
 * are polars Series (anything with __arrow_c_stream__): `trace` and `recipient` the physical
 * codes (uint32) of the hop events' Categorical columns, `hop` their hop index (int32, null:
 * no hop), `named_*` the recipients a broadcast named (uint32 codes, no nulls).
 *
 * firsts(trace, recipient, hop, msg_hops, rcp_hops, named_trace, named_recipient)
 *   -> ((key_row, [n per message hop], [r per message hop]),
 *       (key_row, [n per recipient hop], [r per recipient hop], named))
 * The path builder's two group-bys (`_paths._polars_wide`) in one pass: per message (trace)
 * over the rows whose hop is a message hop or whose recipient is null, and per (trace,
 * recipient) over the rows with a recipient plus the named pairs:
 *   n<i>  how many rows have hop i (uint32),
 *   r<i>  the first such row (uint32, null when none): rows are read in order,
 *   named whether the broadcast named the pair;
 * and `key_row`, a row that holds the group's key (at or beyond the hop events' length: the
 * named pair at key_row - length). Groups come out in the order of their first row, so that
 * the gathers by r<i> that follow read the columns nearly in order. Polars' group-bys
 * (hashing 5M rows into 1M groups with a dozen conditional aggregations) were a quarter of a
 * 5M-event analysis.
 *
 * rows_of(trace, wanted) -> the rows whose trace is one of `wanted`'s (`_paths._hops_of`).
 *
 * unordered(source, seq) -> a row of each source (the rows without one count as one) whose
 * seqs do not rise from row to row, nulls skipped (`_paths._source_stats`): every other
 * source's seqs are distinct, so only these need polars' distinct count.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_arrow_c.h" /* tracekit/: the Arrow structs and capsules */

#define NONE UINT32_MAX /* no row */

/* ---- input: one column's chunks, read through a cursor ---- */
typedef struct {
    struct ArrowArray *arrays;
    int n;
    int64_t length;
} Column;

static void column_free(Column *c) {
    for (int i = 0; i < c->n; i++)
        if (c->arrays[i].release) c->arrays[i].release(&c->arrays[i]);
    free(c->arrays);
    memset(c, 0, sizeof *c);
}

/* `obj.__arrow_c_stream__()` read into `c` if its type's format is `format`; 0 otherwise.
 * A Python error is left set only for an interrupt (then later loads do nothing). */
static int column_load(PyObject *obj, const char *format, Column *c) {
    memset(c, 0, sizeof *c);
    if (PyErr_Occurred()) return 0;
    PyObject *cap = PyObject_CallMethod(obj, "__arrow_c_stream__", NULL);
    if (!cap) {
        if (PyErr_ExceptionMatches(PyExc_Exception)) PyErr_Clear(); /* not an Arrow column */
        return 0;
    }
    struct ArrowArrayStream *st = PyCapsule_GetPointer(cap, "arrow_array_stream");
    if (!st) {
        PyErr_Clear();
        Py_DECREF(cap);
        return 0;
    }
    int ok = 0, cap_n = 0;
    struct ArrowSchema sc;
    memset(&sc, 0, sizeof sc);
    if (st->get_schema(st, &sc) != 0) goto done;
    int same_type = sc.format && strcmp(sc.format, format) == 0;
    if (sc.release) sc.release(&sc);
    if (!same_type) goto done;
    for (;;) {
        struct ArrowArray a;
        memset(&a, 0, sizeof a);
        if (st->get_next(st, &a) != 0) goto done;
        if (!a.release) break; /* the end of the stream */
        if (a.n_buffers != 2) {
            a.release(&a);
            goto done;
        }
        if (c->n == cap_n) {
            cap_n = cap_n ? cap_n * 2 : 8;
            struct ArrowArray *more = realloc(c->arrays, (size_t)cap_n * sizeof *more);
            if (!more) {
                a.release(&a);
                goto done;
            }
            c->arrays = more;
        }
        c->arrays[c->n++] = a;
        c->length += a.length;
    }
    ok = 1;
done:
    if (st->release) st->release(st);
    Py_DECREF(cap);
    if (!ok) column_free(c);
    /* a type it does not take is no error: the caller takes another way (an interrupt is) */
    if (!PyErr_Occurred() || PyErr_ExceptionMatches(PyExc_Exception)) PyErr_Clear();
    return ok;
}

typedef struct {
    const Column *c;
    int chunk;
    int64_t i; /* within the chunk */
} Cursor;

/* The next value (as 32 bits) and whether it is valid. */
static inline int next(Cursor *k, uint32_t *value) {
    const struct ArrowArray *a = &k->c->arrays[k->chunk];
    while (k->i >= a->length) {
        k->chunk++;
        k->i = 0;
        a = &k->c->arrays[k->chunk];
    }
    int64_t at = a->offset + k->i++;
    const uint8_t *valid = a->buffers[0];
    *value = ((const uint32_t *)a->buffers[1])[at];
    return !valid || ((valid[at >> 3] >> (at & 7)) & 1);
}

/* The rest of the cursor's chunk as a plain array: `*values` (32 bits), `*valid` (NULL: no
 * nulls) and `*bit`, the validity bit of values[0]. Passes read spans in tight loops. */
static inline int64_t span(Cursor *k, const uint32_t **values, const uint8_t **valid, int64_t *bit) {
    const struct ArrowArray *a = &k->c->arrays[k->chunk];
    while (k->i >= a->length) {
        k->chunk++;
        k->i = 0;
        a = &k->c->arrays[k->chunk];
    }
    *bit = a->offset + k->i;
    *values = (const uint32_t *)a->buffers[1] + *bit;
    *valid = a->buffers[0];
    return a->length - k->i;
}

static inline int is_valid(const uint8_t *valid, int64_t at) {
    return !valid || ((valid[at >> 3] >> (at & 7)) & 1);
}

static inline int64_t min3(int64_t a, int64_t b, int64_t c) {
    return a < b ? (a < c ? a : c) : (b < c ? b : c);
}

/* ---- groups ----
 * A message's group is found by its trace code (an array indexed by code: the codes of one
 * table are dense). A pair's, by a short chain per trace of its recipients' groups; a trace
 * with more recipients than CHAIN finds the others in a hash table. Hashing every row (two
 * random reads of a table larger than the caches per event) took 0.33 s at 5M events; the
 * arrays are read nearly in order, as the traces' codes come in log order. The two sides run
 * on a thread each (0.12-0.14 s at 5M events, against 0.45 s for polars' two group-bys). */
#define CHAIN 16

typedef struct {
    uint32_t next; /* the trace's next pair + 1 (0: the end) */
    uint32_t code; /* the pair's recipient */
} Link;

typedef struct {
    int width;        /* hops counted */
    int with_named;   /* the recipient side */
    uint32_t size, cap;
    uint32_t *key_row;
    uint32_t **n;     /* [width] */
    uint32_t **r;     /* [width] */
    uint8_t *named;
    Link *links;      /* per pair: its trace's chain */
    /* pairs beyond the chains: (trace << 32 | recipient) -> group + 1 */
    uint64_t *keys;
    uint32_t *ids;
    size_t mask, used;
} Groups;

static int groups_init(Groups *g, int width, int with_named) {
    memset(g, 0, sizeof *g);
    g->width = width;
    g->with_named = with_named;
    g->n = calloc((size_t)width + 1, sizeof *g->n);
    g->r = calloc((size_t)width + 1, sizeof *g->r);
    return g->n && g->r;
}

static void groups_free(Groups *g) {
    for (int j = 0; j < g->width && g->n; j++) free(g->n[j]);
    for (int j = 0; j < g->width && g->r; j++) free(g->r[j]);
    free(g->n);
    free(g->r);
    free(g->key_row);
    free(g->named);
    free(g->links);
    free(g->keys);
    free(g->ids);
    memset(g, 0, sizeof *g);
}

static int grow_columns(Groups *g) {
    uint32_t cap = g->cap ? g->cap * 2 : 4096;
    if (cap <= g->cap) return 0; /* 2^32 groups */
#define GROW(p)                                                  \
    do {                                                         \
        void *q = realloc((p), (size_t)cap * sizeof *(p));       \
        if (!q) return 0;                                        \
        (p) = q;                                                 \
    } while (0)
    GROW(g->key_row);
    for (int j = 0; j < g->width; j++) {
        GROW(g->n[j]);
        GROW(g->r[j]);
    }
    if (g->with_named) {
        GROW(g->named);
        GROW(g->links);
    }
#undef GROW
    g->cap = cap;
    return 1;
}

/* A new group, first seen at `row`; UINT32_MAX when out of memory. */
static uint32_t new_group(Groups *g, uint32_t row) {
    if (g->size == g->cap && !grow_columns(g)) return UINT32_MAX;
    uint32_t id = g->size++;
    g->key_row[id] = row;
    for (int j = 0; j < g->width; j++) {
        g->n[j][id] = 0;
        g->r[j][id] = NONE;
    }
    if (g->with_named) {
        g->named[id] = 0;
        g->links[id].next = 0;
    }
    return id;
}

static inline uint64_t mix(uint64_t x) { /* splitmix64's finalizer */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static int grow_table(Groups *g) {
    size_t slots = g->keys ? (g->mask + 1) * 2 : 1024, mask = slots - 1;
    uint64_t *keys = malloc(slots * sizeof *keys);
    uint32_t *ids = calloc(slots, sizeof *ids);
    if (!keys || !ids) {
        free(keys);
        free(ids);
        return 0;
    }
    for (size_t s = 0; g->keys && s <= g->mask; s++) {
        if (!g->ids[s]) continue;
        size_t t = mix(g->keys[s]) & mask;
        while (ids[t]) t = (t + 1) & mask;
        keys[t] = g->keys[s];
        ids[t] = g->ids[s];
    }
    free(g->keys);
    free(g->ids);
    g->keys = keys;
    g->ids = ids;
    g->mask = mask;
    return 1;
}

/* Index by trace code: the message group + 1, the first pair + 1. */
typedef struct {
    uint32_t *msg;
    uint32_t *head;
} Index;

static inline uint32_t msg_of(Groups *g, Index *x, uint32_t t, uint32_t row) {
    uint32_t id = x->msg[t];
    if (id) return id - 1;
    id = new_group(g, row);
    if (id != UINT32_MAX) x->msg[t] = id + 1;
    return id;
}

static uint32_t pair_in_table(Groups *g, uint32_t t, uint32_t r, uint32_t row) {
    uint64_t key = ((uint64_t)t << 32) | r;
    if (!g->keys && !grow_table(g)) return UINT32_MAX;
    size_t s = mix(key) & g->mask;
    while (g->ids[s]) {
        if (g->keys[s] == key) return g->ids[s] - 1;
        s = (s + 1) & g->mask;
    }
    uint32_t id = new_group(g, row);
    if (id == UINT32_MAX) return id;
    g->keys[s] = key;
    g->ids[s] = id + 1;
    if (++g->used * 2 > g->mask + 1 && !grow_table(g)) return UINT32_MAX;
    return id;
}

static inline uint32_t pair_of(Groups *g, Index *x, uint32_t t, uint32_t r, uint32_t row) {
    int walked = 0;
    for (uint32_t at = x->head[t]; at; at = g->links[at - 1].next, walked++)
        if (g->links[at - 1].code == r) return at - 1;
    if (walked == CHAIN) return pair_in_table(g, t, r, row);
    uint32_t id = new_group(g, row);
    if (id == UINT32_MAX) return id;
    g->links[id].code = r;
    g->links[id].next = x->head[t];
    x->head[t] = id + 1;
    return id;
}

/* ---- output: Arrow arrays that own malloc'd buffers ---- */
typedef struct {
    void *bufs[2];
    const void *buffers[2];
} Owned;

static void release_array(struct ArrowArray *a) {
    Owned *o = a->private_data;
    free(o->bufs[0]);
    free(o->bufs[1]);
    free(o);
    a->release = NULL;
}

static void release_schema(struct ArrowSchema *sc) { sc->release = NULL; }

/* A (schema, array) capsule pair over `values` (taken: freed with the array, or here on
 * failure) and `valid` (a bitmap, taken likewise; NULL: no nulls). */
static PyObject *export(const char *format, void *values, uint8_t *valid, int64_t length,
                        int64_t nulls) {
    struct ArrowSchema *sc = calloc(1, sizeof *sc);
    struct ArrowArray *arr = calloc(1, sizeof *arr);
    Owned *o = calloc(1, sizeof *o);
    if (!sc || !arr || !o) {
        free(sc); free(arr); free(o); free(values); free(valid);
        return PyErr_NoMemory();
    }
    sc->format = format;
    sc->name = "";
    sc->flags = ARROW_FLAG_NULLABLE;
    sc->release = release_schema;
    o->bufs[0] = valid;
    o->bufs[1] = values;
    o->buffers[0] = valid;
    o->buffers[1] = values;
    arr->length = length;
    arr->null_count = nulls;
    arr->n_buffers = 2;
    arr->buffers = o->buffers;
    arr->private_data = o;
    arr->release = release_array;
    return arrow_capsules(sc, arr);
}

static PyObject *export_u32(uint32_t **values, uint32_t length) {
    uint32_t *v = *values;
    *values = NULL; /* taken */
    if (!v && !(v = malloc(4))) return PyErr_NoMemory();
    return export("I", v, NULL, length, 0);
}

/* r<i>: NONE becomes null */
static PyObject *export_rows(uint32_t **values, uint32_t length) {
    uint32_t *v = *values;
    *values = NULL;
    if (!v && !(v = malloc(4))) return PyErr_NoMemory();
    uint8_t *valid = calloc((size_t)length / 8 + 1, 1);
    if (!valid) {
        free(v);
        return PyErr_NoMemory();
    }
    int64_t nulls = 0;
    for (uint32_t i = 0; i < length; i++) {
        if (v[i] == NONE) {
            v[i] = 0;
            nulls++;
        } else {
            valid[i >> 3] |= (uint8_t)(1u << (i & 7));
        }
    }
    return export("I", v, valid, length, nulls);
}

static PyObject *export_bool(const uint8_t *flags, uint32_t length) {
    uint8_t *bits = calloc((size_t)length / 8 + 1, 1);
    if (!bits) return PyErr_NoMemory();
    for (uint32_t i = 0; i < length; i++)
        if (flags[i]) bits[i >> 3] |= (uint8_t)(1u << (i & 7));
    return export("b", bits, NULL, length, 0);
}

/* (key_row, [n...], [r...][, named]) */
static PyObject *export_groups(Groups *g, int with_named) {
    PyObject *ns = PyList_New(g->width), *rs = PyList_New(g->width), *out = NULL;
    if (!ns || !rs) goto fail;
    for (int j = 0; j < g->width; j++) {
        PyObject *n = export_u32(&g->n[j], g->size);
        if (!n) goto fail;
        PyList_SET_ITEM(ns, j, n);
        PyObject *r = export_rows(&g->r[j], g->size);
        if (!r) goto fail;
        PyList_SET_ITEM(rs, j, r);
    }
    PyObject *key = export_u32(&g->key_row, g->size);
    if (!key) goto fail;
    if (with_named) {
        PyObject *named = export_bool(g->named, g->size);
        if (!named) {
            Py_DECREF(key);
            goto fail;
        }
        out = Py_BuildValue("(NNNN)", key, ns, rs, named);
    } else {
        out = Py_BuildValue("(NNN)", key, ns, rs);
    }
    return out;
fail:
    Py_XDECREF(ns);
    Py_XDECREF(rs);
    return NULL;
}

/* hop -> slot on each side: -1 none */
#define MAX_HOPS 256

static int read_hops(PyObject *seq, int8_t *slot, int *width) {
    Py_ssize_t n = PyTuple_GET_SIZE(seq);
    if (n > 127) return 0;
    for (Py_ssize_t j = 0; j < n; j++) {
        long h = PyLong_AsLong(PyTuple_GET_ITEM(seq, j));
        if (h < 0 || h >= MAX_HOPS) {
            PyErr_Clear();
            return 0;
        }
        slot[h] = (int8_t)j;
    }
    *width = (int)n;
    return 1;
}

/* One side's pass: its groups, the index arrays it alone writes, the columns (shared). */
typedef struct {
    Groups *g;
    Index *x;
    const Column *trace, *rcp, *hop, *ntrace, *nrcp;
    const int8_t *slot; /* hop -> this side's column, -1 */
    int64_t rows, named;
    int pairs;          /* the recipient side (else the message side) */
    int ok;
} Side;

/* The message side groups the rows whose hop is a message hop or whose recipient is null, by
 * trace; the recipient side the rows with a recipient, then the named pairs, by (trace,
 * recipient). Each counts its hops' rows and keeps the first. */
static void *scan_side(void *arg) {
    Side *s = arg;
    Groups *g = s->g;
    Cursor ct = {s->trace, 0, 0}, cr = {s->rcp, 0, 0}, ch = {s->hop, 0, 0};
    for (int64_t row = 0; row < s->rows;) {
        const uint32_t *tv, *rv, *hv;
        const uint8_t *tn, *rn, *hn;
        int64_t tb, rb, hb;
        int64_t n = min3(span(&ct, &tv, &tn, &tb), span(&cr, &rv, &rn, &rb),
                         span(&ch, &hv, &hn, &hb));
        for (int64_t i = 0; i < n; i++) {
            /* not a hop event (no trace: no hop either) */
            if (!is_valid(hn, hb + i) || !is_valid(tn, tb + i)) continue;
            int has_r = is_valid(rn, rb + i);
            int32_t hi = (int32_t)hv[i];
            int j = hi >= 0 && hi < MAX_HOPS ? s->slot[hi] : -1;
            uint32_t at = (uint32_t)(row + i), id;
            if (s->pairs) {
                if (!has_r) continue;
                id = pair_of(g, s->x, tv[i], rv[i], at);
            } else {
                if (j < 0 && has_r) continue;
                id = msg_of(g, s->x, tv[i], at);
            }
            if (id == UINT32_MAX) {
                s->ok = 0;
                return NULL;
            }
            if (j >= 0) {
                if (g->r[j][id] == NONE) g->r[j][id] = at;
                g->n[j][id]++;
            }
        }
        row += n;
        ct.i += n;
        cr.i += n;
        ch.i += n;
    }
    Cursor nt = {s->ntrace, 0, 0}, nr = {s->nrcp, 0, 0};
    uint32_t t, r;
    for (int64_t i = 0; s->pairs && i < s->named; i++) {
        int has_t = next(&nt, &t), has_r = next(&nr, &r);
        if (!has_t || !has_r) continue;
        uint32_t id = pair_of(g, s->x, t, r, (uint32_t)(s->rows + i));
        if (id == UINT32_MAX) {
            s->ok = 0;
            return NULL;
        }
        g->named[id] = 1;
    }
    return NULL;
}

static PyObject *firsts(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *o_trace, *o_rcp, *o_hop, *msg_hops, *rcp_hops, *o_ntrace, *o_nrcp;
    if (!PyArg_ParseTuple(args, "OOOO!O!OO", &o_trace, &o_rcp, &o_hop, &PyTuple_Type, &msg_hops,
                          &PyTuple_Type, &rcp_hops, &o_ntrace, &o_nrcp))
        return NULL;
    int8_t msg_slot[MAX_HOPS], rcp_slot[MAX_HOPS];
    memset(msg_slot, -1, sizeof msg_slot);
    memset(rcp_slot, -1, sizeof rcp_slot);
    int msg_w = 0, rcp_w = 0;
    if (!read_hops(msg_hops, msg_slot, &msg_w) || !read_hops(rcp_hops, rcp_slot, &rcp_w))
        Py_RETURN_NONE;
    Column trace, rcp, hop, ntrace, nrcp;
    int loaded = column_load(o_trace, "I", &trace);
    loaded += column_load(o_rcp, "I", &rcp);
    loaded += column_load(o_hop, "i", &hop);
    loaded += column_load(o_ntrace, "I", &ntrace);
    loaded += column_load(o_nrcp, "I", &nrcp);
    PyObject *result = NULL;
    Groups msg, pairs;
    Index x = {NULL, NULL};
    memset(&msg, 0, sizeof msg);
    memset(&pairs, 0, sizeof pairs);
    if (PyErr_Occurred()) goto done; /* interrupted */
    int64_t rows = trace.length, named = ntrace.length;
    if (loaded < 5 || rcp.length != rows || hop.length != rows || nrcp.length != named ||
        rows + named >= (int64_t)NONE) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    int ok = groups_init(&msg, msg_w, 0) && groups_init(&pairs, rcp_w, 1);
    Py_BEGIN_ALLOW_THREADS
    /* the trace codes' range: the index's size (declined when the codes are sparse, e.g.
     * a process that made many other strings Categorical: polars then) */
    uint32_t top = 0, t;
    Cursor ct = {&trace, 0, 0}, nt = {&ntrace, 0, 0};
    for (int64_t row = 0; row < rows; row++)
        if (next(&ct, &t) && t > top) top = t;
    for (int64_t i = 0; i < named; i++)
        if (next(&nt, &t) && t > top) top = t;
    size_t codes = (size_t)top + 1;
    ok = ok && codes <= 8 * (size_t)(rows + named) + (1u << 20);
    if (ok) {
        x.msg = calloc(codes, sizeof *x.msg);
        x.head = calloc(codes, sizeof *x.head);
        ok = x.msg && x.head;
    }
    /* The two sides share only the (read-only) columns: one thread each. */
    Side sm = {&msg, &x, &trace, &rcp, &hop, &ntrace, &nrcp, msg_slot, rows, named, 0, ok};
    Side sp = {&pairs, &x, &trace, &rcp, &hop, &ntrace, &nrcp, rcp_slot, rows, named, 1, ok};
    pthread_t other;
    int threaded = ok && pthread_create(&other, NULL, scan_side, &sp) == 0;
    if (ok) scan_side(&sm);
    if (threaded) pthread_join(other, NULL);
    else if (ok) scan_side(&sp);
    ok = sm.ok && sp.ok;
    Py_END_ALLOW_THREADS
    if (!ok) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    /* a side with no group still needs its named column */
    if (!pairs.named && !(pairs.named = malloc(1))) {
        result = PyErr_NoMemory();
        goto done;
    }
    PyObject *m = export_groups(&msg, 0);
    if (!m) goto done;
    PyObject *p = export_groups(&pairs, 1);
    if (!p) {
        Py_DECREF(m);
        goto done;
    }
    result = Py_BuildValue("(NN)", m, p);
done:
    free(x.msg);
    free(x.head);
    groups_free(&msg);
    groups_free(&pairs);
    column_free(&trace);
    column_free(&rcp);
    column_free(&hop);
    column_free(&ntrace);
    column_free(&nrcp);
    return result;
}

/* rows_of(trace, wanted) -> the rows whose trace code is one of `wanted`'s (uint32, in
 * order): a bitmap of the wanted codes read against every row, where polars' semi join or
 * is_in hashed all 5M rows for a handful of traces (~20 ms a call, ten calls an analysis). */
static PyObject *rows_of(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *o_trace, *o_wanted;
    if (!PyArg_ParseTuple(args, "OO", &o_trace, &o_wanted)) return NULL;
    Column trace, wanted;
    int loaded = column_load(o_trace, "I", &trace);
    loaded += column_load(o_wanted, "I", &wanted);
    PyObject *result = NULL;
    uint8_t *bits = NULL;
    uint32_t *out = NULL;
    if (PyErr_Occurred()) goto done; /* interrupted */
    if (loaded < 2 || trace.length >= (int64_t)NONE) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    int ok = 1;
    uint32_t size = 0, cap = 1024;
    Py_BEGIN_ALLOW_THREADS
    uint32_t top = 0, t;
    int any = 0;
    Cursor cw = {&wanted, 0, 0};
    for (int64_t i = 0; i < wanted.length; i++)
        if (next(&cw, &t)) {
            any = 1;
            if (t > top) top = t;
        }
    bits = calloc((size_t)top / 8 + 1, 1);
    out = malloc((size_t)cap * sizeof *out);
    ok = bits && out;
    cw = (Cursor){&wanted, 0, 0};
    for (int64_t i = 0; ok && i < wanted.length; i++)
        if (next(&cw, &t)) bits[t >> 3] |= (uint8_t)(1u << (t & 7));
    /* chunk by chunk, a tight loop: few rows match, the branch is predicted */
    int64_t base = 0;
    for (int c = 0; ok && any && c < trace.n; c++) {
        const struct ArrowArray *a = &trace.arrays[c];
        const uint32_t *v = (const uint32_t *)a->buffers[1] + a->offset;
        const uint8_t *valid = a->buffers[0];
        for (int64_t i = 0; i < a->length; i++) {
            t = v[i];
            if (t > top || !((bits[t >> 3] >> (t & 7)) & 1)) continue;
            int64_t at = a->offset + i;
            if (valid && !((valid[at >> 3] >> (at & 7)) & 1)) continue;
            if (size == cap) {
                uint32_t *more = realloc(out, (size_t)cap * 2 * sizeof *out);
                if (!more) { ok = 0; break; }
                out = more;
                cap *= 2;
            }
            out[size++] = (uint32_t)(base + i);
        }
        base += a->length;
    }
    Py_END_ALLOW_THREADS
    if (!ok) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    result = export_u32(&out, size);
done:
    free(bits);
    free(out);
    column_free(&trace);
    column_free(&wanted);
    return result;
}

/* unordered(source, seq) -> a row of each source (uint32, the row where it first fell; the
 * rows without a source count as one) whose non-null seqs do not strictly rise in row order,
 * or None. A source's state is found by its code in a small open-addressed table (a log has
 * few sources, and a row's source is mostly the row before's): one pass, where polars'
 * distinct count per source hashed every seq (0.2 s at 5M events). */
typedef struct {
    uint32_t code;
    uint8_t used, seen, fell;
    int64_t last;
} SourceSlot;

static PyObject *unordered(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *o_source, *o_seq;
    if (!PyArg_ParseTuple(args, "OO", &o_source, &o_seq)) return NULL;
    Column source, seq;
    int loaded = column_load(o_source, "I", &source);
    loaded += column_load(o_seq, "l", &seq);
    PyObject *result = NULL;
    SourceSlot *slots = NULL;
    uint32_t *out = NULL;
    if (PyErr_Occurred()) goto done; /* interrupted */
    if (loaded < 2 || source.length != seq.length || source.length >= (int64_t)NONE) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    int ok = 1;
    uint32_t n_out = 0;
    Py_BEGIN_ALLOW_THREADS
    size_t cap = 64, used = 0;
    uint32_t out_cap = 64;
    SourceSlot none = {0, 1, 0, 0, 0}; /* the rows without a source */
    slots = calloc(cap, sizeof *slots);
    out = malloc((size_t)out_cap * sizeof *out);
    ok = slots && out;
    Cursor cs = {&source, 0, 0};
    int c = 0;
    int64_t i = 0;
    SourceSlot *prev = NULL;
    uint32_t prev_code = 0;
    int prev_valid = -1;
    for (int64_t row = 0; ok && row < seq.length; row++) {
        uint32_t code;
        int has_source = next(&cs, &code);
        /* the seq: 64 bits, from its own chunks */
        const struct ArrowArray *a = &seq.arrays[c];
        while (i >= a->length) {
            c++;
            i = 0;
            a = &seq.arrays[c];
        }
        int64_t at = a->offset + i++;
        if (!is_valid(a->buffers[0], at)) continue;
        int64_t value = ((const int64_t *)a->buffers[1])[at];
        SourceSlot *s;
        if (prev && has_source == prev_valid && (!has_source || code == prev_code)) {
            s = prev;
        } else if (!has_source) {
            s = &none;
        } else {
            if (2 * (used + 1) > cap) { /* grow: rehash into twice the slots */
                SourceSlot *more = calloc(2 * cap, sizeof *more);
                if (!more) { ok = 0; break; }
                for (size_t k = 0; k < cap; k++) {
                    if (!slots[k].used) continue;
                    size_t h = (size_t)mix(slots[k].code) & (2 * cap - 1);
                    while (more[h].used) h = (h + 1) & (2 * cap - 1);
                    more[h] = slots[k];
                }
                free(slots);
                slots = more;
                cap *= 2;
            }
            size_t h = (size_t)mix(code) & (cap - 1);
            while (slots[h].used && slots[h].code != code) h = (h + 1) & (cap - 1);
            s = &slots[h];
            if (!s->used) {
                s->used = 1;
                s->code = code;
                used++;
            }
        }
        prev = s; /* (after a rehash too: it points into the new slots) */
        prev_code = code;
        prev_valid = has_source;
        if (s->seen && value <= s->last && !s->fell) {
            if (n_out == out_cap) {
                uint32_t *more = realloc(out, (size_t)out_cap * 2 * sizeof *out);
                if (!more) { ok = 0; break; }
                out = more;
                out_cap *= 2;
            }
            s->fell = 1;
            out[n_out++] = (uint32_t)row;
        }
        s->seen = 1;
        s->last = value;
    }
    Py_END_ALLOW_THREADS
    result = ok ? export_u32(&out, n_out) : Py_NewRef(Py_None);
done:
    free(slots);
    free(out);
    column_free(&source);
    column_free(&seq);
    return result;
}

static PyMethodDef methods[] = {
    {"firsts", firsts, METH_VARARGS,
     "firsts(trace, recipient, hop, msg_hops, rcp_hops, named_trace, named_recipient) -> "
     "((key_row, [n], [r]), (key_row, [n], [r], named)) | None"},
    {"rows_of", rows_of, METH_VARARGS,
     "rows_of(trace, wanted) -> the rows (uint32 capsule pair) whose code is wanted | None"},
    {"unordered", unordered, METH_VARARGS,
     "unordered(source, seq) -> a row (uint32 capsule pair) of each source whose seqs do not "
     "rise row by row | None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_passes",
    .m_doc = "The analysis' compiled passes over the hop events (see _passes.c)",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__passes(void) { return PyModule_Create(&module); }
