/* lnc CPU runtime: integer kernels (see lnc_qkernels.h). Portable C99 with AVX2 (and
 * VNNI) and NEON (and sdot) variants.
 *
 * Exactness: every sum is the exact integer sum, wrapping modulo 2^32 (unsigned in C), as
 * the reference does. GEMM products are u8 x s8 4-byte dot products: `vpdpbusd` and `sdot`
 * are exact; `vpmaddubsw` saturates its int16 pair sums, so lnc packs the weights split
 * into parts for which no pair can saturate (lnc_qkernels.h) - a compile-time proof on the
 * constant weights, not an assumption about activations. Depthwise products are int16 x
 * int16 -> int32 (`_mm256_madd_epi16`).
 * Requantization: (float)acc * mult, clamped to [qmin - zp, qmax - zp] (integers, so
 * clamping before rounding equals saturating after it, and no conversion overflows),
 * rounded half to even (`nearbyintf` / `cvtps2dq` in the default rounding mode), + zp. */
#define _POSIX_C_SOURCE 200809L
#include "lnc_qkernels.h"

#include <math.h>
#include <string.h>

#if defined(__AVX2__)
#include <immintrin.h>
#define LNC_QAVX2 1
#endif
/* NEON (little-endian AArch64): int16 x int16 -> int32 widening multiply-accumulate. */
#if !defined(LNC_QAVX2) && defined(__ARM_NEON) && defined(__aarch64__) && \
    defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#include <arm_neon.h>
#define LNC_QNEON 1
#endif

#define LNC_QMIN(a, b) ((a) < (b) ? (a) : (b))

/* Split `total` items into `parts` contiguous chunks aligned to `align`; chunk i. */
static void lnc_qchunk(long total, int parts, int i, long align, long *lo, long *hi) {
    long units = (total + align - 1) / align;
    long per = units / parts, extra = units % parts;
    long u0 = i * per + (i < extra ? i : extra);
    long u1 = u0 + per + (i < extra ? 1 : 0);
    *lo = LNC_QMIN(u0 * align, total);
    *hi = LNC_QMIN(u1 * align, total);
}

/* Sign-extend the low 16 bits. */
static inline int32_t lnc_s16(uint32_t v) {
    v &= 0xffffu;
    return (int32_t)v - (int32_t)((v & 0x8000u) << 1);
}

static inline int lnc_qload(const uint8_t *p, int sgn) {
    return sgn ? (int)*(const int8_t *)p : (int)*p;
}

/* Requantize one accumulator: lo/hi = qmin - zp, qmax - zp. */
static inline uint8_t lnc_rq1(uint32_t acc, float mult, float lo, float hi, int zp) {
    float v = (float)(int32_t)acc * mult;
    v = v < lo ? lo : (v > hi ? hi : v);
    return (uint8_t)((int)nearbyintf(v) + zp);
}

/* The output range relative to the zero point: qmin - zp and qmax - zp. */
static inline float lnc_qlo(int sgn, int zp) { return (float)((sgn ? -128 : 0) - zp); }
static inline float lnc_qhi(int sgn, int zp) { return (float)((sgn ? 127 : 255) - zp); }

static void lnc_qbounds(const lnc_qparams *q, float *lo, float *hi) {
    *lo = lnc_qlo(q->y_signed, q->y_zp);
    *hi = lnc_qhi(q->y_signed, q->y_zp);
}

#if defined(LNC_QAVX2)
/* 8 accumulators -> 8 int16 (already saturated to the output range). */
static inline __m128i lnc_rq8(__m256i acc, const float *mult, __m256 lo, __m256 hi,
                              __m256i zp) {
    __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_loadu_ps(mult));
    __m256i i;
    f = _mm256_min_ps(_mm256_max_ps(f, lo), hi);
    i = _mm256_add_epi32(_mm256_cvtps_epi32(f), zp);
    return _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
}

/* Requantize 16 accumulators (channels 0-7, 8-15) and store n <= 16 bytes. Only the high
 * side is clamped in float (hi = qmax - zp): below -2^31 cvtps2dq gives INT_MIN, and the
 * saturating packs and the saturating + zp in int16 take every low value to qmin. */
static inline void lnc_qstore16(__m256i a0, __m256i a1, const float *mult, __m256 hi,
                                __m256i zp16, int sgn, uint8_t *y, long n) {
    const __m256i i0 = _mm256_cvtps_epi32(
        _mm256_min_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(a0), _mm256_loadu_ps(mult)), hi));
    const __m256i i1 = _mm256_cvtps_epi32(
        _mm256_min_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(a1), _mm256_loadu_ps(mult + 8)), hi));
    /* packs interleaves 128-bit lanes: [0-3, 8-11, 4-7, 12-15] -> natural order. */
    const __m256i p = _mm256_adds_epi16(
        _mm256_permute4x64_epi64(_mm256_packs_epi32(i0, i1), 0xD8), zp16);
    const __m128i l = _mm256_castsi256_si128(p), h = _mm256_extracti128_si256(p, 1);
    const __m128i b = sgn ? _mm_packs_epi16(l, h) : _mm_packus_epi16(l, h);
    if (n >= 16) {
        _mm_storeu_si128((__m128i *)y, b);
    } else {
        uint8_t t[16];
        _mm_storeu_si128((__m128i *)t, b);
        memcpy(y, t, (size_t)n);
    }
}

/* Two full rows of 16 accumulators (row 0: a0, a1; row 1: b0, b1) requantized into y0 and
 * y1. `clamp` 0: every |mult| <= 1/2, so |acc * mult| <= 2^30 converts without overflow and
 * the saturating packs alone clamp (the float min is skipped). One byte pack serves both
 * rows: its dwords are [r0 0-3, r0 8-11, r1 0-3, r1 8-11 | r0 4-7, r0 12-15, ...], put in
 * order by one vpermd. */
static inline void lnc_qstore16x2(__m256i a0, __m256i a1, __m256i b0, __m256i b1,
                                  const float *mult, __m256 hi, __m256i zp16, __m256i order,
                                  int sgn, int clamp, uint8_t *y0, uint8_t *y1) {
    const __m256 m0 = _mm256_loadu_ps(mult), m1 = _mm256_loadu_ps(mult + 8);
    __m256 fa0 = _mm256_mul_ps(_mm256_cvtepi32_ps(a0), m0);
    __m256 fa1 = _mm256_mul_ps(_mm256_cvtepi32_ps(a1), m1);
    __m256 fb0 = _mm256_mul_ps(_mm256_cvtepi32_ps(b0), m0);
    __m256 fb1 = _mm256_mul_ps(_mm256_cvtepi32_ps(b1), m1);
    __m256i p, q, u;
    if (clamp) {
        fa0 = _mm256_min_ps(fa0, hi);
        fa1 = _mm256_min_ps(fa1, hi);
        fb0 = _mm256_min_ps(fb0, hi);
        fb1 = _mm256_min_ps(fb1, hi);
    }
    p = _mm256_adds_epi16(_mm256_packs_epi32(_mm256_cvtps_epi32(fa0), _mm256_cvtps_epi32(fa1)), zp16);
    q = _mm256_adds_epi16(_mm256_packs_epi32(_mm256_cvtps_epi32(fb0), _mm256_cvtps_epi32(fb1)), zp16);
    u = _mm256_permutevar8x32_epi32(sgn ? _mm256_packs_epi16(p, q) : _mm256_packus_epi16(p, q),
                                    order);
    _mm_storeu_si128((__m128i *)y0, _mm256_castsi256_si128(u));
    _mm_storeu_si128((__m128i *)y1, _mm256_extracti128_si256(u, 1));
}

static inline void lnc_qstore8(__m256i a0, const float *mult, __m256 lo, __m256 hi,
                               __m256i zp, int sgn, uint8_t *y) {
    __m128i h0 = lnc_rq8(a0, mult, lo, hi, zp);
    __m128i b = sgn ? _mm_packs_epi16(h0, h0) : _mm_packus_epi16(h0, h0);
    _mm_storel_epi64((__m128i *)y, b);
}
#endif

/* ----- GEMM (pointwise and gathered convolutions) --------------------------------------- */

/* acc + per int32 lane: 4 unsigned activation bytes times 4 signed weight bytes.
 * AVX2 (`vpmaddubsw` + `vpmaddwd` by ones): exact because lnc split the weights so that
 * no int16 pair sum can saturate (lnc_qkernels.h). VNNI (`vpdpbusd`) is exact anyway.
 * LNC_QVNNI_EMULATE (tests on hosts without VNNI): the VNNI code path with an exact AVX2
 * emulation of `vpdpbusd`. */
#if defined(LNC_QAVX2)
#if defined(LNC_QVNNI_EMULATE)
static inline __m256i lnc_qdot(__m256i acc, __m256i a, __m256i w, __m256i ones) {
    const __m256i lo = _mm256_set1_epi16(0xff);
    const __m256i ae = _mm256_and_si256(a, lo), ao = _mm256_srli_epi16(a, 8);
    const __m256i we = _mm256_srai_epi16(_mm256_slli_epi16(w, 8), 8);
    const __m256i wo = _mm256_srai_epi16(w, 8);
    (void)ones;
    return _mm256_add_epi32(acc, _mm256_add_epi32(_mm256_madd_epi16(ae, we),
                                                  _mm256_madd_epi16(ao, wo)));
}
#elif defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define lnc_qdot(acc, a, w, ones) _mm256_dpbusd_epi32(acc, a, w)
#elif defined(__AVXVNNI__)
#define lnc_qdot(acc, a, w, ones) _mm256_dpbusd_avx_epi32(acc, a, w)
#else
/* acc + the int16 pair sums t widened (vpmaddwd by ones). */
#define lnc_qwiden(acc, t, ones) _mm256_add_epi32(acc, _mm256_madd_epi16(t, ones))
#define lnc_qdot(acc, a, w, ones) lnc_qwiden(acc, _mm256_maddubs_epi16(a, w), ones)
/* Two groups whose int16 lane sums lnc proved cannot overflow: one vpmaddwd for both. */
#define lnc_qdot2(acc, a, wa, b, wb, ones) \
    lnc_qwiden(acc, _mm256_add_epi16(_mm256_maddubs_epi16(a, wa), _mm256_maddubs_epi16(b, wb)), ones)
#endif
#if !defined(lnc_qdot2)
#define lnc_qdot2(acc, a, wa, b, wb, ones) lnc_qdot(lnc_qdot(acc, a, wa, ones), b, wb, ones)
#endif
#endif

/* The chunks of a packed panel `w`, each as STEP(byte offset in a row, 16 weight words):
 * pair chunks [oa, ob, 16 words, 16 words] then single chunks [o, 16 words]. */
#define LNC_QCHUNKS(STEP)                                                             \
    for (e = 0; e < NP; e++) {                                                        \
        STEP((long)pp[e * 34], pp + e * 34 + 2)                                       \
        STEP((long)pp[e * 34 + 1], pp + e * 34 + 18)                                  \
    }                                                                                 \
    for (e = 0; e < NS; e++) STEP((long)sp[e * 17], sp + e * 17 + 1)

typedef struct {
    const lnc_conv *g;
    const long *xs;
    const uint8_t *x;
    const uint32_t *w;
    const lnc_qparams *q;
    uint8_t *y, *tmp;
    long npix, K, G, panels, cpg, mpg;
    int parts, by_pixels, pw, direct, clamp;
    long is[4]; /* direct: the image the rows are read from (element strides n, c, h, w) */
} lnc_qg_job;

static inline uint32_t lnc_qld4(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Copy n bytes: fixed-size 8-byte moves (the last one overlapping) for the short runs of a
 * receptive field, memcpy for long ones. */
static inline void lnc_qcopy(uint8_t *d, const uint8_t *s, long n) {
    long c;
    if (n < 8) {
        for (c = 0; c < n; c++) d[c] = s[c];
    } else if (n <= 64) {
        uint64_t v;
        for (c = 0; c + 8 < n; c += 8) {
            memcpy(&v, s + c, 8);
            memcpy(d + c, &v, 8);
        }
        memcpy(&v, s + n - 8, 8);
        memcpy(d + n - 8, &v, 8);
    } else {
        memcpy(d, s, (size_t)n);
    }
}

/* Gather the receptive field of output pixel (n, oh, ow), group grp, into ar: 4*G bytes
 * u = x ^ flip (flip = 0x80 for i8: u = x + 128), padding taps x_zp ^ flip, zeros past K. */
static void lnc_qgather(const lnc_qg_job *j, long n, long oh, long ow, long grp, uint8_t *ar) {
    const lnc_conv *g = j->g;
    const long *xs = j->xs;
    const uint8_t pad = (uint8_t)j->q->x_zp;
    const long cpg = j->cpg, K = j->K;
    uint8_t *const a0 = ar;
    long c;
    int ky, kx;
    if (j->pw) {
        lnc_qcopy(ar, j->x + n * xs[0] + oh * xs[2] + ow * xs[3], cpg);
    } else {
        /* The kx taps of a row are one contiguous run when x is pixel-major with
         * ld == cpg, columns are not dilated and the run is inside the row. */
        const long iw0 = ow * g->sw - g->pl, seg = g->kw * cpg;
        if (xs[1] == 1 && xs[3] == cpg && g->group == 1 && g->dw == 1 && iw0 >= 0 &&
            iw0 + g->kw <= g->w) {
            for (ky = 0; ky < g->kh; ky++, ar += seg) {
                const long ih = oh * g->sh - g->pt + ky * g->dh;
                if (ih < 0 || ih >= g->h)
                    memset(ar, pad, (size_t)seg);
                else
                    lnc_qcopy(ar, j->x + n * xs[0] + ih * xs[2] + iw0 * xs[3], seg);
            }
        } else {
            for (ky = 0; ky < g->kh; ky++) {
                const long ih = oh * g->sh - g->pt + ky * g->dh;
                for (kx = 0; kx < g->kw; kx++, ar += cpg) {
                    const long iw = ow * g->sw - g->pl + kx * g->dw;
                    const uint8_t *xp;
                    if (ih < 0 || ih >= g->h || iw < 0 || iw >= g->w) {
                        memset(ar, pad, (size_t)cpg);
                        continue;
                    }
                    xp = j->x + n * xs[0] + grp * cpg * xs[1] + ih * xs[2] + iw * xs[3];
                    if (xs[1] == 1) {
                        lnc_qcopy(ar, xp, cpg);
                    } else {
                        for (c = 0; c < cpg; c++) ar[c] = xp[c * xs[1]];
                    }
                }
            }
        }
    }
    if (j->q->x_signed)
        for (c = 0; c < K; c++) a0[c] ^= 0x80;
    for (c = K; c < 4 * j->G; c++) a0[c] = 0;
}

/* What a panel's register tiles share, read once per panel (not per tile: a tile's byte
 * stores may alias anything, so the compiler would reload these after every tile). */
typedef struct {
    const uint32_t *pp, *sp;
    long NP, NS;
    float lo, hi;
    int y_zp, y_signed, clamp;
} lnc_qpanel;

static inline lnc_qpanel lnc_qpanel_of(const uint32_t *w, const lnc_qparams *q, int clamp) {
    lnc_qpanel t;
    t.NP = (long)w[0];
    t.pp = w + 1;
    t.sp = w + 2 + t.NP * 34;
    t.NS = (long)w[1 + t.NP * 34];
    lnc_qbounds(q, &t.lo, &t.hi);
    t.y_zp = q->y_zp;
    t.y_signed = q->y_signed;
    t.clamp = clamp;
    return t;
}

#if defined(LNC_QAVX2)
/* The 6 x 16 register tile's products: rows p0..p5 times the pair chunks (pp, NP) and
 * single chunks (sp, NS) of a panel into c00..c51 (row r: cr0 channels 0-7, cr1 8-15). */
#define LNC_QW(P) _mm256_loadu_si256((const __m256i *)(P))
#define LNC_QX(P, O) _mm256_set1_epi32((int)lnc_qld4((P) + (O)))
#define LNC_QROW2(P, C0, C1)                                                  \
    xa = LNC_QX(P, oa);                                                       \
    xb = LNC_QX(P, ob);                                                       \
    C0 = lnc_qdot2(C0, xa, LNC_QW(c + 2), xb, LNC_QW(c + 18), ones);          \
    C1 = lnc_qdot2(C1, xa, LNC_QW(c + 10), xb, LNC_QW(c + 26), ones);
#define LNC_QROW1(P, C0, C1)                                       \
    x = LNC_QX(P, oa);                                             \
    C0 = lnc_qdot(C0, x, w0, ones);                                \
    C1 = lnc_qdot(C1, x, w1, ones);
#define LNC_QMAC6X16                                                          \
    for (e = 0; e < NP; e++) {                                                \
        const uint32_t *c = pp + e * 34;                                      \
        const long oa = (long)c[0], ob = (long)c[1];                          \
        __m256i xa, xb;                                                       \
        LNC_QROW2(p0, c00, c01)                                               \
        LNC_QROW2(p1, c10, c11)                                               \
        LNC_QROW2(p2, c20, c21)                                               \
        LNC_QROW2(p3, c30, c31)                                               \
        LNC_QROW2(p4, c40, c41)                                               \
        LNC_QROW2(p5, c50, c51)                                               \
    }                                                                         \
    for (e = 0; e < NS; e++) {                                                \
        const uint32_t *c = sp + e * 17;                                      \
        const long oa = (long)c[0];                                           \
        const __m256i w0 = LNC_QW(c + 1), w1 = LNC_QW(c + 9);                 \
        __m256i x;                                                            \
        LNC_QROW1(p0, c00, c01)                                               \
        LNC_QROW1(p1, c10, c11)                                               \
        LNC_QROW1(p2, c20, c21)                                               \
        LNC_QROW1(p3, c30, c31)                                               \
        LNC_QROW1(p4, c40, c41)                                               \
        LNC_QROW1(p5, c50, c51)                                               \
    }

#if defined(__GNUC__)
#define LNC_QINLINE static inline __attribute__((always_inline))
#define LNC_QNOINLINE static __attribute__((noinline))
#else
#define LNC_QINLINE static inline
#define LNC_QNOINLINE static
#endif

/* Full tiles (6 rows x 16 channels) one after another: rows rp[0 .. 6 * ntiles) times
 * panel pn, + bias, requantized into y. The panel's constants are set up once, not per
 * tile (on MobileNetV2's pointwise layers with K <= 32 that per-tile work was ~10 % of
 * their time). `pairs` 0: the panel has single chunks only (lnc_qmk_full). */
LNC_QINLINE void lnc_qmk_full_t(const uint8_t *const *rp, long ntiles, const lnc_qpanel pn,
                                const int32_t *bias, const float *mult, uint8_t *y, long ldy,
                                const int pairs) {
    const long NP = pairs ? pn.NP : 0, NS = pn.NS;
    const uint32_t *pp = pn.pp, *sp = pn.sp;
    const int sgn = pn.y_signed, clamp = pn.clamp;
    const __m256i ones = _mm256_set1_epi16(1); /* unused with VNNI */
    const __m256 vhi = _mm256_set1_ps(pn.hi);
    const __m256i vz16 = _mm256_set1_epi16((short)pn.y_zp);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const __m256i b0 = _mm256_loadu_si256((const __m256i *)bias);
    const __m256i b1 = _mm256_loadu_si256((const __m256i *)(bias + 8));
    long t, e;
    (void)ones;
    for (t = 0; t < ntiles; t++, rp += LNC_QMR, y += LNC_QMR * ldy) {
        const uint8_t *p0 = rp[0], *p1 = rp[1], *p2 = rp[2], *p3 = rp[3], *p4 = rp[4], *p5 = rp[5];
        __m256i c00 = b0, c01 = b1, c10 = b0, c11 = b1, c20 = b0, c21 = b1;
        __m256i c30 = b0, c31 = b1, c40 = b0, c41 = b1, c50 = b0, c51 = b1;
        LNC_QMAC6X16
        lnc_qstore16x2(c00, c01, c10, c11, mult, vhi, vz16, order, sgn, clamp, y, y + ldy);
        lnc_qstore16x2(c20, c21, c30, c31, mult, vhi, vz16, order, sgn, clamp, y + 2 * ldy,
                       y + 3 * ldy);
        lnc_qstore16x2(c40, c41, c50, c51, mult, vhi, vz16, order, sgn, clamp, y + 4 * ldy,
                       y + 5 * ldy);
    }
}

LNC_QNOINLINE void lnc_qmk_full_pairs(const uint8_t *const *rp, long ntiles,
                                      const lnc_qpanel pn, const int32_t *bias,
                                      const float *mult, uint8_t *y, long ldy) {
    lnc_qmk_full_t(rp, ntiles, pn, bias, mult, y, ldy, 1);
}

LNC_QNOINLINE void lnc_qmk_full_singles(const uint8_t *const *rp, long ntiles,
                                        const lnc_qpanel pn, const int32_t *bias,
                                        const float *mult, uint8_t *y, long ldy) {
    lnc_qmk_full_t(rp, ntiles, pn, bias, mult, y, ldy, 0);
}

/* Panels without pair chunks (most of those of a layer with K <= 32) get a copy of the tile
 * loop without the pair loop: its registers are then allocated for the single loop alone
 * (measured 6-7 % faster on such panels, the same on the others). */
static void lnc_qmk_full(const uint8_t *const *rp, long ntiles, const lnc_qpanel pn,
                         const int32_t *bias, const float *mult, uint8_t *y, long ldy) {
    if (pn.NP > 0)
        lnc_qmk_full_pairs(rp, ntiles, pn, bias, mult, y, ldy);
    else
        lnc_qmk_full_singles(rp, ntiles, pn, bias, mult, y, ldy);
}
#endif

/* Rows a[0..QMR) (4*G bytes each; rows >= nr repeat the last valid one) times the packed
 * panel pn (pair chunks, then single chunks: lnc_qkernels.h), + bias, requantized into nr
 * rows of y (nch channels). */
static inline void lnc_qmk(const uint8_t *const *a, const lnc_qpanel pn, const int32_t *bias,
                           const int32_t *csum, const float *mult, uint8_t *y, long ldy,
                           long nr, long nch) {
    const long NP = pn.NP, NS = pn.NS;
    const uint32_t *pp = pn.pp, *sp = pn.sp;
    const float lo = pn.lo, hi = pn.hi;
    const int clamp = pn.clamp;
    long e;
    (void)csum;
    (void)clamp;
#if defined(LNC_QAVX2)
    {
        const __m256i ones = _mm256_set1_epi16(1); /* unused with VNNI */
        const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
        const __m256i vz = _mm256_set1_epi32(pn.y_zp);
        const __m256i vz16 = _mm256_set1_epi16((short)pn.y_zp);
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)bias);
        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(bias + 8));
        (void)ones;
        if (nr == 1) {
            /* One row (a classifier on one pixel): bound by the weight stream. */
            const uint8_t *p0 = a[0];
            __m256i c0 = b0, c1 = b1, d0 = _mm256_setzero_si256(), d1 = _mm256_setzero_si256();
            for (e = 0; e < NP; e++) {
                const uint32_t *c = pp + e * 34;
                const __m256i xa = LNC_QX(p0, (long)c[0]), xb = LNC_QX(p0, (long)c[1]);
                /* The weights are used once: fetch ~2 KiB ahead (a classifier's weights come
                 * from L3 or memory; measured 100 -> 85 us on MobileNetV2's). */
                const uint32_t *pf = e + 16 < NP ? c + 16 * 34 : c;
                _mm_prefetch((const char *)pf, _MM_HINT_T0);
                _mm_prefetch((const char *)(pf + 16), _MM_HINT_T0);
                _mm_prefetch((const char *)(pf + 32), _MM_HINT_T0);
                c0 = lnc_qdot2(c0, xa, LNC_QW(c + 2), xb, LNC_QW(c + 18), ones);
                c1 = lnc_qdot2(c1, xa, LNC_QW(c + 10), xb, LNC_QW(c + 26), ones);
            }
            for (e = 0; e < NS; e++) {
                const uint32_t *c = sp + e * 17;
                const __m256i xa = LNC_QX(p0, (long)c[0]);
                d0 = lnc_qdot(d0, xa, LNC_QW(c + 1), ones);
                d1 = lnc_qdot(d1, xa, LNC_QW(c + 9), ones);
            }
            lnc_qstore16(_mm256_add_epi32(c0, d0), _mm256_add_epi32(c1, d1), mult, vhi, vz16,
                         pn.y_signed, y, nch);
        } else if (nch <= 8) {
            /* Half panel: 8 channels. */
            const uint8_t *p0 = a[0], *p1 = a[1], *p2 = a[2], *p3 = a[3], *p4 = a[4], *p5 = a[5];
            __m256i c0 = b0, c1 = b0, c2 = b0, c3 = b0, c4 = b0, c5 = b0;
            uint8_t t[16];
            for (e = 0; e < NP; e++) {
                const uint32_t *c = pp + e * 34;
                const long oa = (long)c[0], ob = (long)c[1];
                const __m256i wa = LNC_QW(c + 2), wb = LNC_QW(c + 18);
                c0 = lnc_qdot2(c0, LNC_QX(p0, oa), wa, LNC_QX(p0, ob), wb, ones);
                c1 = lnc_qdot2(c1, LNC_QX(p1, oa), wa, LNC_QX(p1, ob), wb, ones);
                c2 = lnc_qdot2(c2, LNC_QX(p2, oa), wa, LNC_QX(p2, ob), wb, ones);
                c3 = lnc_qdot2(c3, LNC_QX(p3, oa), wa, LNC_QX(p3, ob), wb, ones);
                c4 = lnc_qdot2(c4, LNC_QX(p4, oa), wa, LNC_QX(p4, ob), wb, ones);
                c5 = lnc_qdot2(c5, LNC_QX(p5, oa), wa, LNC_QX(p5, ob), wb, ones);
            }
            for (e = 0; e < NS; e++) {
                const uint32_t *c = sp + e * 17;
                const long oa = (long)c[0];
                const __m256i wa = LNC_QW(c + 1);
                c0 = lnc_qdot(c0, LNC_QX(p0, oa), wa, ones);
                c1 = lnc_qdot(c1, LNC_QX(p1, oa), wa, ones);
                c2 = lnc_qdot(c2, LNC_QX(p2, oa), wa, ones);
                c3 = lnc_qdot(c3, LNC_QX(p3, oa), wa, ones);
                c4 = lnc_qdot(c4, LNC_QX(p4, oa), wa, ones);
                c5 = lnc_qdot(c5, LNC_QX(p5, oa), wa, ones);
            }
#define LNC_QST8(C, R)                                                        \
    if (nr > R) {                                                             \
        lnc_qstore8(C, mult, vlo, vhi, vz, pn.y_signed, t);                   \
        memcpy(y + R * ldy, t, (size_t)nch);                                  \
    }
            LNC_QST8(c0, 0)
            LNC_QST8(c1, 1)
            LNC_QST8(c2, 2)
            LNC_QST8(c3, 3)
            LNC_QST8(c4, 4)
            LNC_QST8(c5, 5)
#undef LNC_QST8
        } else {
            const uint8_t *p0 = a[0], *p1 = a[1], *p2 = a[2], *p3 = a[3], *p4 = a[4], *p5 = a[5];
            __m256i c00 = b0, c01 = b1, c10 = b0, c11 = b1, c20 = b0, c21 = b1;
            __m256i c30 = b0, c31 = b1, c40 = b0, c41 = b1, c50 = b0, c51 = b1;
            LNC_QMAC6X16
            /* A tail tile (full ones go through lnc_qmk_full): row by row. */
            lnc_qstore16(c00, c01, mult, vhi, vz16, pn.y_signed, y, nch);
            if (nr > 1) lnc_qstore16(c10, c11, mult, vhi, vz16, pn.y_signed, y + ldy, nch);
            if (nr > 2) lnc_qstore16(c20, c21, mult, vhi, vz16, pn.y_signed, y + 2 * ldy, nch);
            if (nr > 3) lnc_qstore16(c30, c31, mult, vhi, vz16, pn.y_signed, y + 3 * ldy, nch);
            if (nr > 4) lnc_qstore16(c40, c41, mult, vhi, vz16, pn.y_signed, y + 4 * ldy, nch);
            if (nr > 5) lnc_qstore16(c50, c51, mult, vhi, vz16, pn.y_signed, y + 5 * ldy, nch);
        }
#undef LNC_QMAC6X16
#undef LNC_QROW1
#undef LNC_QROW2
#undef LNC_QW
#undef LNC_QX
    }
#elif defined(LNC_QNEON)
    {
        /* Signed activations s = u ^ 0x80 = u - 128: acc = bias + 128 * csum + sum s * w. */
        int32x4_t c[LNC_QMR][4];
        long r;
        int u;
        const float32x4_t vlo = vdupq_n_f32(lo), vhi = vdupq_n_f32(hi);
        const int32x4_t vz = vdupq_n_s32(pn.y_zp);
#if defined(__ARM_FEATURE_DOTPROD)
        for (r = 0; r < LNC_QMR; r++)
            for (u = 0; u < 4; u++) c[r][u] = vdupq_n_s32(0);
#define LNC_QSTEPN(OFF, WP)                                                                  \
    {                                                                                        \
        const int8_t *wb_ = (const int8_t *)(const void *)(WP);                              \
        const int8x16_t w0 = vld1q_s8(wb_), w1 = vld1q_s8(wb_ + 16);                         \
        const int8x16_t w2 = vld1q_s8(wb_ + 32), w3 = vld1q_s8(wb_ + 48);                    \
        for (r = 0; r < LNC_QMR; r++) {                                                      \
            const int8x16_t av =                                                             \
                vreinterpretq_s8_u32(vdupq_n_u32(lnc_qld4(a[r] + (OFF)) ^ 0x80808080u));     \
            c[r][0] = vdotq_s32(c[r][0], w0, av);                                            \
            c[r][1] = vdotq_s32(c[r][1], w1, av);                                            \
            c[r][2] = vdotq_s32(c[r][2], w2, av);                                            \
            c[r][3] = vdotq_s32(c[r][3], w3, av);                                            \
        }                                                                                    \
    }
        LNC_QCHUNKS(LNC_QSTEPN)
#undef LNC_QSTEPN
#else
        {
            /* Pairwise int32 partial sums: p[r][h] = (ch 2h: k01, k23, ch 2h+1: k01, k23). */
            int32x4_t p[LNC_QMR][8];
            int h;
            for (r = 0; r < LNC_QMR; r++)
                for (h = 0; h < 8; h++) p[r][h] = vdupq_n_s32(0);
#define LNC_QSTEPN(OFF, WP)                                                                  \
    {                                                                                        \
        const int8_t *wb_ = (const int8_t *)(const void *)(WP);                              \
        for (r = 0; r < nr; r++) {                                                           \
            const int8x8_t av =                                                              \
                vreinterpret_s8_u32(vdup_n_u32(lnc_qld4(a[r] + (OFF)) ^ 0x80808080u));       \
            for (h = 0; h < 8; h++)                                                          \
                p[r][h] = vpadalq_s16(p[r][h], vmull_s8(vld1_s8(wb_ + 8 * h), av));          \
        }                                                                                    \
    }
            LNC_QCHUNKS(LNC_QSTEPN)
#undef LNC_QSTEPN
            for (r = 0; r < LNC_QMR; r++)
                for (u = 0; u < 4; u++) c[r][u] = vpaddq_s32(p[r][2 * u], p[r][2 * u + 1]);
        }
#endif
        for (r = 0; r < nr; r++) {
            int16x4_t hh[4];
            uint8_t t[16];
            for (u = 0; u < 4; u++) {
                const int32x4_t b = vaddq_s32(vld1q_s32(bias + 4 * u),
                                              vshlq_n_s32(vld1q_s32(csum + 4 * u), 7));
                float32x4_t f = vmulq_f32(vcvtq_f32_s32(vaddq_s32(c[r][u], b)),
                                          vld1q_f32(mult + 4 * u));
                f = vminq_f32(vmaxq_f32(f, vlo), vhi);
                hh[u] = vqmovn_s32(vaddq_s32(vcvtnq_s32_f32(f), vz));
            }
            {
                const int16x8_t h0 = vcombine_s16(hh[0], hh[1]), h1 = vcombine_s16(hh[2], hh[3]);
                if (pn.y_signed) {
                    vst1q_s8((int8_t *)(void *)t, vcombine_s8(vqmovn_s16(h0), vqmovn_s16(h1)));
                } else {
                    vst1q_u8(t, vcombine_u8(vqmovun_s16(h0), vqmovun_s16(h1)));
                }
                memcpy(y + r * ldy, t, (size_t)nch);
            }
        }
    }
#else
    {
        uint32_t acc[LNC_QMR][LNC_QNR];
        long r, jj;
        int t;
        for (r = 0; r < LNC_QMR; r++)
            for (jj = 0; jj < LNC_QNR; jj++) acc[r][jj] = (uint32_t)bias[jj];
#define LNC_QSTEPC(OFF, WP)                                                          \
    for (jj = 0; jj < LNC_QNR; jj++) {                                               \
        const uint32_t wv = (WP)[jj];                                                \
        for (t = 0; t < 4; t++) {                                                    \
            const int32_t wt = (int32_t)((wv >> (8 * t)) & 0xffu) - (int32_t)((wv >> (8 * t)) & 0x80u) * 2; \
            for (r = 0; r < nr; r++) acc[r][jj] += (uint32_t)((int32_t)a[r][(OFF) + t] * wt); \
        }                                                                            \
    }
        LNC_QCHUNKS(LNC_QSTEPC)
#undef LNC_QSTEPC
        for (r = 0; r < nr; r++)
            for (jj = 0; jj < nch; jj++)
                y[r * ldy + jj] = lnc_rq1(acc[r][jj], mult[jj], lo, hi, pn.y_zp);
    }
#endif
}

static void lnc_qg_part(void *ctx, int part, int tid) {
    const lnc_qg_job *j = (const lnc_qg_job *)ctx;
    const lnc_conv *g = j->g;
    const long G = j->G;
    uint8_t *a = j->direct ? NULL : j->tmp + (long)tid * LNC_QROWS * 4 * G;
    /* Rows read in place need no buffer: longer blocks (fewer panel switches, each one a
     * new set of loop counts for the branch predictor). */
    const long blk = j->direct ? LNC_QDROWS : LNC_QROWS;
    /* The row pointers' terms in locals: stores to rp[] may alias j's fields otherwise. */
    const uint8_t *const x = j->x;
    const long plane = g->oh * g->ow, OW = g->ow, OH = g->oh;
    const long is0 = j->is[0], ish = g->sh * j->is[2], isw = g->sw * j->is[3];
    const int direct = j->direct;
    long p0 = 0, p1 = j->npix, q0 = 0, q1 = j->panels, pb, grp, qi, r;
    if (j->by_pixels)
        lnc_qchunk(j->npix, j->parts, part, LNC_QMR, &p0, &p1);
    else
        lnc_qchunk(j->panels, j->parts, part, 1, &q0, &q1);
    for (pb = p0; pb < p1; pb += blk) {
        const long rows = LNC_QMIN(blk, p1 - pb);
        for (grp = 0; grp < g->group; grp++) {
            const uint8_t *rp[LNC_QDROWS];
            {
                long n = pb / plane, oh = (pb % plane) / OW, ow = pb % OW;
                if (direct) {
                    /* Runs of one output row: a plain strided loop (the per-pixel row and image
                     * carries cost ~5 cycles per pixel, ~7 % of a K = 16 layer). */
                    for (r = 0; r < rows;) {
                        const uint8_t *const b = x + n * is0 + oh * ish + ow * isw;
                        const long run = LNC_QMIN(OW - ow, rows - r);
                        long k;
                        for (k = 0; k < run; k++) rp[r + k] = b + k * isw;
                        r += run;
                        ow += run;
                        if (ow == OW) {
                            ow = 0;
                            if (++oh == OH) { oh = 0; n++; }
                        }
                    }
                } else {
                    for (r = 0; r < rows; r++) {
                        lnc_qgather(j, n, oh, ow, grp, a + r * 4 * G);
                        rp[r] = a + r * 4 * G;
                        if (++ow == OW) {
                            ow = 0;
                            if (++oh == OH) { oh = 0; n++; }
                        }
                    }
                }
            }
            for (qi = q0; qi < q1; qi++) {
                const long pan = grp * j->panels + qi;
                const lnc_qpanel pn = lnc_qpanel_of(j->w + j->w[pan], j->q, j->clamp);
                const int32_t *bias = j->q->bias + pan * LNC_QNR, *csum = j->q->csum + pan * LNC_QNR;
                const float *mult = j->q->mult + pan * LNC_QNR;
                const long ch0 = grp * j->mpg + qi * LNC_QNR;
                const long nch = LNC_QMIN(LNC_QNR, j->mpg - qi * LNC_QNR);
                uint8_t *const y0 = j->y + pb * g->ldy + ch0;
                long rb = 0;
#if defined(LNC_QAVX2)
                if (nch == LNC_QNR) {
                    rb = rows / LNC_QMR * LNC_QMR;
                    lnc_qmk_full(rp, rows / LNC_QMR, pn, bias, mult, y0, g->ldy);
                }
#endif
                for (; rb < rows; rb += LNC_QMR) {
                    const long nr = LNC_QMIN(LNC_QMR, rows - rb);
                    const uint8_t *ap[LNC_QMR];
                    int i;
                    for (i = 0; i < LNC_QMR; i++) ap[i] = rp[rb + LNC_QMIN(i, nr - 1)];
                    lnc_qmk(ap, pn, bias, csum, mult, y0 + rb * g->ldy, g->ldy, nr, nch);
                }
            }
        }
    }
}

static void lnc_qgemm_run(lnc_qg_job *j) {
    const lnc_conv *g = j->g;
    int t = lnc_pool_threads();
    j->npix = g->n * g->oh * g->ow;
    j->cpg = g->c / g->group;
    j->mpg = g->m / g->group;
    j->K = g->kh * g->kw * j->cpg;
    j->G = (j->K + 3) / 4;
    j->panels = (j->mpg + LNC_QNR - 1) / LNC_QNR;
    {
        /* The float clamp is needed only if some |mult| > 1/2 (lnc_qstore16x2). */
        long i;
        j->clamp = 0;
        for (i = 0; i < g->group * j->panels * LNC_QNR; i++)
            if (!(fabsf(j->q->mult[i]) <= 0.5f)) j->clamp = 1;
    }
    /* Few pixels: split the weight panels (each thread streams a part of the weights). */
    j->by_pixels = j->npix >= (long)LNC_QROWS * t || j->panels * g->group < 2 * t || g->group > 1;
    j->parts = 1;
    if (t > 1) {
        if (j->by_pixels)
            j->parts = (int)LNC_QMIN(2 * t, (j->npix + LNC_QMR - 1) / LNC_QMR);
        else
            j->parts = (int)LNC_QMIN(2 * t, j->panels);
    }
    if (j->npix * g->m * j->K < 32768) j->parts = 1;
    lnc_parallel_for(j->parts, lnc_qg_part, j);
}

void lnc_qconv_gemm(const lnc_conv *g, const long *xs, const uint8_t *x, const uint32_t *w,
                    const lnc_qparams *q, uint8_t *y, uint8_t *tmp) {
    lnc_qg_job j;
    int i;
    j.g = g; j.xs = xs; j.x = x; j.w = w; j.q = q; j.y = y; j.tmp = tmp;
    j.pw = g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 && g->pl == 0 &&
           g->group == 1 && xs[1] == 1;
    j.direct = LNC_QGEMM_DIRECT(j.pw, q->x_signed, g->kh * g->kw * g->c);
    for (i = 0; i < 4; i++) j.is[i] = xs[i];
    lnc_qgemm_run(&j);
}

void lnc_qconv_gemm_win(const lnc_conv *g, const long *xs, const uint8_t *x, const uint32_t *w,
                        const lnc_qparams *q, uint8_t *y, uint8_t *img) {
    lnc_qg_job j;
    int i;
    j.g = g; j.xs = xs; j.x = x; j.w = w; j.q = q; j.y = y; j.tmp = NULL;
    j.pw = 0;
    j.direct = 1;
    if (img == NULL) {
        for (i = 0; i < 4; i++) j.is[i] = xs[i];
    } else {
        /* The padded image, pixel-major: x_zp outside x, u = x ^ 0x80 for i8. */
        const long C = g->c, pw = g->w + g->pl + g->pr, ph = g->h + g->pt + g->pb;
        const uint8_t flip = q->x_signed ? 0x80 : 0, pad = (uint8_t)q->x_zp ^ flip;
        long n, r, col, c;
        j.is[3] = C; j.is[2] = pw * C; j.is[1] = 1; j.is[0] = ph * pw * C;
        for (n = 0; n < g->n; n++) {
            for (r = 0; r < ph; r++) {
                uint8_t *d = img + n * j.is[0] + r * j.is[2];
                const long ih = r - g->pt;
                if (ih < 0 || ih >= g->h) {
                    memset(d, pad, (size_t)(pw * C));
                    continue;
                }
                memset(d, pad, (size_t)(g->pl * C));
                memset(d + (g->pl + g->w) * C, pad, (size_t)(g->pr * C));
                d += g->pl * C;
                if (xs[1] == 1 && xs[3] == C) {
                    memcpy(d, x + n * xs[0] + ih * xs[2], (size_t)(g->w * C));
                    if (flip)
                        for (c = 0; c < g->w * C; c++) d[c] ^= flip;
                } else {
                    for (col = 0; col < g->w; col++)
                        for (c = 0; c < C; c++)
                            d[col * C + c] =
                                x[n * xs[0] + c * xs[1] + ih * xs[2] + col * xs[3]] ^ flip;
                }
            }
        }
        /* A field's last group may read up to 3 bytes past the image (weights 0 there). */
        memset(img + g->n * j.is[0], 0, 4);
        j.x = img;
    }
    lnc_qgemm_run(&j);
}

/* ----- depthwise ------------------------------------------------------------------------ */

typedef struct {
    const lnc_conv *g;
    const uint8_t *x;
    const uint32_t *w;
    const lnc_qparams *q;
    uint8_t *y;
    int parts, cparts; /* parts = row chunks * cparts channel chunks (of 16) */
} lnc_qdw_job;

/* Position of channel c in the depthwise packing: full blocks of 16 channels are stored as
 * [0-3, 8-11, 4-7, 12-15] (the lane order of unpacklo/unpackhi), the rest in order. */
static inline long lnc_dwpos(long c, long C) {
    const long b = c & ~15L, j = c & 15;
    if (b + 16 > C) return c;
    return b + ((j >= 4 && j < 8) ? j + 4 : ((j >= 8 && j < 12) ? j - 4 : j));
}

#define LNC_QDW_MAXTAPS 64

/* The geometry of lnc_qdw3_fullrow (AVX2 only): 3x3, horizontal dilation 1, stride 1 or 2. */
static int lnc_qdw3_fast(const lnc_conv *g) {
#if defined(LNC_QAVX2)
    return g->kh == 3 && g->kw == 3 && g->dw == 1 && (g->sw == 1 || g->sw == 2) && g->c >= 16;
#else
    (void)g;
    return 0;
#endif
}

#if defined(LNC_QAVX2)

/* 3x3 interior pixels, straight-line, specialised on the signedness of x and y. */
LNC_QINLINE void lnc_qdw3_rows(const lnc_conv *g, const lnc_qparams *q, const uint32_t *w,
                               const uint8_t *xrow, const long *off, long n_px,
                               uint8_t *yrow, const int sg, const int ys) {
    const long C = g->c, sx = g->sw * g->ldx;
    const __m256i vyz = _mm256_set1_epi32(q->y_zp);
    float lo, hi;
    __m256 vlo, vhi;
    long c, i;
    lnc_qbounds(q, &lo, &hi);
    vlo = _mm256_set1_ps(lo);
    vhi = _mm256_set1_ps(hi);
    for (c = 0; c + 16 <= C; c += 16) {
        const __m256i wa0 = _mm256_loadu_si256((const __m256i *)(w + 0 * C + c));
        const __m256i wb0 = _mm256_loadu_si256((const __m256i *)(w + 0 * C + c + 8));
        const __m256i wa1 = _mm256_loadu_si256((const __m256i *)(w + 1 * C + c));
        const __m256i wb1 = _mm256_loadu_si256((const __m256i *)(w + 1 * C + c + 8));
        const __m256i wa2 = _mm256_loadu_si256((const __m256i *)(w + 2 * C + c));
        const __m256i wb2 = _mm256_loadu_si256((const __m256i *)(w + 2 * C + c + 8));
        const __m256i wa3 = _mm256_loadu_si256((const __m256i *)(w + 3 * C + c));
        const __m256i wb3 = _mm256_loadu_si256((const __m256i *)(w + 3 * C + c + 8));
        const __m256i wa4 = _mm256_loadu_si256((const __m256i *)(w + 4 * C + c));
        const __m256i wb4 = _mm256_loadu_si256((const __m256i *)(w + 4 * C + c + 8));
        /* Raw x: the zero point is folded into the interior bias (after mult). */
        const int32_t *bias_in = (const int32_t *)(const void *)(q->mult + C);
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)(bias_in + c));
        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(bias_in + c + 8));
        const __m256 m0 = _mm256_loadu_ps(q->mult + c), m1 = _mm256_loadu_ps(q->mult + c + 8);
        const uint8_t *xp = xrow + c;
        uint8_t *yp = yrow + c;
        for (i = 0; i < n_px; i++, xp += sx, yp += g->ldy) {
            __m256i a0, a1, x0, x1, i0, i1, pk;
            __m256 f0, f1;
            __m128i bb;
#define LNC_QX(T)                                                                        \
    (sg ? _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(xp + off[T])))          \
        : _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(xp + off[T]))))
            x0 = LNC_QX(0); x1 = LNC_QX(1);
            a0 = _mm256_add_epi32(b0, _mm256_madd_epi16(_mm256_unpacklo_epi16(x0, x1), wa0));
            a1 = _mm256_add_epi32(b1, _mm256_madd_epi16(_mm256_unpackhi_epi16(x0, x1), wb0));
            x0 = LNC_QX(2); x1 = LNC_QX(3);
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_unpacklo_epi16(x0, x1), wa1));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_unpackhi_epi16(x0, x1), wb1));
            x0 = LNC_QX(4); x1 = LNC_QX(5);
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_unpacklo_epi16(x0, x1), wa2));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_unpackhi_epi16(x0, x1), wb2));
            x0 = LNC_QX(6); x1 = LNC_QX(7);
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_unpacklo_epi16(x0, x1), wa3));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_unpackhi_epi16(x0, x1), wb3));
            x0 = LNC_QX(8); x1 = _mm256_setzero_si256();
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_unpacklo_epi16(x0, x1), wa4));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_unpackhi_epi16(x0, x1), wb4));
#undef LNC_QX
            f0 = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(a0), m0), vlo), vhi);
            f1 = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(a1), m1), vlo), vhi);
            i0 = _mm256_add_epi32(_mm256_cvtps_epi32(f0), vyz);
            i1 = _mm256_add_epi32(_mm256_cvtps_epi32(f1), vyz);
            pk = _mm256_packs_epi32(i0, i1);
            bb = ys ? _mm_packs_epi16(_mm256_castsi256_si128(pk), _mm256_extracti128_si256(pk, 1))
                    : _mm_packus_epi16(_mm256_castsi256_si128(pk), _mm256_extracti128_si256(pk, 1));
            _mm_storeu_si128((__m128i *)yp, bb);
        }
    }
}

static void lnc_qdw3_interior(const lnc_conv *g, const lnc_qparams *q, const uint32_t *w,
                              const uint8_t *xrow, const long *off, long n_px, uint8_t *yrow) {
    switch (q->x_signed * 2 + q->y_signed) {
    case 0: lnc_qdw3_rows(g, q, w, xrow, off, n_px, yrow, 0, 0); break;
    case 1: lnc_qdw3_rows(g, q, w, xrow, off, n_px, yrow, 0, 1); break;
    case 2: lnc_qdw3_rows(g, q, w, xrow, off, n_px, yrow, 1, 0); break;
    default: lnc_qdw3_rows(g, q, w, xrow, off, n_px, yrow, 1, 1); break;
    }
}

/* Interior output pixels [ow0, ow1) of one row (every tap inside the input), kernels of at
 * most 10 taps: per block of 16 channels the weights stay in registers. `xrow`: input
 * pixel (ih0, iw0 of ow0); `off[t]`: element offset of tap t from it. */
static void lnc_qdw_interior(const lnc_conv *g, const lnc_qparams *q, const uint32_t *w,
                             const uint8_t *xrow, const long *off, long ow0, long ow1,
                             uint8_t *yrow) {
    const long C = g->c, T = (long)g->kh * g->kw, TP = (T + 1) / 2, sx = g->sw * g->ldx;
    const int sg = q->x_signed;
    const __m256i z16 = _mm256_set1_epi16((short)q->x_zp);
    const __m256i vyz = _mm256_set1_epi32(q->y_zp);
    float lo, hi;
    __m256 vlo, vhi;
    long c, ow, tp;
    lnc_qbounds(q, &lo, &hi);
    vlo = _mm256_set1_ps(lo);
    vhi = _mm256_set1_ps(hi);
    for (c = 0; c + 16 <= C; c += 16) {
        __m256i wa[5], wb[5];
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)(q->bias + c));
        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(q->bias + c + 8));
        const __m256 m0 = _mm256_loadu_ps(q->mult + c), m1 = _mm256_loadu_ps(q->mult + c + 8);
        const uint8_t *xp = xrow + c;
        uint8_t *yp = yrow + c;
        for (tp = 0; tp < 5; tp++) {
            wa[tp] = tp < TP ? _mm256_loadu_si256((const __m256i *)(w + tp * C + c)) : _mm256_setzero_si256();
            wb[tp] = tp < TP ? _mm256_loadu_si256((const __m256i *)(w + tp * C + c + 8)) : _mm256_setzero_si256();
        }
        for (ow = ow0; ow < ow1; ow++, xp += sx, yp += g->ldy) {
            __m256i a0 = b0, a1 = b1, i0, i1, pk;
            __m256 f0, f1;
            __m128i bb;
            for (tp = 0; tp < 5; tp++) {
                __m256i x0, x1;
                if (tp >= TP) break;
                {
                    const __m128i r0 = _mm_loadu_si128((const __m128i *)(xp + off[2 * tp]));
                    x0 = _mm256_sub_epi16(sg ? _mm256_cvtepi8_epi16(r0) : _mm256_cvtepu8_epi16(r0), z16);
                }
                if (2 * tp + 1 < T) {
                    const __m128i r1 = _mm_loadu_si128((const __m128i *)(xp + off[2 * tp + 1]));
                    x1 = _mm256_sub_epi16(sg ? _mm256_cvtepi8_epi16(r1) : _mm256_cvtepu8_epi16(r1), z16);
                } else {
                    x1 = _mm256_setzero_si256();
                }
                a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_unpacklo_epi16(x0, x1), wa[tp]));
                a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_unpackhi_epi16(x0, x1), wb[tp]));
            }
            f0 = _mm256_mul_ps(_mm256_cvtepi32_ps(a0), m0);
            f1 = _mm256_mul_ps(_mm256_cvtepi32_ps(a1), m1);
            f0 = _mm256_min_ps(_mm256_max_ps(f0, vlo), vhi);
            f1 = _mm256_min_ps(_mm256_max_ps(f1, vlo), vhi);
            i0 = _mm256_add_epi32(_mm256_cvtps_epi32(f0), vyz);
            i1 = _mm256_add_epi32(_mm256_cvtps_epi32(f1), vyz);
            pk = _mm256_packs_epi32(i0, i1);
            bb = q->y_signed ? _mm_packs_epi16(_mm256_castsi256_si128(pk), _mm256_extracti128_si256(pk, 1))
                             : _mm_packus_epi16(_mm256_castsi256_si128(pk), _mm256_extracti128_si256(pk, 1));
            _mm_storeu_si128((__m128i *)yp, bb);
        }
    }
}

/* One int16 column of 16 channels, raw x (x_zp outside the input, 0 <= col < W). */
LNC_QINLINE __m256i lnc_qdw_col(const uint8_t *xr, long col, long W, long ldx, __m256i z16,
                                const int sg) {
    __m128i b;
    if (col < 0 || col >= W) return z16;
    b = _mm_loadu_si128((const __m128i *)(xr + col * ldx));
    return sg ? _mm256_cvtepi8_epi16(b) : _mm256_cvtepu8_epi16(b);
}

/* Columns (col, col + 1) of one input row as madd pairs: lo = channels 0-3, 8-11, hi = 4-7,
 * 12-15 (the depthwise packing order). */
LNC_QINLINE void lnc_qdw_pair(const uint8_t *xr, long col, long W, long ldx, __m256i z16,
                              const int sg, __m256i *lo, __m256i *hi) {
    __m256i u, v;
    if (col >= 0 && col + 1 < W) {
        const __m128i b0 = _mm_loadu_si128((const __m128i *)(xr + col * ldx));
        const __m128i b1 = _mm_loadu_si128((const __m128i *)(xr + (col + 1) * ldx));
        u = sg ? _mm256_cvtepi8_epi16(b0) : _mm256_cvtepu8_epi16(b0);
        v = sg ? _mm256_cvtepi8_epi16(b1) : _mm256_cvtepu8_epi16(b1);
    } else {
        u = lnc_qdw_col(xr, col, W, ldx, z16, sg);
        v = lnc_qdw_col(xr, col + 1, W, ldx, z16, sg);
    }
    *lo = _mm256_unpacklo_epi16(u, v);
    *hi = _mm256_unpackhi_epi16(u, v);
}

/* Requantize 16 channels (a0: 0-3, 8-11; a1: 4-7, 12-15) to int16 in channel order, + y_zp
 * (lnc_qdw_st16 / lnc_qdw_st16x2 pack them to bytes). `nc`: |mult| <= 1/4, so
 * |acc * mult| <= 2^29 converts without overflow and saturating packs (int32 -> int16, + y_zp
 * saturating, -> 8 bits) equal the clamp: round(clamp(v)) == clamp(round(v)) for integer
 * bounds, and saturating twice to int16 first changes nothing once the 8-bit range is applied. */
LNC_QINLINE __m256i lnc_qdw_rq16(__m256i a0, __m256i a1, __m256 m0, __m256 m1, __m256 vlo,
                                 __m256 vhi, __m256i vyz, const int nc) {
    __m256 f0 = _mm256_mul_ps(_mm256_cvtepi32_ps(a0), m0);
    __m256 f1 = _mm256_mul_ps(_mm256_cvtepi32_ps(a1), m1);
    if (!nc) {
        f0 = _mm256_min_ps(_mm256_max_ps(f0, vlo), vhi);
        f1 = _mm256_min_ps(_mm256_max_ps(f1, vlo), vhi);
    }
    /* int16 [0-7 | 8-15]: packs puts the lanes' 0-3, 4-7 and 8-11, 12-15 side by side. */
    return _mm256_adds_epi16(_mm256_packs_epi32(_mm256_cvtps_epi32(f0), _mm256_cvtps_epi32(f1)), vyz);
}

LNC_QINLINE void lnc_qdw_st16(__m256i a0, __m256i a1, __m256 m0, __m256 m1, __m256 vlo,
                              __m256 vhi, __m256i vyz, const int nc, const int ys, uint8_t *y) {
    const __m256i pk = lnc_qdw_rq16(a0, a1, m0, m1, vlo, vhi, vyz, nc);
    const __m128i l = _mm256_castsi256_si128(pk), h = _mm256_extracti128_si256(pk, 1);
    _mm_storeu_si128((__m128i *)y, ys ? _mm_packs_epi16(l, h) : _mm_packus_epi16(l, h));
}

/* Two pixels' 16 channels (a: pixel y0, b: pixel y1) as lnc_qdw_st16, one byte pack and one
 * lane permute for both instead of two extract + pack pairs (the shuffle ports bound this
 * kernel). */
LNC_QINLINE void lnc_qdw_st16x2(__m256i a0, __m256i a1, __m256i b0, __m256i b1, __m256 m0,
                                __m256 m1, __m256 vlo, __m256 vhi, __m256i vyz, const int nc,
                                const int ys, uint8_t *y0, uint8_t *y1) {
    const __m256i pa = lnc_qdw_rq16(a0, a1, m0, m1, vlo, vhi, vyz, nc);
    const __m256i pb = lnc_qdw_rq16(b0, b1, m0, m1, vlo, vhi, vyz, nc);
    /* The byte pack interleaves 64-bit halves as [a 0-7, b 0-7 | a 8-15, b 8-15]. */
    const __m256i u = _mm256_permute4x64_epi64(ys ? _mm256_packs_epi16(pa, pb) : _mm256_packus_epi16(pa, pb), 0xD8);
    _mm_storeu_si128((__m128i *)y0, _mm256_castsi256_si128(u));
    _mm_storeu_si128((__m128i *)y1, _mm256_extracti128_si256(u, 1));
}

/* 3x3 depthwise, dilation 1, horizontal stride 1 or 2: one output row, every output pixel
 * (padding included), the blocks of 16 channels in [c0, c1). `xr[r]`: input row of kernel row r
 * (any valid row when `rok[r]` is 0: its weights are then zero). Kernel rows 0 and 1 are
 * multiplied as vertical pairs: V(c) = (x0[c], x1[c]) interleaved, times (w[0][k], w[1][k]).
 * Kernel row 2 as horizontal pairs H(j) = (x2[base + 2j], x2[base + 2j + 1]), base = -pl:
 * stride 1: output 2j = sum_k V(base + 2j + k).v[k] + H(j).(w0, w1) + H(j+1).(w2, 0),
 *           2j+1 = sum_k V(base + 2j + 1 + k).v[k] + H(j).(0, w0) + H(j+1).(w1, w2);
 * stride 2: output j = sum_k V(base + 2j + k).v[k] + H(j).(w0, w1) + H(j+1).(w2, 0).
 * 5 madds per output and 8 channels instead of 6 with horizontal pairs alone (18 of 20 int16
 * products used instead of 18 of 24), for the same column conversions: every column of every
 * row is still converted once. Exact: the same int32 products. `nr` > 1: that many consecutive
 * output rows (of one image, every kernel row inside the input), each 16-channel block's
 * weights, masks and constants set up once for all of them. */
LNC_QINLINE void lnc_qdw3_row(const lnc_conv *g, const lnc_qparams *q, const uint32_t *w,
                              const uint8_t *const *xr, const int *rok, long c0, long c1,
                              uint8_t *yrow, long nr, const int sg, const int ys, const int s2) {
    const long C = g->c, W = g->w, OW = g->ow, ldx = g->ldx, ldy = g->ldy, base = -g->pl;
    const __m256i z16 = _mm256_set1_epi16((short)q->x_zp), vyz = _mm256_set1_epi16((short)q->y_zp);
    const int32_t *bias_in = (const int32_t *)(const void *)(q->mult + C);
    const __m256i lo16 = _mm256_set1_epi32(0xffff);
    float lo, hi;
    __m256 vlo, vhi;
    long c, ow;
    lnc_qbounds(q, &lo, &hi);
    vlo = _mm256_set1_ps(lo);
    vhi = _mm256_set1_ps(hi);
    for (c = c0; c + 16 <= c1; c += 16) {
        /* hw[v][h]: kernel row 2 as horizontal pairs, v = (w0, w1), (w2, 0), (0, w0), (w1, w2);
         * vw[k][h]: kernel rows 0 and 1 as vertical pairs (w[0][k], w[1][k]); half h. */
        __m256i hw[4][2], vw[3][2];
        __m256i h2a, h2b, v0a, v0b, v1a, v1b, v2a, v2b, v3a, v3b;
        __m256i b0 = _mm256_loadu_si256((const __m256i *)(bias_in + c));
        __m256i b1 = _mm256_loadu_si256((const __m256i *)(bias_in + c + 8));
        const __m256 m0 = _mm256_loadu_ps(q->mult + c), m1 = _mm256_loadu_ps(q->mult + c + 8);
        const __m256 quarter = _mm256_set1_ps(0.25f), nosign = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
        const int nc = _mm256_movemask_ps(_mm256_and_ps(
                           _mm256_cmp_ps(_mm256_and_ps(m0, nosign), quarter, _CMP_LE_OQ),
                           _mm256_cmp_ps(_mm256_and_ps(m1, nosign), quarter, _CMP_LE_OQ))) == 0xff;
        /* Weights of a kernel row outside the input: 0 (vertical pairs: that half). */
        const __m256i vmask = _mm256_or_si256(rok[0] ? lo16 : _mm256_setzero_si256(),
                                              rok[1] ? _mm256_slli_epi32(lo16, 16) : _mm256_setzero_si256());
        const __m256i hmask = rok[2] ? _mm256_set1_epi32(-1) : _mm256_setzero_si256();
        const long xstep = g->sh * W * ldx, ystep = OW * ldy;
        long i;
        int h;
        for (h = 0; h < 2; h++) {
            const __m256i p0 = _mm256_loadu_si256((const __m256i *)(w + 0 * C + c + 8 * h));
            const __m256i p1 = _mm256_loadu_si256((const __m256i *)(w + 1 * C + c + 8 * h));
            const __m256i p2 = _mm256_loadu_si256((const __m256i *)(w + 2 * C + c + 8 * h));
            const __m256i p3 = _mm256_loadu_si256((const __m256i *)(w + 3 * C + c + 8 * h));
            const __m256i p4 = _mm256_loadu_si256((const __m256i *)(w + 4 * C + c + 8 * h));
            /* A kernel row outside the input reads another row with zero weights, and bias_in
             * assumed x_zp there: add x_zp * (w0 + w1 + w2) back (row 0: taps 0-2, row 1:
             * taps 3-5, row 2: taps 6-8). */
            __m256i corr = _mm256_setzero_si256();
            if (!rok[0])
                corr = _mm256_add_epi32(corr, _mm256_add_epi32(_mm256_madd_epi16(z16, p0),
                                                               _mm256_madd_epi16(z16, _mm256_and_si256(p1, lo16))));
            if (!rok[1])
                corr = _mm256_add_epi32(corr, _mm256_add_epi32(_mm256_madd_epi16(z16, _mm256_srli_epi32(p1, 16)),
                                                               _mm256_madd_epi16(z16, p2)));
            if (!rok[2])
                corr = _mm256_add_epi32(corr, _mm256_add_epi32(_mm256_madd_epi16(z16, p3),
                                                               _mm256_madd_epi16(z16, p4)));
            if (h)
                b1 = _mm256_add_epi32(b1, corr);
            else
                b0 = _mm256_add_epi32(b0, corr);
            hw[0][h] = _mm256_and_si256(p3, hmask);
            hw[1][h] = _mm256_and_si256(p4, hmask);
            hw[2][h] = _mm256_and_si256(_mm256_slli_epi32(p3, 16), hmask);
            hw[3][h] = _mm256_and_si256(_mm256_or_si256(_mm256_srli_epi32(p3, 16), _mm256_slli_epi32(p4, 16)), hmask);
            /* (w[0][k], w[1][k]) = taps (k, 3 + k). */
            vw[0][h] = _mm256_and_si256(_mm256_blend_epi16(p0, p1, 0xAA), vmask);
            vw[1][h] = _mm256_and_si256(
                _mm256_blend_epi16(_mm256_srli_epi32(p0, 16), _mm256_slli_epi32(p2, 16), 0xAA), vmask);
            vw[2][h] = _mm256_and_si256(_mm256_blend_epi16(p1, p2, 0xAA), vmask);
        }
/* Column C_ of kernel rows 0 and 1 interleaved: A channels 0-3, 8-11, B 4-7, 12-15. */
#define LNC_QDW_V(C_, A, B)                                                                    \
    do {                                                                                       \
        const __m256i u_ = lnc_qdw_col(x0, C_, W, ldx, z16, sg);                               \
        const __m256i v_ = lnc_qdw_col(x1, C_, W, ldx, z16, sg);                               \
        A = _mm256_unpacklo_epi16(u_, v_);                                                     \
        B = _mm256_unpackhi_epi16(u_, v_);                                                     \
    } while (0)
/* acc pair (A, B) += the int16 pairs (HA, HB) times the weight pairs (WA, WB). */
#define LNC_QDW_MAC(A, B, HA, HB, WA, WB)                                                      \
    A = _mm256_add_epi32(A, _mm256_madd_epi16(HA, WA));                                        \
    B = _mm256_add_epi32(B, _mm256_madd_epi16(HB, WB))
        for (i = 0; i < nr; i++) {
            const uint8_t *const x0 = xr[0] + c + i * xstep, *const x1 = xr[1] + c + i * xstep;
            const uint8_t *const x2 = xr[2] + c + i * xstep;
            uint8_t *yp = yrow + c + i * ystep;
            lnc_qdw_pair(x2, base, W, ldx, z16, sg, &h2a, &h2b);
            LNC_QDW_V(base, v0a, v0b);
            if (!s2) {
                LNC_QDW_V(base + 1, v1a, v1b);
                /* The stride-2 loop's products for output 2j, interleaved with those of 2j+1:
                 * one add chain per output instead (a shared macro) was 9-14 % slower. */
                for (ow = 0; ow < OW; ow += 2, yp += 2 * ldy) {
                    const long col = base + ow + 2;
                    __m256i ea = b0, eb = b1, oa = b0, ob = b1, na, nb;
                    LNC_QDW_V(col, v2a, v2b);
                    LNC_QDW_V(col + 1, v3a, v3b);
                    LNC_QDW_MAC(ea, eb, v0a, v0b, vw[0][0], vw[0][1]);
                    LNC_QDW_MAC(oa, ob, v1a, v1b, vw[0][0], vw[0][1]);
                    LNC_QDW_MAC(ea, eb, v1a, v1b, vw[1][0], vw[1][1]);
                    LNC_QDW_MAC(oa, ob, v2a, v2b, vw[1][0], vw[1][1]);
                    LNC_QDW_MAC(ea, eb, v2a, v2b, vw[2][0], vw[2][1]);
                    LNC_QDW_MAC(oa, ob, v3a, v3b, vw[2][0], vw[2][1]);
                    lnc_qdw_pair(x2, col, W, ldx, z16, sg, &na, &nb);
                    LNC_QDW_MAC(ea, eb, h2a, h2b, hw[0][0], hw[0][1]);
                    LNC_QDW_MAC(oa, ob, h2a, h2b, hw[2][0], hw[2][1]);
                    LNC_QDW_MAC(ea, eb, na, nb, hw[1][0], hw[1][1]);
                    LNC_QDW_MAC(oa, ob, na, nb, hw[3][0], hw[3][1]);
                    h2a = na;
                    h2b = nb;
                    v0a = v2a;
                    v0b = v2b;
                    v1a = v3a;
                    v1b = v3b;
                    if (ow + 1 < OW)
                        lnc_qdw_st16x2(ea, eb, oa, ob, m0, m1, vlo, vhi, vyz, nc, ys, yp, yp + ldy);
                    else
                        lnc_qdw_st16(ea, eb, m0, m1, vlo, vhi, vyz, nc, ys, yp);
                }
            } else {
                for (ow = 0; ow < OW; ow++, yp += ldy) {
                    const long col = base + 2 * ow + 2;
                    __m256i ea = b0, eb = b1, na, nb;
                    LNC_QDW_V(col - 1, v1a, v1b);
                    LNC_QDW_V(col, v2a, v2b);
                    LNC_QDW_MAC(ea, eb, v0a, v0b, vw[0][0], vw[0][1]);
                    LNC_QDW_MAC(ea, eb, v1a, v1b, vw[1][0], vw[1][1]);
                    LNC_QDW_MAC(ea, eb, v2a, v2b, vw[2][0], vw[2][1]);
                    lnc_qdw_pair(x2, col, W, ldx, z16, sg, &na, &nb);
                    LNC_QDW_MAC(ea, eb, h2a, h2b, hw[0][0], hw[0][1]);
                    LNC_QDW_MAC(ea, eb, na, nb, hw[1][0], hw[1][1]);
                    h2a = na;
                    h2b = nb;
                    v0a = v2a;
                    v0b = v2b;
                    lnc_qdw_st16(ea, eb, m0, m1, vlo, vhi, vyz, nc, ys, yp);
                }
            }
        }
#undef LNC_QDW_MAC
#undef LNC_QDW_V
    }
}

/* Output row of a 3x3 kernel (lnc_qdw3_fast) whose first kernel row is input row ih0 of image
 * `xi`, channel blocks in [c0, c1); 0 (nothing done) when no kernel row is inside the input.
 * `nr` > 1: that many consecutive rows, all with every kernel row inside the input.
 * Out of line: inlined into its caller, its row loops lost 5-10 % (measured). */
LNC_QNOINLINE int lnc_qdw3_fullrow(const lnc_conv *g, const lnc_qparams *q, const uint32_t *w,
                                   const uint8_t *xi, long ih0, long c0, long c1,
                                   uint8_t *yrow, long nr) {
    const uint8_t *xr[3];
    int rok[3], r;
    const int s2 = g->sw == 2;
    long ihv = -1;
    for (r = 0; r < 3; r++) {
        const long ih = ih0 + r * g->dh;
        rok[r] = ih >= 0 && ih < g->h;
        if (rok[r]) ihv = ih;
    }
    if (ihv < 0) return 0;
    for (r = 0; r < 3; r++) xr[r] = xi + (rok[r] ? ih0 + r * g->dh : ihv) * g->w * g->ldx;
    switch (q->x_signed * 4 + q->y_signed * 2 + s2) {
    case 0: lnc_qdw3_row(g, q, w, xr, rok, c0, c1, yrow, nr, 0, 0, 0); break;
    case 1: lnc_qdw3_row(g, q, w, xr, rok, c0, c1, yrow, nr, 0, 0, 1); break;
    case 2: lnc_qdw3_row(g, q, w, xr, rok, c0, c1, yrow, nr, 0, 1, 0); break;
    case 3: lnc_qdw3_row(g, q, w, xr, rok, c0, c1, yrow, nr, 0, 1, 1); break;
    case 4: lnc_qdw3_row(g, q, w, xr, rok, c0, c1, yrow, nr, 1, 0, 0); break;
    case 5: lnc_qdw3_row(g, q, w, xr, rok, c0, c1, yrow, nr, 1, 0, 1); break;
    case 6: lnc_qdw3_row(g, q, w, xr, rok, c0, c1, yrow, nr, 1, 1, 0); break;
    default: lnc_qdw3_row(g, q, w, xr, rok, c0, c1, yrow, nr, 1, 1, 1); break;
    }
    return 1;
}
#endif

static void lnc_qdw_part(void *ctx, int part, int tid) {
    const lnc_qdw_job *j = (const lnc_qdw_job *)ctx;
    const lnc_conv *g = j->g;
    const lnc_qparams *q = j->q;
    const long C = g->c, T = (long)g->kh * g->kw, TP = (T + 1) / 2;
    const int sg = q->x_signed, zp = q->x_zp;
    float lo, hi;
    long r0, r1, row, ow, c0, c1, nb, rr;
    (void)tid;
    lnc_qbounds(q, &lo, &hi);
    lnc_qchunk(g->n * g->oh, j->parts / j->cparts, part / j->cparts, 1, &r0, &r1);
    lnc_qchunk(C, j->cparts, part % j->cparts, 16, &c0, &c1);
    for (row = r0; row < r1; row += nb) {
        const long n = row / g->oh;
        /* interior pixels [iv0, iv1) done for channels [c0, cfast); cparts > 1 only when
         * lnc_qdw3_fast holds (the other interior kernels do every channel). `nb` rows: the
         * fast kernel may do a run of rows at once. */
        long iv0 = g->ow, iv1 = g->ow, cfast = c0;
        nb = 1;
#if defined(LNC_QAVX2)
        {
            const long oh = row % g->oh, ih0 = oh * g->sh - g->pt;
            if (lnc_qdw3_fast(g)) {
                /* Narrow maps: up to 8 rows whose kernel rows are all inside the input share
                 * each channel block's setup (~60 vector ops per block and row; measured 4-7 %
                 * faster on 7- to 28-wide layers). */
#define LNC_QDW_INSIDE(OH) ((OH) * g->sh - g->pt >= 0 && (OH) * g->sh - g->pt + 2 * g->dh < g->h)
                if (g->ow <= 32 && LNC_QDW_INSIDE(oh))
                    while (nb < 8 && row + nb < r1 && oh + nb < g->oh && LNC_QDW_INSIDE(oh + nb)) nb++;
#undef LNC_QDW_INSIDE
                if (lnc_qdw3_fullrow(g, q, j->w, j->x + n * g->h * g->w * g->ldx, ih0, c0,
                                     LNC_QMIN(c1, C & ~15L), j->y + row * g->ow * g->ldy, nb)) {
                    iv0 = 0;
                    iv1 = g->ow;
                    cfast = LNC_QMIN(c1, C & ~15L);
                }
            } else if (T <= 10 && C >= 16 && ih0 >= 0 && ih0 + (g->kh - 1) * g->dh < g->h) {
                long off[10], t;
                iv0 = 0;
                while (iv0 < g->ow && iv0 * g->sw - g->pl < 0) iv0++;
                iv1 = iv0;
                while (iv1 < g->ow && iv1 * g->sw - g->pl + (g->kw - 1) * g->dw < g->w) iv1++;
                for (t = 0; t < T; t++)
                    off[t] = ((t / g->kw) * g->dh * g->w + (t % g->kw) * g->dw) * g->ldx;
                if (iv1 > iv0 && T == 9) {
                    lnc_qdw3_interior(g, q, j->w,
                                      j->x + ((n * g->h + ih0) * g->w + iv0 * g->sw - g->pl) * g->ldx,
                                      off, iv1 - iv0, j->y + (row * g->ow + iv0) * g->ldy);
                    cfast = C & ~15L;
                } else if (iv1 > iv0) {
                    lnc_qdw_interior(g, q, j->w,
                                     j->x + ((n * g->h + ih0) * g->w + iv0 * g->sw - g->pl) * g->ldx,
                                     off, iv0, iv1, j->y + (row * g->ow + iv0) * g->ldy);
                    cfast = C & ~15L;
                } else {
                    iv0 = iv1 = g->ow;
                }
            }
        }
#endif
        for (rr = row; rr < row + nb; rr++)
        for (ow = 0; ow < g->ow; ow++) {
            /* Input pixel of every tap (NULL: padding), TP pairs. */
            const uint8_t *tap[LNC_QDW_MAXTAPS + 1];
            const long oh = rr % g->oh;
            uint8_t *yp = j->y + (rr * g->ow + ow) * g->ldy;
            long t, c = (ow >= iv0 && ow < iv1) ? cfast : c0;
            if (c >= c1) continue;
            {
                long ky, kx;
                t = 0;
                for (ky = 0; ky < g->kh; ky++) {
                    const long ih = oh * g->sh - g->pt + ky * g->dh;
                    for (kx = 0; kx < g->kw; kx++, t++) {
                        const long iw = ow * g->sw - g->pl + kx * g->dw;
                        tap[t] = (ih >= 0 && ih < g->h && iw >= 0 && iw < g->w)
                                     ? j->x + ((n * g->h + ih) * g->w + iw) * g->ldx
                                     : NULL;
                    }
                }
                if (t < 2 * TP) tap[t] = NULL;
            }
#if defined(LNC_QAVX2)
            {
                const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
                const __m256i vyz = _mm256_set1_epi32(q->y_zp);
                const __m256i z16 = _mm256_set1_epi16((short)zp);
                const __m128i z8 = _mm_set1_epi16((short)zp);
                long tp;
                for (; c + 16 <= c1; c += 16) {
                    __m256i a0 = _mm256_loadu_si256((const __m256i *)(q->bias + c));
                    __m256i a1 = _mm256_loadu_si256((const __m256i *)(q->bias + c + 8));
                    for (tp = 0; tp < TP; tp++) {
                        const uint8_t *p0 = tap[2 * tp], *p1 = tap[2 * tp + 1];
                        const uint32_t *wp = j->w + tp * C + c;
                        __m256i x0 = _mm256_setzero_si256(), x1 = _mm256_setzero_si256();
                        if (p0) {
                            const __m128i b = _mm_loadu_si128((const __m128i *)(p0 + c));
                            x0 = _mm256_sub_epi16(sg ? _mm256_cvtepi8_epi16(b) : _mm256_cvtepu8_epi16(b), z16);
                        }
                        if (p1) {
                            const __m128i b = _mm_loadu_si128((const __m128i *)(p1 + c));
                            x1 = _mm256_sub_epi16(sg ? _mm256_cvtepi8_epi16(b) : _mm256_cvtepu8_epi16(b), z16);
                        }
                        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_unpacklo_epi16(x0, x1),
                                                                     _mm256_loadu_si256((const __m256i *)wp)));
                        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_unpackhi_epi16(x0, x1),
                                                                     _mm256_loadu_si256((const __m256i *)(wp + 8))));
                    }
                    {
                        /* a0: channels 0-3, 8-11; a1: 4-7, 12-15 (mult in the same order). */
                        __m256 f0 = _mm256_mul_ps(_mm256_cvtepi32_ps(a0), _mm256_loadu_ps(q->mult + c));
                        __m256 f1 = _mm256_mul_ps(_mm256_cvtepi32_ps(a1), _mm256_loadu_ps(q->mult + c + 8));
                        __m256i i0, i1, pk;
                        __m128i bb;
                        f0 = _mm256_min_ps(_mm256_max_ps(f0, vlo), vhi);
                        f1 = _mm256_min_ps(_mm256_max_ps(f1, vlo), vhi);
                        i0 = _mm256_add_epi32(_mm256_cvtps_epi32(f0), vyz);
                        i1 = _mm256_add_epi32(_mm256_cvtps_epi32(f1), vyz);
                        pk = _mm256_packs_epi32(i0, i1);
                        bb = q->y_signed ? _mm_packs_epi16(_mm256_castsi256_si128(pk), _mm256_extracti128_si256(pk, 1))
                                         : _mm_packus_epi16(_mm256_castsi256_si128(pk), _mm256_extracti128_si256(pk, 1));
                        _mm_storeu_si128((__m128i *)(yp + c), bb);
                    }
                }
                for (; c + 8 <= c1; c += 8) {
                    __m256i a0 = _mm256_loadu_si256((const __m256i *)(q->bias + c));
                    for (tp = 0; tp < TP; tp++) {
                        const uint8_t *p0 = tap[2 * tp], *p1 = tap[2 * tp + 1];
                        __m128i x0 = _mm_setzero_si128(), x1 = _mm_setzero_si128();
                        if (p0) {
                            const __m128i b = _mm_loadl_epi64((const __m128i *)(p0 + c));
                            x0 = _mm_sub_epi16(sg ? _mm_cvtepi8_epi16(b) : _mm_cvtepu8_epi16(b), z8);
                        }
                        if (p1) {
                            const __m128i b = _mm_loadl_epi64((const __m128i *)(p1 + c));
                            x1 = _mm_sub_epi16(sg ? _mm_cvtepi8_epi16(b) : _mm_cvtepu8_epi16(b), z8);
                        }
                        a0 = _mm256_add_epi32(
                            a0, _mm256_madd_epi16(_mm256_set_m128i(_mm_unpackhi_epi16(x0, x1), _mm_unpacklo_epi16(x0, x1)),
                                                  _mm256_loadu_si256((const __m256i *)(j->w + tp * C + c))));
                    }
                    lnc_qstore8(a0, q->mult + c, vlo, vhi, vyz, q->y_signed, yp + c);
                }
            }
#endif
            for (; c < c1; c++) {
                const long pc = lnc_dwpos(c, C);
                uint32_t acc = (uint32_t)q->bias[pc];
                for (t = 0; t < T; t++) {
                    if (tap[t]) {
                        const uint32_t wv = j->w[(t / 2) * C + pc];
                        const int32_t wt = lnc_s16((t & 1) ? wv >> 16 : wv);
                        acc += (uint32_t)((lnc_qload(tap[t] + c, sg) - zp) * wt);
                    }
                }
                yp[c] = lnc_rq1(acc, q->mult[pc], lo, hi, q->y_zp);
            }
        }
    }
}

void lnc_qconv_dw(const lnc_conv *g, const uint8_t *x, const uint32_t *w, const lnc_qparams *q,
                  uint8_t *y) {
    lnc_qdw_job j;
    int t = lnc_pool_threads();
    j.g = g; j.x = x; j.w = w; j.q = q; j.y = y;
    j.parts = t > 1 ? (int)LNC_QMIN(4 * t, g->n * g->oh) : 1;
    j.cparts = 1;
    /* Few rows: split the channels too (only lnc_qdw3_fast rows take a channel range). */
    if (t > 1 && j.parts < 4 * t && lnc_qdw3_fast(g))
        j.cparts = (int)LNC_QMIN((4 * t + j.parts - 1) / j.parts, g->c / 16);
    j.parts *= j.cparts;
    if (g->n * g->oh * g->ow * g->c * g->kh * g->kw < 16384) j.parts = j.cparts = 1;
    lnc_parallel_for(j.parts, lnc_qdw_part, &j);
}

/* ----- n-d strided loops ------------------------------------------------------------------ */

/* Odometer over the first rank-1 dims (as in lnc_kernels.c). */
#define LNC_QND_LOOP(rank, shape, NOPS, strides, ...)                                     \
    do {                                                                                  \
        long idx_[6] = {0, 0, 0, 0, 0, 0};                                                \
        long off_[3] = {0, 0, 0};                                                         \
        int ax_, o_;                                                                      \
        long total_ = 1;                                                                  \
        for (ax_ = 0; ax_ < (rank); ax_++) total_ *= (shape)[ax_];                        \
        if (total_ == 0) break;                                                           \
        for (;;) {                                                                        \
            __VA_ARGS__;                                                                  \
            for (ax_ = (rank) - 2; ax_ >= 0; ax_--) {                                     \
                idx_[ax_]++;                                                              \
                for (o_ = 0; o_ < (NOPS); o_++) off_[o_] += (strides)[o_][ax_];           \
                if (idx_[ax_] < (shape)[ax_]) break;                                      \
                for (o_ = 0; o_ < (NOPS); o_++) off_[o_] -= (strides)[o_][ax_] * (shape)[ax_]; \
                idx_[ax_] = 0;                                                            \
            }                                                                             \
            if (ax_ < 0) break;                                                           \
        }                                                                                 \
    } while (0)

/* How many parts a byte loop of `total` elements splits its outermost dimension (`outer`
 * long) into: 2 per thread when total >= min_total and there are that many rows, else 1. */
static int lnc_nd_outer_parts(long total, long outer, long min_total) {
    const int t = lnc_pool_threads();
    return t > 1 && total >= min_total && outer >= 2 * t ? 2 * t : 1;
}

/* Part `part` of `parts` of the outermost dimension (starts aligned to `align`): sh = shape
 * with sh[0] the part's extent, *lo its first index; 0 when the part is empty. */
static int lnc_nd_outer_slice(int rank, const long *shape, int parts, int part, long align,
                              long sh[6], long *lo) {
    long hi;
    int d;
    for (d = 0; d < 6; d++) sh[d] = d < rank ? shape[d] : 0;
    lnc_qchunk(sh[0], parts, part, align, lo, &hi);
    sh[0] = hi - *lo;
    return hi > *lo;
}

typedef struct {
    float scale;
    int zp, y_signed, rank, parts;
    const long *shape, *xs, *ys;
    const float *x;
    uint8_t *y;
} lnc_quant_job;

/* One quantized value (t = x / scale; qlo / qhi = qmin - zp, qmax - zp). */
static inline uint8_t lnc_quant1(float t, float qlo, float qhi, int zp) {
    if (t != t) return (uint8_t)zp;
    t = t < qlo ? qlo : (t > qhi ? qhi : t);
    return (uint8_t)((int)nearbyintf(t) + zp);
}

#if defined(LNC_QAVX2)
/* 8 quantized values (t = x / scale), as 8 bytes in the low half. */
static inline __m128i lnc_quant8(__m256 t, __m256 vlo, __m256 vhi, __m256i vz, int y_signed) {
    const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(t, t, _CMP_UNORD_Q));
    __m256i q;
    __m128i h;
    t = _mm256_min_ps(_mm256_max_ps(t, vlo), vhi);
    q = _mm256_add_epi32(_mm256_andnot_si256(nan, _mm256_cvtps_epi32(t)), vz);
    h = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    return y_signed ? _mm_packs_epi16(h, h) : _mm_packus_epi16(h, h);
}
#endif

/* Elements [lo, hi) of the innermost dimension, for every index of the outer ones. */
static void lnc_quantize_range(const lnc_quant_job *j, long lo, long hi) {
    const long *st[2];
    const int rank = j->rank;
    const long *shape = j->shape, *xs = j->xs, *ys = j->ys;
    const long sx = xs[rank - 1], sy = ys[rank - 1];
    const float scale = j->scale;
    const int zp = j->zp, y_signed = j->y_signed;
    const float qlo = lnc_qlo(y_signed, zp), qhi = lnc_qhi(y_signed, zp);
#if defined(LNC_QAVX2)
    const __m256 vs = _mm256_set1_ps(scale), vlo = _mm256_set1_ps(qlo), vhi = _mm256_set1_ps(qhi);
    const __m256i vz = _mm256_set1_epi32(zp);
    if (rank == 2 && shape[0] == 3 && sx == 1 && sy == 3 && ys[0] == 1) {
        /* Three channel planes into pixel-major bytes (an image input): 8 pixels at a
         * time, the channels interleaved by byte shuffles. */
        const __m128i m0 = _mm_setr_epi8(0, 8, -1, 1, 9, -1, 2, 10, -1, 3, 11, -1, 4, 12, -1, 5);
        const __m128i m1 = _mm_setr_epi8(-1, -1, 0, -1, -1, 1, -1, -1, 2, -1, -1, 3, -1, -1, 4, -1);
        const __m128i m2 = _mm_setr_epi8(13, -1, 6, 14, -1, 7, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1);
        const __m128i m3 = _mm_setr_epi8(-1, 5, -1, -1, 6, -1, -1, 7, -1, -1, -1, -1, -1, -1, -1, -1);
        long i = lo;
        for (; i + 8 <= hi; i += 8) {
            const float *xp = j->x + i;
            const __m128i c0 = lnc_quant8(_mm256_div_ps(_mm256_loadu_ps(xp), vs), vlo, vhi, vz, y_signed);
            const __m128i c1 = lnc_quant8(_mm256_div_ps(_mm256_loadu_ps(xp + xs[0]), vs), vlo, vhi, vz, y_signed);
            const __m128i c2 = lnc_quant8(_mm256_div_ps(_mm256_loadu_ps(xp + 2 * xs[0]), vs), vlo, vhi, vz, y_signed);
            const __m128i a = _mm_unpacklo_epi64(c0, c1); /* c0 p0-7, c1 p0-7 */
            uint8_t *yp = j->y + 3 * i;
            _mm_storeu_si128((__m128i *)yp,
                             _mm_or_si128(_mm_shuffle_epi8(a, m0), _mm_shuffle_epi8(c2, m1)));
            _mm_storel_epi64((__m128i *)(yp + 16),
                             _mm_or_si128(_mm_shuffle_epi8(a, m2), _mm_shuffle_epi8(c2, m3)));
        }
        lo = i;
    }
#endif
    st[0] = xs; st[1] = ys;
    LNC_QND_LOOP(rank, shape, 2, st, {
        const float *xp = j->x + off_[0];
        uint8_t *yp = j->y + off_[1];
        long i = lo;
#if defined(LNC_QAVX2)
        if (sx == 1) {
            for (; i + 8 <= hi; i += 8) {
                const __m128i b =
                    lnc_quant8(_mm256_div_ps(_mm256_loadu_ps(xp + i), vs), vlo, vhi, vz, y_signed);
                if (sy == 1) {
                    _mm_storel_epi64((__m128i *)(yp + i), b);
                } else {
                    uint8_t tb[16];
                    int k;
                    _mm_storeu_si128((__m128i *)tb, b);
                    for (k = 0; k < 8; k++) yp[(i + k) * sy] = tb[k];
                }
            }
        }
#endif
        for (; i < hi; i++) yp[i * sy] = lnc_quant1(xp[i * sx] / scale, qlo, qhi, zp);
    });
}

static void lnc_quantize_part(void *ctx, int part, int tid) {
    const lnc_quant_job *j = (const lnc_quant_job *)ctx;
    long lo, hi;
    (void)tid;
    lnc_qchunk(j->shape[j->rank - 1], j->parts, part, 8, &lo, &hi);
    lnc_quantize_range(j, lo, hi);
}

void lnc_quantize_nd(float scale, int zp, int y_signed, int rank, const long *shape,
                     const float *x, const long *xs, uint8_t *y, const long *ys) {
    lnc_quant_job j;
    const long n = shape[rank - 1];
    long total = 1;
    int d;
    const int t = lnc_pool_threads();
    for (d = 0; d < rank; d++) total *= shape[d];
    j.scale = scale; j.zp = zp; j.y_signed = y_signed; j.rank = rank; j.shape = shape;
    j.xs = xs; j.ys = ys; j.x = x; j.y = y;
    /* Large tensors (an input image): split the innermost dimension across the pool. */
    j.parts = t > 1 && total >= 32768 && n >= 64 * t ? 2 * t : 1;
    if (j.parts == 1)
        lnc_quantize_range(&j, 0, n);
    else
        lnc_parallel_for(j.parts, lnc_quantize_part, &j);
}

void lnc_dequantize_nd(float scale, int zp, int x_signed, int rank, const long *shape,
                       const uint8_t *x, const long *xs, float *y, const long *ys) {
    const long *st[2];
    const long n = shape[rank - 1], sx = xs[rank - 1], sy = ys[rank - 1];
    st[0] = xs; st[1] = ys;
    LNC_QND_LOOP(rank, shape, 2, st, {
        const uint8_t *xp = x + off_[0];
        float *yp = y + off_[1];
        long i = 0;
#if defined(LNC_QAVX2)
        if (sx == 1 && sy == 1) {
            const __m256 vs = _mm256_set1_ps(scale);
            const __m256i vz = _mm256_set1_epi32(zp);
            for (; i + 8 <= n; i += 8) {
                const __m128i b = _mm_loadl_epi64((const __m128i *)(xp + i));
                const __m256i v = x_signed ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b);
                _mm256_storeu_ps(yp + i, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(v, vz)), vs));
            }
        }
#endif
        for (; i < n; i++) yp[i * sy] = (float)(lnc_qload(xp + i * sx, x_signed) - zp) * scale;
    });
}

/* y[i] = table[x[i]] over a contiguous row. AVX2: the 16 sixteen-entry slices of the table
 * looked up by the low nibble (pshufb), then selected by bits 4, 5, 6 and 7 of x in a
 * tree of byte blends (vpblendvb reads each byte's top bit: x shifted left by 3, 2, 1, 0).
 * NEON: four 64-entry tbl / tbx lookups. */
static void lnc_lut_row(const uint8_t *table, const uint8_t *x, uint8_t *y, long n) {
    long i = 0;
#if defined(LNC_QAVX2)
    if (n >= 32) {
        __m256i t[16];
        const __m256i low = _mm256_set1_epi8(0x0f);
        int k;
        for (k = 0; k < 16; k++)
            t[k] = _mm256_broadcastsi128_si256(
                _mm_loadu_si128((const __m128i *)(const void *)(table + 16 * k)));
        for (; i + 32 <= n; i += 32) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(x + i));
            const __m256i lo = _mm256_and_si256(v, low);
            const __m256i b4 = _mm256_slli_epi16(v, 3), b5 = _mm256_slli_epi16(v, 2),
                          b6 = _mm256_slli_epi16(v, 1);
            __m256i a[8];
            for (k = 0; k < 8; k++)
                a[k] = _mm256_blendv_epi8(_mm256_shuffle_epi8(t[2 * k], lo),
                                          _mm256_shuffle_epi8(t[2 * k + 1], lo), b4);
            for (k = 0; k < 4; k++) a[k] = _mm256_blendv_epi8(a[2 * k], a[2 * k + 1], b5);
            for (k = 0; k < 2; k++) a[k] = _mm256_blendv_epi8(a[2 * k], a[2 * k + 1], b6);
            _mm256_storeu_si256((__m256i *)(void *)(y + i), _mm256_blendv_epi8(a[0], a[1], v));
        }
    }
#elif defined(LNC_QNEON)
    if (n >= 16) {
        const uint8x16x4_t t0 = vld1q_u8_x4(table), t1 = vld1q_u8_x4(table + 64);
        const uint8x16x4_t t2 = vld1q_u8_x4(table + 128), t3 = vld1q_u8_x4(table + 192);
        const uint8x16_t k64 = vdupq_n_u8(64);
        for (; i + 16 <= n; i += 16) {
            const uint8x16_t v = vld1q_u8(x + i);
            const uint8x16_t v1 = vsubq_u8(v, k64), v2 = vsubq_u8(v1, k64);
            uint8x16_t r = vqtbl4q_u8(t0, v);
            r = vqtbx4q_u8(r, t1, v1);
            r = vqtbx4q_u8(r, t2, v2);
            r = vqtbx4q_u8(r, t3, vsubq_u8(v2, k64));
            vst1q_u8(y + i, r);
        }
    }
#endif
    for (; i < n; i++) y[i] = table[x[i]];
}

/* y = x, or y = table[byte of x] when `table` is not NULL, over the n-d nest. */
static void lnc_bytes_run(const uint8_t *table, int rank, const long *shape, const uint8_t *x,
                          const long *xs, uint8_t *y, const long *ys) {
    const long *st[2];
    const long n = shape[rank - 1], sx = xs[rank - 1], sy = ys[rank - 1];
    st[0] = xs; st[1] = ys;
    LNC_QND_LOOP(rank, shape, 2, st, {
        const uint8_t *xp = x + off_[0];
        uint8_t *yp = y + off_[1];
        long i;
        if (!table && sx == 1 && sy == 1)
            memcpy(yp, xp, (size_t)n);
        else if (!table)
            for (i = 0; i < n; i++) yp[i * sy] = xp[i * sx];
        else if (sx == 1 && sy == 1)
            lnc_lut_row(table, xp, yp, n);
        else
            for (i = 0; i < n; i++) yp[i * sy] = table[xp[i * sx]];
    });
}

typedef struct {
    const uint8_t *table, *x;
    const long *shape, *xs, *ys;
    uint8_t *y;
    int rank, parts;
} lnc_bytes_job;

/* Part `part` of the outermost dimension. */
static void lnc_bytes_part(void *ctx, int part, int tid) {
    const lnc_bytes_job *j = (const lnc_bytes_job *)ctx;
    long sh[6], lo;
    (void)tid;
    if (!lnc_nd_outer_slice(j->rank, j->shape, j->parts, part, j->rank == 1 ? 64 : 1, sh, &lo))
        return;
    lnc_bytes_run(j->table, j->rank, sh, j->x + lo * j->xs[0], j->xs, j->y + lo * j->ys[0],
                  j->ys);
}

static void lnc_bytes_nd(const uint8_t *table, int rank, const long *shape, const uint8_t *x,
                         const long *xs, uint8_t *y, const long *ys) {
    lnc_bytes_job j;
    long total = 1;
    int d;
    for (d = 0; d < rank; d++) total *= shape[d];
    if (rank < 1 || rank > 6 || total == 0) return;
    j.table = table; j.x = x; j.shape = shape; j.xs = xs; j.ys = ys; j.y = y; j.rank = rank;
    /* Large maps: the outermost dimension across the pool. */
    j.parts = lnc_nd_outer_parts(total, shape[0], 65536);
    if (j.parts == 1)
        lnc_bytes_run(table, rank, shape, x, xs, y, ys);
    else
        lnc_parallel_for(j.parts, lnc_bytes_part, &j);
}

void lnc_copy_nd_u8(int rank, const long *shape, const uint8_t *x, const long *xs, uint8_t *y,
                    const long *ys) {
    lnc_bytes_nd(NULL, rank, shape, x, xs, y, ys);
}

/* A tabulated elementwise chain. */
void lnc_qlut_nd(const uint8_t *table, int rank, const long *shape, const uint8_t *x,
                 const long *xs, uint8_t *y, const long *ys) {
    lnc_bytes_nd(table, rank, shape, x, xs, y, ys);
}

/* ----- quantized residual add --------------------------------------------------------- */

typedef struct {
    const lnc_qadd_params *p;
    const uint8_t *a, *b;
    uint8_t *y;
    long n;
    int parts;
} lnc_qadd_job;

/* One element: Q(DQ(a) + DQ(b)). */
static inline uint8_t lnc_qadd1(const lnc_qadd_params *p, const uint8_t *a, const uint8_t *b,
                                float qlo, float qhi) {
    const float fa = (float)(lnc_qload(a, p->a_signed) - p->a_zp) * p->a_scale;
    const float fb = (float)(lnc_qload(b, p->b_signed) - p->b_zp) * p->b_scale;
    return lnc_quant1((p->mul ? fa * fb : fa + fb) / p->y_scale, qlo, qhi, p->y_zp);
}

/* y[i] = Q(DQ(a[i]) + DQ(b[i])) for i in [lo, hi), unit strides. */
static void lnc_qadd_run(const lnc_qadd_params *p, const uint8_t *a, const uint8_t *b,
                         uint8_t *y, long lo, long hi) {
    const float qlo = lnc_qlo(p->y_signed, p->y_zp), qhi = lnc_qhi(p->y_signed, p->y_zp);
    long i = lo;
#if defined(LNC_QAVX2)
    {
        const __m256 sa = _mm256_set1_ps(p->a_scale), sb = _mm256_set1_ps(p->b_scale);
        const __m256 sy = _mm256_set1_ps(p->y_scale);
        const __m256 vlo = _mm256_set1_ps(qlo), vhi = _mm256_set1_ps(qhi);
        const __m256i za = _mm256_set1_epi32(p->a_zp), zb = _mm256_set1_epi32(p->b_zp);
        const __m256i zy = _mm256_set1_epi32(p->y_zp);
        /* Locals: the byte stores may alias *p, which the loop would otherwise reload. */
        const int as = p->a_signed, bs = p->b_signed, ys = p->y_signed, mul = p->mul;
        for (; i + 8 <= hi; i += 8) {
            const __m128i a8 = _mm_loadl_epi64((const __m128i *)(a + i));
            const __m128i b8 = _mm_loadl_epi64((const __m128i *)(b + i));
            const __m256i ai = as ? _mm256_cvtepi8_epi32(a8) : _mm256_cvtepu8_epi32(a8);
            const __m256i bi = bs ? _mm256_cvtepi8_epi32(b8) : _mm256_cvtepu8_epi32(b8);
            const __m256 fa = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(ai, za)), sa);
            const __m256 fb = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(bi, zb)), sb);
            _mm_storel_epi64((__m128i *)(y + i),
                             lnc_quant8(_mm256_div_ps(mul ? _mm256_mul_ps(fa, fb)
                                                          : _mm256_add_ps(fa, fb),
                                                      sy),
                                        vlo, vhi, zy, ys));
        }
    }
#endif
    for (; i < hi; i++) y[i] = lnc_qadd1(p, a + i, b + i, qlo, qhi);
}

static void lnc_qadd_part(void *ctx, int part, int tid) {
    const lnc_qadd_job *j = (const lnc_qadd_job *)ctx;
    long lo, hi;
    (void)tid;
    lnc_qchunk(j->n, j->parts, part, 64, &lo, &hi);
    lnc_qadd_run(j->p, j->a, j->b, j->y, lo, hi);
}

/* The strided case over any rank (<= 6): rows of the innermost dimension. */
static void lnc_qadd_strided(const lnc_qadd_params *p, int rank, const long *shape,
                             const uint8_t *a, const long *as, const uint8_t *b, const long *bs,
                             uint8_t *y, const long *ys) {
    const long *st[3];
    const long n = shape[rank - 1];
    const float qlo = lnc_qlo(p->y_signed, p->y_zp), qhi = lnc_qhi(p->y_signed, p->y_zp);
    st[0] = as; st[1] = bs; st[2] = ys;
    LNC_QND_LOOP(rank, shape, 3, st, {
        const uint8_t *ap = a + off_[0], *bp = b + off_[1];
        uint8_t *yp = y + off_[2];
        if (as[rank - 1] == 1 && bs[rank - 1] == 1 && ys[rank - 1] == 1) {
            lnc_qadd_run(p, ap, bp, yp, 0, n);
        } else {
            long i;
            for (i = 0; i < n; i++)
                yp[i * ys[rank - 1]] =
                    lnc_qadd1(p, ap + i * as[rank - 1], bp + i * bs[rank - 1], qlo, qhi);
        }
    });
}

typedef struct {
    const lnc_qadd_params *p;
    int rank, parts;
    const long *shape, *as, *bs, *ys;
    const uint8_t *a, *b;
    uint8_t *y;
} lnc_qadd_nd_job;

/* A slice of the outermost dimension (rows of a squeeze-and-excitation product, ...). */
static void lnc_qadd_nd_part(void *ctx, int part, int tid) {
    const lnc_qadd_nd_job *j = (const lnc_qadd_nd_job *)ctx;
    long sh[6], lo;
    (void)tid;
    if (!lnc_nd_outer_slice(j->rank, j->shape, j->parts, part, 1, sh, &lo)) return;
    lnc_qadd_strided(j->p, j->rank, sh, j->a + lo * j->as[0], j->as, j->b + lo * j->bs[0],
                     j->bs, j->y + lo * j->ys[0], j->ys);
}

void lnc_qadd_nd(const lnc_qadd_params *p, int rank, const long *shape, const uint8_t *a,
                 const long *as, const uint8_t *b, const long *bs, uint8_t *y, const long *ys) {
    long total = 1;
    int d;
    for (d = 0; d < rank; d++) total *= shape[d];
    if (rank < 1 || rank > 6 || total == 0) return;
    if (rank == 1 && as[0] == 1 && bs[0] == 1 && ys[0] == 1) {
        /* Contiguous (the usual residual add of two same-layout maps): split across the pool. */
        lnc_qadd_job j;
        j.p = p; j.a = a; j.b = b; j.y = y; j.n = shape[0];
        j.parts = lnc_nd_outer_parts(total, shape[0], 16384);
        lnc_parallel_for(j.parts, lnc_qadd_part, &j);
        return;
    }
    {
        /* Large strided ones: the outermost dimension across the pool. */
        lnc_qadd_nd_job j;
        j.p = p; j.rank = rank; j.shape = shape; j.as = as; j.bs = bs; j.ys = ys;
        j.a = a; j.b = b; j.y = y;
        j.parts = lnc_nd_outer_parts(total, shape[0], 16384);
        if (j.parts == 1)
            lnc_qadd_strided(p, rank, shape, a, as, b, bs, y, ys);
        else
            lnc_parallel_for(j.parts, lnc_qadd_nd_part, &j);
    }
}

/* ----- global average pooling of dequantized bytes ----------------------------------- */

void lnc_qglobal_avgpool(long n, long hw, long c, long ldx, int sgn, float scale, int zp,
                         const uint8_t *x, float *y) {
    long i, p, ch;
    for (i = 0; i < n; i++) {
        float *yr = y + i * c;
        const uint8_t *xb = x + i * hw * ldx;
        for (ch = 0; ch < c; ch++) yr[ch] = 0.0f;
        for (p = 0; p < hw; p++) {
            const uint8_t *xp = xb + p * ldx;
            if (sgn)
                for (ch = 0; ch < c; ch++) yr[ch] += (float)((int)(int8_t)xp[ch] - zp) * scale;
            else
                for (ch = 0; ch < c; ch++) yr[ch] += (float)((int)xp[ch] - zp) * scale;
        }
        for (ch = 0; ch < c; ch++) yr[ch] = yr[ch] / (float)hw;
    }
}

/* ----- max pooling --------------------------------------------------------------------- */

typedef struct {
    const lnc_conv *g;
    int sgn;
    const uint8_t *x;
    uint8_t *y;
    int parts;
} lnc_qmp_job;

/* The window of one output pixel, clipped to the input: kernel rows [ky0, ky1), columns
 * [kx0, kx1) (padding never wins a max: ONNX pads with -inf). */
static inline void lnc_qmp_window(long o, int s, int pad, int d, int k, long n, int *k0,
                                  int *k1) {
    const long i0 = o * s - pad;
    int a = 0, b = k;
    while (a < b && i0 + (long)a * d < 0) a++;
    while (b > a && i0 + (long)(b - 1) * d >= n) b--;
    *k0 = a;
    *k1 = b;
}

/* The max over the window of channels [c, c + W) of pixel `base` (W bytes per step). The
 * last chunk of a row may overlap the one before it (max is idempotent). */
#define LNC_QMP_CHUNKS(W, T, LOAD, MAX, STORE, INIT)                                      \
    if (C >= (W)) {                                                                      \
        long c = 0;                                                                      \
        for (;;) {                                                                       \
            T m = INIT;                                                                  \
            for (ky = ky0; ky < ky1; ky++) {                                             \
                const long xr = xo + ky * dh * rs + c;                                   \
                for (kx = kx0; kx < kx1; kx++) m = MAX(m, LOAD(x + (xr + kx * dw * ps)));   \
            }                                                                            \
            STORE(yp + c, m);                                                            \
            if (c + (W) >= C) break;                                                     \
            c = c + 2 * (W) <= C ? c + (W) : C - (W);                                    \
        }                                                                                \
        continue;                                                                        \
    }

/* Output rows [lo, hi) of the flattened (n, oh) index. */
static void lnc_qmaxpool_part(void *ctx, int part, int tid) {
    const lnc_qmp_job *j = (const lnc_qmp_job *)ctx;
    const lnc_conv *g = j->g;
    /* Locals, not fields: the byte and vector stores below may alias the job and the
     * geometry, which the compiler would otherwise reload after each of them. */
    const long C = g->c, ps = g->ldx, rs = g->w * g->ldx, H = g->h, Wd = g->w;
    const long OH = g->oh, OW = g->ow, ldy = g->ldy;
    const int sh = g->sh, sw = g->sw, pt = g->pt, pl = g->pl, dh = g->dh, dw = g->dw;
    const int kh = g->kh, kw = g->kw, sgn = j->sgn;
    const uint8_t *const x = j->x;
    uint8_t *const y = j->y;
    const uint8_t flip = sgn ? 0x80 : 0; /* i8 as order-preserving u8: v ^ 0x80 */
    long r, lo, hi;
    (void)tid;
    (void)flip;
    lnc_qchunk(g->n * OH, j->parts, part, 1, &lo, &hi);
    for (r = lo; r < hi; r++) {
        const long n = r / OH, oh = r % OH;
        int ky0, ky1, kx0, kx1, ky, kx;
        long ow;
        lnc_qmp_window(oh, sh, pt, dh, kh, H, &ky0, &ky1);
        for (ow = 0; ow < OW; ow++) {
            uint8_t *yp = y + ((n * OH + oh) * OW + ow) * ldy;
            /* Offset of the window's (unclipped) corner; may be negative, only in-window
             * offsets are dereferenced. */
            const long xo = ((n * H + oh * sh - pt) * Wd + ow * sw - pl) * ps;
            lnc_qmp_window(ow, sw, pl, dw, kw, Wd, &kx0, &kx1);
#if defined(LNC_QAVX2)
#define LNC_QMP_LD32(P) _mm256_loadu_si256((const __m256i *)(const void *)(P))
#define LNC_QMP_ST32(P, V) _mm256_storeu_si256((__m256i *)(void *)(P), V)
#define LNC_QMP_LD16(P) _mm_loadu_si128((const __m128i *)(const void *)(P))
#define LNC_QMP_ST16(P, V) _mm_storeu_si128((__m128i *)(void *)(P), V)
            if (sgn) {
                LNC_QMP_CHUNKS(32, __m256i, LNC_QMP_LD32, _mm256_max_epi8, LNC_QMP_ST32,
                               _mm256_set1_epi8((char)-128))
                LNC_QMP_CHUNKS(16, __m128i, LNC_QMP_LD16, _mm_max_epi8, LNC_QMP_ST16,
                               _mm_set1_epi8((char)-128))
            } else {
                LNC_QMP_CHUNKS(32, __m256i, LNC_QMP_LD32, _mm256_max_epu8, LNC_QMP_ST32,
                               _mm256_setzero_si256())
                LNC_QMP_CHUNKS(16, __m128i, LNC_QMP_LD16, _mm_max_epu8, LNC_QMP_ST16,
                               _mm_setzero_si128())
            }
#undef LNC_QMP_LD32
#undef LNC_QMP_ST32
#undef LNC_QMP_LD16
#undef LNC_QMP_ST16
#elif defined(LNC_QNEON)
#define LNC_QMP_ST16(P, V) vst1q_u8(P, V)
#define LNC_QMP_ST16S(P, V) vst1q_s8((int8_t *)(void *)(P), V)
#define LNC_QMP_LD16S(P) vld1q_s8((const int8_t *)(const void *)(P))
            if (sgn) {
                LNC_QMP_CHUNKS(16, int8x16_t, LNC_QMP_LD16S, vmaxq_s8, LNC_QMP_ST16S,
                               vdupq_n_s8(-128))
            } else {
                LNC_QMP_CHUNKS(16, uint8x16_t, vld1q_u8, vmaxq_u8, LNC_QMP_ST16, vdupq_n_u8(0))
            }
#undef LNC_QMP_ST16
#undef LNC_QMP_ST16S
#undef LNC_QMP_LD16S
#endif
            {
                /* Fewer than 16 channels (or the portable build): compare order-preserving
                 * bytes. */
                long c;
                for (c = 0; c < C; c++) {
                    uint8_t m = 0;
                    for (ky = ky0; ky < ky1; ky++) {
                        const long xr = xo + ky * dh * rs + c;
                        for (kx = kx0; kx < kx1; kx++) {
                            const uint8_t v = (uint8_t)(x[xr + kx * dw * ps] ^ flip);
                            m = v > m ? v : m;
                        }
                    }
                    yp[c] = (uint8_t)(m ^ flip);
                }
            }
        }
    }
}
#undef LNC_QMP_CHUNKS

void lnc_qmaxpool(const lnc_conv *g, int sgn, const uint8_t *x, uint8_t *y) {
    lnc_qmp_job j;
    const int t = lnc_pool_threads();
    j.g = g; j.sgn = sgn; j.x = x; j.y = y;
    j.parts = t > 1 && g->n * g->oh * g->ow * g->c * g->kh * g->kw >= 65536
                  ? (int)LNC_QMIN(2L * t, g->n * g->oh)
                  : 1;
    lnc_parallel_for(j.parts, lnc_qmaxpool_part, &j);
}

/* ----- channel maps (shuffles, splits, concats as one gather) -------------------------- */

typedef struct {
    long npix, c, ldy, nwin;
    const uint8_t *const *bases;
    const long *lds, *which, *ch, *win;
    const uint8_t *mask;
    uint8_t *y;
    int parts;
} lnc_qcmap_job;

static void lnc_qchannel_map_part(void *ctx, int part, int tid) {
    const lnc_qcmap_job *j = (const lnc_qcmap_job *)ctx;
    /* Locals, not fields: the stores below may alias the job (see lnc_qmaxpool_part). */
    const long c = j->c, ldy = j->ldy, nwin = j->nwin;
    const uint8_t *const *const bases = j->bases;
    const long *const lds = j->lds, *const which = j->which, *const ch = j->ch;
    const long *const win = j->win;
    const uint8_t *const mask = j->mask;
    uint8_t *const y = j->y;
    long p, p0, p1, k;
    (void)tid;
    (void)nwin;
    (void)win;
    (void)mask;
    lnc_qchunk(j->npix, j->parts, part, 1, &p0, &p1);
#if defined(LNC_QAVX2) || defined(LNC_QNEON)
    if (nwin > 0) {
        for (p = p0; p < p1; p++) {
            uint8_t *yp = y + p * ldy;
            k = 0;
            while (k < nwin) {
                const long out = win[3 * k];
#if defined(LNC_QAVX2)
                __m128i acc = _mm_setzero_si128();
                for (; k < nwin && win[3 * k] == out; k++) {
                    const long s = win[3 * k + 1];
                    const __m128i v = _mm_loadu_si128(
                        (const __m128i *)(const void *)(bases[s] + p * lds[s] + win[3 * k + 2]));
                    acc = _mm_or_si128(acc, _mm_shuffle_epi8(v, _mm_loadu_si128(
                                                                  (const __m128i *)(const void *)(mask + 16 * k))));
                }
                _mm_storeu_si128((__m128i *)(void *)(yp + out), acc);
#else
                uint8x16_t acc = vdupq_n_u8(0);
                for (; k < nwin && win[3 * k] == out; k++) {
                    const long s = win[3 * k + 1];
                    const uint8x16_t v = vld1q_u8(bases[s] + p * lds[s] + win[3 * k + 2]);
                    acc = vorrq_u8(acc, vqtbl1q_u8(v, vld1q_u8(mask + 16 * k)));
                }
                vst1q_u8(yp + out, acc);
#endif
            }
        }
        return;
    }
#endif
    for (p = p0; p < p1; p++) {
        uint8_t *yp = y + p * ldy;
        for (k = 0; k < c; k++) yp[k] = bases[which[k]][p * lds[which[k]] + ch[k]];
    }
}

void lnc_qchannel_map(long npix, long c, const uint8_t *const *bases, const long *lds,
                      const long *which, const long *ch, uint8_t *y, long ldy, long nwin,
                      const long *win, const uint8_t *mask) {
    lnc_qcmap_job j;
    const int t = lnc_pool_threads();
    j.npix = npix; j.c = c; j.ldy = ldy; j.nwin = nwin; j.bases = bases; j.lds = lds;
    j.which = which; j.ch = ch; j.win = win; j.mask = mask; j.y = y;
    j.parts = t > 1 && npix * c >= 65536 ? t : 1;
    if (c <= 0) return;
    lnc_parallel_for(j.parts, lnc_qchannel_map_part, &j);
}
