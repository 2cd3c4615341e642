/* JSON lines -> Arrow columns, for the lines tracekit itself writes.
 *
 * scan(buffer, keys, ts_key, coded=0) parses every line of `buffer` as one flat JSON object and
 * returns (rows, columns, odd): an Arrow array (the PyCapsule interface) per column, a
 * string-view one per key of `keys`, then an int64 nanosecond timestamp column, `_ts_fast`,
 * parsed from the `ts_key` value where it has tracekit's own layout
 * (YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z). A key whose bit is set in `coded` comes as a dictionary
 * array instead (uint32 codes and each distinct value once; polars takes it as
 * Categorical), and its bit in `odd` says whether one of its values opens with a bracket or
 * a brace or is empty (values the reader looks at row by row): the names the reader makes
 * Categorical anyway, where a string view per row (16 bytes, plus the text of an id over 12)
 * was written, faulted in and hashed again by the cast (a 1M-event read: 0.35-0.8 s of
 * scanning and 0.17 s of casts, against 0.33 s and 0.05 s coded).
 *
 * It gives exactly what polars' `read_ndjson` with every key typed String gives, or nothing:
 * for a line outside the subset it knows (a blank line, invalid JSON or UTF-8, a nested value
 * or an unusual number under a schema key, a lone surrogate, a duplicate key...), it returns
 * None and the caller reads the buffer the general way. Values of other keys are validated and
 * skipped. Why it exists: polars' reader plus the conversions after it cost ~1.5x the read
 * alone; this does the read and the timestamp parse in one pass, without the GIL, and hands
 * the columns over without a copy.
 */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE /* mremap */
#include <Python.h>
#include <sys/mman.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_arrow_c.h" /* tracekit/: the Arrow structs and capsules */

#define MAX_KEYS 64
#define MAX_DEPTH 64

/* ---- memory: big columns live in their own mappings ----
 * Handed to polars, they are freed whenever it drops them; unmapped, they go back to the
 * system at once, where glibc may keep freed heap blocks for reuse. Small ones come from the
 * heap (MAPPED_FROM). Both come zeroed, which views and validity need (absent = null). */
typedef struct {
    uint8_t *p;
    size_t size;
} Region;

/* Under this size, from the heap: a mapping each would leave thousands of them behind a
 * collection of many small files (the kernel caps a process at ~65k). */
#define MAPPED_FROM ((size_t)1 << 20)

static int region_new(Region *r, size_t size) {
    void *p;
    if (size < MAPPED_FROM) {
        p = calloc(1, size);
        if (!p) return 0;
    } else {
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return 0;
#ifdef MADV_HUGEPAGE
        /* Every page of a mapping is written, each block's anew: in 2 MiB pages (where the
         * system hands them out on request) the kernel takes one fault where it took 512.
         * A 5M-event read: 2.62 s -> 2.42 s, peak memory the same. A hint: its failure
         * changes nothing. */
        madvise(p, size, MADV_HUGEPAGE);
#endif
    }
    r->p = p;
    r->size = size;
    return 1;
}

static int region_grow(Region *r, size_t size) {
    if (!r->p) return region_new(r, size);
    if (r->size < MAPPED_FROM) { /* from the heap: move it (to a mapping once it is big) */
        Region bigger;
        if (!region_new(&bigger, size)) return 0;
        memcpy(bigger.p, r->p, r->size);
        free(r->p);
        *r = bigger;
        return 1;
    }
#ifdef MREMAP_MAYMOVE
    void *p = mremap(r->p, r->size, size, MREMAP_MAYMOVE);
    if (p == MAP_FAILED) return 0;
    r->p = p;
    r->size = size;
    return 1;
#else
    Region bigger;
    if (!region_new(&bigger, size)) return 0;
    memcpy(bigger.p, r->p, r->size);
    munmap(r->p, r->size);
    *r = bigger;
    return 1;
#endif
}

static void region_free(Region *r) {
    if (r->p && r->size < MAPPED_FROM) free(r->p);
    else if (r->p) munmap(r->p, r->size);
    r->p = NULL;
    r->size = 0;
}

/* ---- column builders ---- */
typedef struct {
    Region views;    /* 16 bytes a row (Arrow string view); coded: a distinct value */
    Region valid;    /* validity bitmap */
    Region data;     /* the one data buffer of strings over 12 bytes */
    size_t dlen;
    size_t first_cap; /* the data buffer's first size: no more than the input could fill */
    int64_t seen;    /* row + 1 of the last row that set it: a duplicate key */
    /* Coded (a dictionary column, polars' Categorical): a row holds its value's code, the
     * views hold each distinct value once, found by its hash in `slots` (code + 1; 0 free). */
    int coded;
    Region codes;    /* uint32 a row */
    uint32_t ndict;  /* distinct values */
    uint32_t *slots;
    uint32_t *hashes; /* per distinct value */
    size_t mask;      /* slots - 1 */
    int odd;          /* a distinct value opens with a bracket or a brace, or is empty */
} StrCol;

typedef struct {
    Region values;   /* int64 nanoseconds */
    Region valid;
} TsCol;

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
    int64_t row;
    int ncols;
    const char *keys[MAX_KEYS];
    size_t key_len[MAX_KEYS];
    int ts_col;
    int8_t guess[MAX_KEYS]; /* the key index at each position of the previous line */
    StrCol cols[MAX_KEYS];
    TsCol ts;
    uint8_t *scratch; /* one decoded value */
    size_t scratch_cap;
    int failed;
} Scan;

static int reserve(StrCol *c, size_t more) {
    if (c->dlen + more <= c->data.size) return 1;
    size_t cap = c->data.size ? c->data.size : c->first_cap;
    while (cap < c->dlen + more) cap *= 2;
    return region_grow(&c->data, cap);
}

/* Copy n <= 12 bytes without a call: two overlapping fixed-size copies (memcpy of a constant
 * size compiles to a move), reading and writing only [src, src + n). */
static inline void copy_small(uint8_t *dst, const uint8_t *src, size_t n) {
    if (n >= 8) {
        memcpy(dst, src, 8);
        memcpy(dst + n - 4, src + n - 4, 4);
    } else if (n >= 4) {
        memcpy(dst, src, 4);
        memcpy(dst + n - 4, src + n - 4, 4);
    } else {
        for (size_t i = 0; i < n; i++) dst[i] = src[i];
    }
}

/* Store `len` bytes at `s` as view `row` of `c` (its validity untouched). */
static inline int put_view(StrCol *c, int64_t row, const uint8_t *s, size_t len) {
    uint8_t *v = c->views.p + 16 * row;
    uint32_t n = (uint32_t)len;
    if (len > 0x7fffffff) return 0;
    memcpy(v, &n, 4);
    if (len <= 12) {
        copy_small(v + 4, s, len);
    } else {
        if (c->dlen > 0x7fffffff - len) return 0; /* one buffer holds 2 GiB at most here */
        if (!reserve(c, len)) return 0;
        uint32_t buf = 0, off = (uint32_t)c->dlen;
        memcpy(c->data.p + c->dlen, s, len);
        c->dlen += len;
        memcpy(v + 4, s, 4);
        memcpy(v + 8, &buf, 4);
        memcpy(v + 12, &off, 4);
    }
    return 1;
}

/* A hash of n bytes: 8 at a time, each mixed in by a multiply (the values are short names
 * and ids; the table probes linearly). */
static inline uint32_t hash_bytes(const uint8_t *p, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (uint64_t)n;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = (h ^ v) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 29;
    }
    if (n) {
        uint64_t v = 0;
        for (size_t i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
        h = (h ^ v) * 0x94d049bb133111ebULL;
    }
    h ^= h >> 32;
    h *= 0xbf58476d1ce4e5b9ULL;
    return (uint32_t)(h ^ (h >> 29));
}

/* Whether distinct value e of `c` is the `len` bytes at `s`. */
static inline int view_is(const StrCol *c, uint32_t e, const uint8_t *s, size_t len) {
    const uint8_t *v = c->views.p + 16 * (size_t)e;
    uint32_t n;
    memcpy(&n, v, 4);
    if (n != len) return 0;
    if (len <= 12) return memcmp(v + 4, s, len) == 0;
    uint32_t off;
    memcpy(&off, v + 12, 4);
    return memcmp(v + 4, s, 4) == 0 && memcmp(c->data.p + off, s, len) == 0;
}

static int coded_init(StrCol *c) {
    c->mask = 1023;
    c->slots = calloc(c->mask + 1, sizeof *c->slots);
    c->hashes = malloc(512 * sizeof *c->hashes);
    return c->slots && c->hashes && region_new(&c->views, 512 * 16);
}

/* Twice the slots, the values placed again by their hashes. */
static int coded_rehash(StrCol *c) {
    size_t mask = 2 * c->mask + 1;
    uint32_t *slots = calloc(mask + 1, sizeof *slots);
    uint32_t *hashes = realloc(c->hashes, (mask + 1) / 2 * sizeof *hashes);
    if (hashes) c->hashes = hashes;
    if (!slots || !hashes) { free(slots); return 0; }
    for (uint32_t e = 0; e < c->ndict; e++) {
        size_t i = c->hashes[e] & mask;
        while (slots[i]) i = (i + 1) & mask;
        slots[i] = e + 1;
    }
    free(c->slots);
    c->slots = slots;
    c->mask = mask;
    return region_grow(&c->views, (mask + 1) / 2 * 16);
}

/* Row `row` of a coded column: the code of the `len` bytes at `s`, a new one if unseen. */
static inline int put_coded(StrCol *c, int64_t row, const uint8_t *s, size_t len) {
    uint32_t h = hash_bytes(s, len), e;
    size_t i = h & c->mask;
    for (;;) {
        e = c->slots[i];
        if (!e) break;
        if (c->hashes[e - 1] == h && view_is(c, e - 1, s, len)) {
            e--;
            goto found;
        }
        i = (i + 1) & c->mask;
    }
    if (c->ndict >= 0x7fffffff) return 0;
    e = c->ndict;
    if (!put_view(c, e, s, len)) return 0;
    if (len == 0 || s[0] == '[' || s[0] == '{') c->odd = 1;
    c->hashes[e] = h;
    c->slots[i] = e + 1;
    c->ndict++;
    /* at most half full; the views and hashes have room for half the slots */
    if (2 * (size_t)c->ndict > c->mask && !coded_rehash(c)) return 0;
found:
    ((uint32_t *)c->codes.p)[row] = e;
    c->valid.p[row >> 3] |= (uint8_t)(1u << (row & 7));
    return 1;
}

/* Store `len` bytes at `s` as row `row` of `c`. */
static inline int put(StrCol *c, int64_t row, const uint8_t *s, size_t len) {
    if (c->coded) return put_coded(c, row, s, len);
    if (!put_view(c, row, s, len)) return 0;
    c->valid.p[row >> 3] |= (uint8_t)(1u << (row & 7));
    return 1;
}

/* ---- lexing ---- */
static inline void skip_ws(Scan *s) {
    /* most calls find none: one test of the first byte */
    if (s->p < s->end && *s->p <= ' ')
        while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\r')) s->p++;
}

static int hexval(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int hex4(const uint8_t *p, const uint8_t *end, uint32_t *out) {
    if (end - p < 4) return 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0) return 0;
        v = (v << 4) | (uint32_t)h;
    }
    *out = v;
    return 1;
}

/* Length of the valid UTF-8 sequence starting with lead byte p[0] (>= 0x80), or 0. */
static int utf8_seq(const uint8_t *p, const uint8_t *end) {
    uint8_t b = p[0];
    ptrdiff_t left = end - p;
    if (b >= 0xC2 && b <= 0xDF) {
        return (left >= 2 && (p[1] & 0xC0) == 0x80) ? 2 : 0;
    }
    if (b >= 0xE0 && b <= 0xEF) {
        if (left < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
        if (b == 0xE0 && p[1] < 0xA0) return 0;  /* overlong */
        if (b == 0xED && p[1] > 0x9F) return 0;  /* surrogate */
        return 3;
    }
    if (b >= 0xF0 && b <= 0xF4) {
        if (left < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if (b == 0xF0 && p[1] < 0x90) return 0;  /* overlong */
        if (b == 0xF4 && p[1] > 0x8F) return 0;  /* over U+10FFFF */
        return 4;
    }
    return 0;
}

static size_t put_utf8(uint8_t *o, uint32_t cp) {
    if (cp < 0x80) { o[0] = (uint8_t)cp; return 1; }
    if (cp < 0x800) { o[0] = (uint8_t)(0xC0 | (cp >> 6)); o[1] = (uint8_t)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | (cp >> 12)); o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F)); return 3;
    }
    o[0] = (uint8_t)(0xF0 | (cp >> 18)); o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (uint8_t)(0x80 | (cp & 0x3F)); return 4;
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* The high bit of each byte of v that ends a plain run in a string: '"', '\\', a control
 * character or a non-ASCII byte (flags above the first may be false; the lowest is exact). */
static inline uint64_t stops8(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    uint64_t q = v ^ (ONES * '"'), b = v ^ (ONES * '\\');
    return (((q - ONES) & ~q) | ((b - ONES) & ~b) | ((v - ONES * 0x20) & ~v) | v) & HIGHS;
}

/* The closing quote of the string whose text starts at p, when that text is plain (ASCII,
 * no escape, no control character): the common case, inlined where strings are read. NULL
 * otherwise, and string() reads it. */
static inline const uint8_t *plain_string(const uint8_t *p, const uint8_t *end) {
    while (end - p >= 8) {
        uint64_t m = stops8(p);
        if (m) {
            p += __builtin_ctzll(m) >> 3;
            return *p == '"' ? p : NULL;
        }
        p += 8;
    }
    while (p < end && *p != '"' && *p != '\\' && *p >= 0x20 && *p < 0x80) p++;
    return p < end && *p == '"' ? p : NULL;
}

/* A JSON string at s->p (the opening quote). Decoded into `out` (room for the raw length)
 * when out is not NULL; *len is the decoded length; *escaped whether it held an escape. */
static int string(Scan *s, uint8_t *out, size_t *len, int *escaped) {
    const uint8_t *p = s->p + 1, *end = s->end;
    size_t n = 0;
    *escaped = 0;
    for (;;) {
        const uint8_t *q = p;
        for (;;) { /* eight bytes at a time while they are plain */
            if (end - q < 8) {
                while (q < end && *q != '"' && *q != '\\' && *q >= 0x20 && *q < 0x80) q++;
                break;
            }
            uint64_t m = stops8(q);
            if (m) { q += __builtin_ctzll(m) >> 3; break; }
            q += 8;
        }
        if (out) memcpy(out + n, p, (size_t)(q - p));
        n += (size_t)(q - p);
        p = q;
        if (p >= end) return 0;
        uint8_t c = *p;
        if (c == '"') break;
        if (c < 0x20) return 0;
        if (c >= 0x80) {
            int k = utf8_seq(p, end);
            if (!k) return 0;
            if (out) memcpy(out + n, p, (size_t)k);
            n += (size_t)k;
            p += k;
            continue;
        }
        /* backslash */
        *escaped = 1;
        if (end - p < 2) return 0;
        uint8_t e = p[1];
        uint8_t ch;
        switch (e) {
            case '"': ch = '"'; break;
            case '\\': ch = '\\'; break;
            case '/': ch = '/'; break;
            case 'b': ch = '\b'; break;
            case 'f': ch = '\f'; break;
            case 'n': ch = '\n'; break;
            case 'r': ch = '\r'; break;
            case 't': ch = '\t'; break;
            case 'u': {
                uint32_t cp;
                if (!hex4(p + 2, end, &cp)) return 0;
                p += 6;
                if (cp >= 0xDC00 && cp <= 0xDFFF) return 0; /* lone low surrogate */
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    uint32_t lo;
                    if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || !hex4(p + 2, end, &lo)) return 0;
                    if (lo < 0xDC00 || lo > 0xDFFF) return 0;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                }
                if (cp == 0) return 0; /* NUL in text: left to the general reader */
                if (out) n += put_utf8(out + n, cp);
                else n += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
                continue;
            }
            default: return 0;
        }
        if (out) out[n] = ch;
        n++;
        p += 2;
    }
    *len = n;
    s->p = p + 1;
    return 1;
}

/* JSON number grammar at s->p; *end_out is where it stops. Numbers polars rejects as
 * invalid are declined, with a margin: integers beyond 128 bits (over 38 digits), values a
 * double cannot hold (1E400, 1000000000e300: exponent plus integer digits over 300), over
 * 100 digits in all. */
static int number(Scan *s, const uint8_t **end_out) {
    const uint8_t *p = s->p, *end = s->end, *first;
    if (p < end && *p == '-') p++;
    if (p >= end) return 0;
    first = p;
    if (*p == '0') p++;
    else if (*p >= '1' && *p <= '9') { while (p < end && *p >= '0' && *p <= '9') p++; }
    else return 0;
    size_t idigits = (size_t)(p - first);
    int plain_integer = !(p < end && (*p == '.' || *p == 'e' || *p == 'E'));
    /* polars rejects integer literals outside i128/u128 (InvalidNumber): 38 digits are safe */
    if (plain_integer && idigits > 38) return 0;
    if (p < end && *p == '.') {
        p++;
        const uint8_t *d = p;
        while (p < end && *p >= '0' && *p <= '9') p++;
        if (p == d) return 0;
    }
    if (p - first > 100) return 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int negexp = p < end && *p == '-';
        if (p < end && (*p == '+' || *p == '-')) p++;
        const uint8_t *d = p;
        int exp = 0;
        while (p < end && *p >= '0' && *p <= '9') {
            if (exp < 1000) exp = exp * 10 + (*p - '0');
            p++;
        }
        if (p == d || exp > 300) return 0;
        /* overflow to infinity: polars rejects the line (InvalidNumber) */
        if (!negexp && (size_t)exp + idigits > 300) return 0;
    }
    *end_out = p;
    return 1;
}

static int literal(Scan *s, const char *word, size_t n) {
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0) return 0;
    s->p += n;
    return 1;
}

/* Validate and skip any JSON value. */
static int skip_value(Scan *s, int depth) {
    if (s->p >= s->end) return 0;
    uint8_t c = *s->p;
    size_t len;
    int esc;
    const uint8_t *e;
    switch (c) {
        case '"': return string(s, NULL, &len, &esc);
        case 't': return literal(s, "true", 4);
        case 'f': return literal(s, "false", 5);
        case 'n': return literal(s, "null", 4);
        case '[':
        case '{': {
            if (depth >= MAX_DEPTH) return 0;
            uint8_t close = c == '[' ? ']' : '}';
            s->p++;
            skip_ws(s);
            if (s->p < s->end && *s->p == close) { s->p++; return 1; }
            for (;;) {
                if (c == '{') {
                    if (s->p >= s->end || *s->p != '"' || !string(s, NULL, &len, &esc)) return 0;
                    skip_ws(s);
                    if (s->p >= s->end || *s->p != ':') return 0;
                    s->p++;
                    skip_ws(s);
                }
                if (!skip_value(s, depth + 1)) return 0;
                skip_ws(s);
                if (s->p >= s->end) return 0;
                if (*s->p == ',') { s->p++; skip_ws(s); continue; }
                if (*s->p == close) { s->p++; return 1; }
                return 0;
            }
        }
        default:
            if (c == '-' || (c >= '0' && c <= '9')) {
                if (!number(s, &e)) return 0;
                s->p = e;
                return 1;
            }
            return 0;
    }
}

/* A number under a schema key, as polars renders it read as String (the float's shortest
 * round trip, integral floats without ".0"), for the literals whose rendering is certain:
 * integers of up to 18 digits, decimals of up to 15 significant digits without an exponent
 * whose fraction does not end in 0 (or is all zeros) and has at most 6 leading zeros. */
static int number_text(Scan *s, const uint8_t **t, size_t *tlen) {
    const uint8_t *start = s->p, *e;
    if (!number(s, &e)) return 0;
    const uint8_t *p = start;
    int neg = *p == '-';
    if (neg) p++;
    const uint8_t *ip = p;
    while (p < e && *p >= '0' && *p <= '9') p++;
    size_t idigits = (size_t)(p - ip);
    if (p < e && (*p == 'e' || *p == 'E')) return 0;
    if (p == e) { /* integer */
        if (idigits > 18) return 0;
        if (neg && idigits == 1 && *ip == '0') return 0; /* -0 renders as 0 */
        *t = start; *tlen = (size_t)(e - start); s->p = e;
        return 1;
    }
    /* decimal: p at '.' */
    const uint8_t *fp = p + 1, *fe = fp;
    while (fe < e && *fe >= '0' && *fe <= '9') fe++;
    if (fe != e) return 0; /* an exponent */
    size_t fdigits = (size_t)(fe - fp);
    int zero_fraction = 1;
    for (const uint8_t *q = fp; q < fe; q++) if (*q != '0') { zero_fraction = 0; break; }
    if (zero_fraction) {
        if (idigits > 15) return 0;
        if (neg && idigits == 1 && *ip == '0') return 0; /* -0.0 renders as -0 */
        *t = start; *tlen = (size_t)(p - start); s->p = e;
        return 1;
    }
    if (fe[-1] == '0') return 0;
    size_t sig;
    if (idigits == 1 && *ip == '0') {
        size_t lead = 0;
        while (lead < fdigits && fp[lead] == '0') lead++;
        if (lead > 6) return 0;
        sig = fdigits - lead;
    } else {
        sig = idigits + fdigits;
    }
    if (sig > 15) return 0;
    *t = start; *tlen = (size_t)(e - start); s->p = e;
    return 1;
}

static int grow_scratch(Scan *s, size_t need) {
    if (need <= s->scratch_cap) return 1;
    size_t cap = s->scratch_cap ? s->scratch_cap : 256;
    while (cap < need) cap *= 2;
    uint8_t *b = realloc(s->scratch, cap);
    if (!b) return 0;
    s->scratch = b;
    s->scratch_cap = cap;
    return 1;
}

/* ---- timestamps ---- */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static inline int dig(uint8_t c) { return c >= '0' && c <= '9' ? c - '0' : -1; }

static int d2(const uint8_t *p) {
    int a = dig(p[0]), b = dig(p[1]);
    return a < 0 || b < 0 ? -1 : a * 10 + b;
}

/* tracekit's own YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z, years 1678-2261 -> ns since the epoch. */
static int parse_ts(const uint8_t *t, size_t n, int64_t *out) {
    if (!(n == 20 || (n >= 22 && n <= 30))) return 0;
    if (t[n - 1] != 'Z' || t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' || t[16] != ':')
        return 0;
    int y1 = d2(t), y2 = d2(t + 2), mo = d2(t + 5), d = d2(t + 8), h = d2(t + 11), mi = d2(t + 14),
        se = d2(t + 17);
    if (y1 < 0 || y2 < 0 || mo < 0 || d < 0 || h < 0 || mi < 0 || se < 0) return 0;
    int y = y1 * 100 + y2;
    if (y < 1678 || y > 2261 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || se > 59) return 0;
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] + (mo == 2 && leap)) return 0;
    int64_t frac = 0;
    if (n > 20) {
        if (t[19] != '.') return 0;
        size_t k = n - 21;
        for (size_t i = 0; i < k; i++) {
            int v = dig(t[20 + i]);
            if (v < 0) return 0;
            frac = frac * 10 + v;
        }
        for (size_t i = k; i < 9; i++) frac *= 10;
    }
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    *out = ((days * 86400 + h * 3600 + mi * 60 + se) * 1000000000LL) + frac;
    return 1;
}

/* ---- one value under a schema key ---- */
static int column_value(Scan *s, int k) {
    StrCol *c = &s->cols[k];
    int64_t row = s->row;
    if (c->seen == row + 1) return 0; /* duplicate key: polars keeps the first; left to it */
    c->seen = row + 1;
    uint8_t ch = *s->p;
    if (ch == '"') {
        size_t len;
        int esc;
        const uint8_t *start = s->p, *q = plain_string(start + 1, s->end);
        /* Validate first; decode into scratch only when the value holds an escape (else the
         * bytes between the quotes are the value). */
        if (q) {
            len = (size_t)(q - start - 1);
            esc = 0;
            s->p = q + 1;
        } else if (!string(s, NULL, &len, &esc)) {
            return 0;
        }
        if (esc) {
            const uint8_t *after = s->p;
            s->p = start;
            if (!grow_scratch(s, (size_t)(after - start)) || !string(s, s->scratch, &len, &esc))
                return 0;
        }
        const uint8_t *val = esc ? s->scratch : start + 1;
        if (!put(c, row, val, len)) return 0;
        if (k == s->ts_col) {
            int64_t ns;
            if (parse_ts(val, len, &ns)) {
                ((int64_t *)s->ts.values.p)[row] = ns;
                s->ts.valid.p[row >> 3] |= (uint8_t)(1u << (row & 7));
            }
        }
        return 1;
    }
    if (ch == 'n') return literal(s, "null", 4);
    if (ch == 't') return literal(s, "true", 4) && put(c, row, (const uint8_t *)"true", 4);
    if (ch == 'f') return literal(s, "false", 5) && put(c, row, (const uint8_t *)"false", 5);
    if (ch == '-' || (ch >= '0' && ch <= '9')) {
        const uint8_t *t;
        size_t tlen;
        return number_text(s, &t, &tlen) && put(c, row, t, tlen);
    }
    if (ch == '[') {
        /* A list of plain strings, rendered as polars does: ["a", "b"]. */
        const uint8_t *open = s->p;
        if (!grow_scratch(s, 2 * (size_t)(s->end - open) + 8)) return 0;
        uint8_t *o = s->scratch;
        size_t n = 0;
        o[n++] = '[';
        s->p++;
        skip_ws(s);
        if (s->p < s->end && *s->p == ']') {
            s->p++;
        } else {
            for (;;) {
                if (s->p >= s->end || *s->p != '"') return 0;
                const uint8_t *from = s->p;
                size_t len;
                int esc;
                if (!string(s, NULL, &len, &esc) || esc) return 0;
                memcpy(o + n, from, (size_t)(s->p - from));
                n += (size_t)(s->p - from);
                skip_ws(s);
                if (s->p >= s->end) return 0;
                if (*s->p == ',') { s->p++; skip_ws(s); o[n++] = ','; o[n++] = ' '; continue; }
                if (*s->p == ']') { s->p++; break; }
                return 0;
            }
        }
        o[n++] = ']';
        return put(c, row, o, n);
    }
    return 0; /* an object, or not JSON */
}

/* a == b over n bytes, without a call for keys of up to 16 bytes */
static inline int same(const void *a, const void *b, size_t n) {
    const uint8_t *x = a, *y = b;
    uint64_t u, v, w, z;
    if (n >= 8 && n <= 16) {
        memcpy(&u, x, 8); memcpy(&v, y, 8);
        memcpy(&w, x + n - 8, 8); memcpy(&z, y + n - 8, 8);
        return u == v && w == z;
    }
    if (n >= 4 && n < 8) {
        uint32_t a4, b4, c4, d4;
        memcpy(&a4, x, 4); memcpy(&b4, y, 4);
        memcpy(&c4, x + n - 4, 4); memcpy(&d4, y + n - 4, 4);
        return a4 == b4 && c4 == d4;
    }
    if (n < 4) {
        for (size_t i = 0; i < n; i++) if (x[i] != y[i]) return 0;
        return 1;
    }
    return memcmp(x, y, n) == 0;
}

static int find_key(const Scan *s, const uint8_t *k, size_t n) {
    for (int i = 0; i < s->ncols; i++)
        if (s->key_len[i] == n && same(s->keys[i], k, n)) return i;
    return -1;
}

static int line(Scan *s) {
    skip_ws(s);
    if (s->p >= s->end || *s->p != '{') return 0;
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
    } else {
        for (int j = 0;; j++) {
            if (s->p >= s->end || *s->p != '"') return 0;
            const uint8_t *kstart = s->p + 1, *kq = plain_string(kstart, s->end);
            size_t klen;
            int esc = 0;
            if (kq) {
                klen = (size_t)(kq - kstart);
                s->p = kq + 1;
            } else if (!string(s, NULL, &klen, &esc) || esc) {
                return 0; /* escaped keys: general reader */
            }
            /* Lines of one log name their keys in one order: try the previous line's first. */
            int k = j < MAX_KEYS ? s->guess[j] : -1;
            if (k < 0 || s->key_len[k] != klen || !same(s->keys[k], kstart, klen)) {
                k = find_key(s, kstart, klen);
                if (j < MAX_KEYS) s->guess[j] = (int8_t)k;
            }
            skip_ws(s);
            if (s->p >= s->end || *s->p != ':') return 0;
            s->p++;
            skip_ws(s);
            if (s->p >= s->end) return 0;
            if (k >= 0 ? !column_value(s, k) : !skip_value(s, 0)) return 0;
            skip_ws(s);
            if (s->p >= s->end) return 0;
            if (*s->p == ',') { s->p++; skip_ws(s); continue; }
            if (*s->p == '}') { s->p++; break; }
            return 0;
        }
    }
    skip_ws(s);
    return s->p == s->end;
}

/* ---- Arrow export ----
 * One array per column, not one struct array: polars keeps an imported array's buffers
 * alive while any child is alive, so a struct's text columns kept every other column's
 * views too (+0.9 GB at 5M events once the names were cast to Categorical). */
typedef struct {
    Region bufs[3];
    const void *buffers[4];
    int64_t sizes[1];
} ColPrivate;

static void release_array(struct ArrowArray *a) {
    ColPrivate *pd = a->private_data;
    for (int i = 0; i < 3; i++) region_free(&pd->bufs[i]);
    free(pd);
    a->release = NULL;
}

static int64_t count_nulls(const uint8_t *valid, int64_t n) {
    int64_t set = 0, full = n >> 3;
    for (int64_t i = 0; i < full; i++) set += __builtin_popcount(valid[i]);
    for (int64_t i = full << 3; i < n; i++) set += (valid[i >> 3] >> (i & 7)) & 1;
    return n - set;
}

static void release_schema(struct ArrowSchema *sc) {
    free(sc->private_data); /* the name */
    if (sc->dictionary) {
        if (sc->dictionary->release) sc->dictionary->release(sc->dictionary);
        free(sc->dictionary);
        sc->dictionary = NULL;
    }
    sc->release = NULL;
}

/* A coded column's array: its own buffers, then its dictionary's. */
static void release_coded(struct ArrowArray *a) {
    if (a->dictionary) {
        if (a->dictionary->release) a->dictionary->release(a->dictionary);
        free(a->dictionary);
        a->dictionary = NULL;
    }
    release_array(a);
}

/* The string view array of `c`'s views (its rows, or a coded column's distinct values) in
 * `arr`, its buffers moved to `cp`. */
static void export_views(StrCol *c, struct ArrowArray *arr, ColPrivate *cp, int64_t length,
                         int with_validity) {
    arr->length = length;
    arr->private_data = cp;
    arr->release = release_array;
    arr->buffers = cp->buffers;
    if (with_validity) cp->bufs[0] = c->valid;
    cp->bufs[1] = c->views;
    cp->bufs[2] = c->data;
    cp->sizes[0] = (int64_t)c->dlen;
    cp->buffers[0] = with_validity ? c->valid.p : NULL;
    cp->buffers[1] = c->views.p;
    /* validity, views, the data buffers (none when every string fits its view), then the
     * data buffers' sizes */
    if (c->dlen) {
        cp->buffers[2] = c->data.p;
        cp->buffers[3] = cp->sizes;
        arr->n_buffers = 4;
    } else {
        cp->buffers[2] = cp->sizes;
        arr->n_buffers = 3;
    }
    arr->null_count = with_validity ? count_nulls(c->valid.p, length) : 0;
    if (with_validity) memset(&c->valid, 0, sizeof c->valid);
    memset(&c->views, 0, sizeof c->views);
    memset(&c->data, 0, sizeof c->data);
}


static void free_scan(Scan *s) {
    for (int i = 0; i < s->ncols; i++) {
        region_free(&s->cols[i].views);
        region_free(&s->cols[i].valid);
        region_free(&s->cols[i].data);
        region_free(&s->cols[i].codes);
        free(s->cols[i].slots);
        free(s->cols[i].hashes);
    }
    region_free(&s->ts.values);
    region_free(&s->ts.valid);
    free(s->scratch);
}

/* Column i of the scan (ncols = the timestamps) as a (schema, array) pair of capsules; the
 * builders' buffers move into the array. */
static PyObject *export_column(Scan *s, int i, int64_t rows) {
    const char *name = i < s->ncols ? s->keys[i] : "_ts_fast";
    struct ArrowSchema *sc = calloc(1, sizeof *sc);
    struct ArrowArray *arr = calloc(1, sizeof *arr);
    ColPrivate *cp = calloc(1, sizeof *cp);
    char *nm = malloc(strlen(name) + 1);
    if (!sc || !arr || !cp || !nm) {
        free(sc); free(arr); free(cp); free(nm);
        return PyErr_NoMemory();
    }
    strcpy(nm, name);
    sc->name = nm;
    sc->private_data = nm;
    sc->flags = ARROW_FLAG_NULLABLE;
    sc->release = release_schema;
    arr->length = rows;
    arr->private_data = cp;
    arr->release = release_array;
    arr->buffers = cp->buffers;
    if (i < s->ncols && s->cols[i].coded) {
        /* uint32 codes (validity: the rows'), and a dictionary of the distinct values */
        StrCol *c = &s->cols[i];
        struct ArrowSchema *dsc = calloc(1, sizeof *dsc);
        struct ArrowArray *darr = calloc(1, sizeof *darr);
        ColPrivate *dcp = calloc(1, sizeof *dcp);
        if (!dsc || !darr || !dcp) {
            free(dsc); free(darr); free(dcp);
            sc->release(sc); free(sc);
            free(arr); free(cp);
            return PyErr_NoMemory();
        }
        dsc->format = "vu";
        dsc->name = "";
        dsc->release = release_schema;
        sc->format = "I";
        sc->dictionary = dsc;
        export_views(c, darr, dcp, c->ndict, 0);
        cp->bufs[0] = c->valid;
        cp->bufs[1] = c->codes;
        cp->buffers[0] = c->valid.p;
        cp->buffers[1] = c->codes.p;
        arr->n_buffers = 2;
        arr->null_count = count_nulls(c->valid.p, rows);
        arr->dictionary = darr;
        arr->release = release_coded;
        memset(&c->valid, 0, sizeof c->valid);
        memset(&c->codes, 0, sizeof c->codes);
    } else if (i < s->ncols) {
        sc->format = "vu";
        export_views(&s->cols[i], arr, cp, rows, 1);
    } else {
        sc->format = "tsn:UTC";
        cp->bufs[0] = s->ts.valid;
        cp->bufs[1] = s->ts.values;
        cp->buffers[0] = s->ts.valid.p;
        cp->buffers[1] = s->ts.values.p;
        arr->n_buffers = 2;
        arr->null_count = count_nulls(s->ts.valid.p, rows);
        memset(&s->ts.valid, 0, sizeof s->ts.valid);
        memset(&s->ts.values, 0, sizeof s->ts.values);
    }
    return arrow_capsules(sc, arr);
}

/* (rows, [(schema, array) capsules per column, then the timestamps], odd): `odd` has the bit
 * of each coded column one of whose values opens with a bracket or a brace or is empty (the
 * reader looks at those columns' rows; the others it need not). */
static PyObject *export(Scan *s, int64_t rows) {
    unsigned long long odd = 0;
    for (int i = 0; i < s->ncols; i++)
        if (s->cols[i].coded && s->cols[i].odd) odd |= 1ULL << i;
    PyObject *cols = PyList_New(s->ncols + 1);
    if (!cols) return NULL;
    for (int i = 0; i <= s->ncols; i++) {
        PyObject *pair = export_column(s, i, rows);
        if (!pair) { Py_DECREF(cols); return NULL; }
        PyList_SET_ITEM(cols, i, pair);
    }
    return Py_BuildValue("(LNK)", (long long)rows, cols, odd);
}

static PyObject *scan(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer buf;
    PyObject *keys;
    Py_ssize_t ts_index;
    unsigned long long coded = 0;
    if (!PyArg_ParseTuple(args, "y*O!n|K", &buf, &PyTuple_Type, &keys, &ts_index, &coded))
        return NULL;
    Scan s;
    memset(&s, 0, sizeof s);
    memset(s.guess, -1, sizeof s.guess);
    s.ncols = (int)PyTuple_GET_SIZE(keys);
    s.ts_col = (int)ts_index;
    if (s.ncols > MAX_KEYS || s.ncols < 1 || ts_index < -1 || ts_index >= s.ncols) {
        PyBuffer_Release(&buf);
        PyErr_SetString(PyExc_ValueError, "scan: 1 to 64 keys, ts_key an index of one or -1");
        return NULL;
    }
    for (int i = 0; i < s.ncols; i++) {
        Py_ssize_t n;
        const char *k = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(keys, i), &n);
        if (!k) { PyBuffer_Release(&buf); return NULL; }
        s.keys[i] = k; /* owned by the tuple, which outlives the call */
        s.key_len[i] = (size_t)n;
    }
    const uint8_t *data = buf.buf;
    size_t size = (size_t)buf.len;
    int ok = 1;
    int64_t rows = 0;
    Py_BEGIN_ALLOW_THREADS
    /* Rows = lines, counted first so that every column is allocated once. */
    int64_t lines = 0;
    const uint8_t *p = data, *end = data + size;
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p)))) { lines++; p++; }
    if (size && data[size - 1] != '\n') lines++;
    size_t nbytes = (size_t)(lines + 8) / 8 + 8;
    for (int i = 0; i < s.ncols; i++)
        s.cols[i].first_cap = size < (1 << 16) ? size + 64 : 1 << 16;
    for (int i = 0; i < s.ncols && ok; i++) {
        StrCol *c = &s.cols[i];
        c->coded = (int)((coded >> i) & 1) && i != s.ts_col;
        ok = region_new(&c->valid, nbytes) &&
             (c->coded ? region_new(&c->codes, ((size_t)lines + 1) * 4) && coded_init(c)
                       : region_new(&c->views, ((size_t)lines + 1) * 16));
    }
    ok = ok && region_new(&s.ts.values, ((size_t)lines + 1) * 8) && region_new(&s.ts.valid, nbytes);
    p = data;
    while (ok && p < end) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        const uint8_t *le = nl ? nl : end;
        s.p = p;
        s.end = le;
        s.row = rows;
        if (le == p || rows >= lines || !line(&s)) { ok = 0; break; }
        rows++;
        p = nl ? nl + 1 : end;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    PyObject *result;
    if (!ok) {
        result = Py_NewRef(Py_None);
    } else {
        result = export(&s, rows);
    }
    free_scan(&s);
    return result;
}

/* Lines of a buffer, the last one counted without its newline: memchr runs at memory speed
 * where bytes.count(b"\n") is a byte loop (1 s of a 5M-event read). */
static PyObject *count_lines(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer buf;
    if (!PyArg_ParseTuple(args, "y*", &buf)) return NULL;
    const uint8_t *p = buf.buf, *end = p + buf.len;
    long long n = 0;
    Py_BEGIN_ALLOW_THREADS
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p)))) { n++; p++; }
    if (buf.len && ((const uint8_t *)buf.buf)[buf.len - 1] != '\n') n++;
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    return PyLong_FromLongLong(n);
}

static PyMethodDef methods[] = {
    {"count_lines", count_lines, METH_VARARGS, "count_lines(buffer) -> lines, the last one unterminated"},
    {"scan", scan, METH_VARARGS,
     "scan(buffer, keys, ts_key, coded=0) -> (rows, [(schema, array) capsules per column], odd) "
     "| None; the keys whose bit is set in `coded` come as dictionary columns"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_jsonscan",
    .m_doc = "JSON lines -> Arrow columns (see _jsonscan.c)",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__jsonscan(void) { return PyModule_Create(&module); }
