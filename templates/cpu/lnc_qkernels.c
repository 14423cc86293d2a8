/* lnc CPU runtime: integer kernels (see lnc_qkernels.h). Portable C99 with AVX2 variants.
 *
 * Exactness: products are formed as int16 x int16 -> int32 (`_mm256_madd_epi16` on pairs
 * of k, `_mm256_mullo_epi32` in the depthwise kernel): no saturating u8 x s8 instruction
 * (`vpmaddubsw`) is used. Sums wrap modulo 2^32 (unsigned in C), as the reference does.
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

static void lnc_qbounds(const lnc_qparams *q, float *lo, float *hi) {
    *lo = (float)((q->y_signed ? -128 : 0) - q->y_zp);
    *hi = (float)((q->y_signed ? 127 : 255) - q->y_zp);
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

static inline void lnc_qstore16(__m256i a0, __m256i a1, const float *mult, __m256 lo,
                                __m256 hi, __m256i zp, int sgn, uint8_t *y, long n) {
    __m128i h0 = lnc_rq8(a0, mult, lo, hi, zp), h1 = lnc_rq8(a1, mult + 8, lo, hi, zp);
    __m128i b = sgn ? _mm_packs_epi16(h0, h1) : _mm_packus_epi16(h0, h1);
    if (n >= 16) {
        _mm_storeu_si128((__m128i *)y, b);
    } else {
        uint8_t t[16];
        _mm_storeu_si128((__m128i *)t, b);
        memcpy(y, t, (size_t)n);
    }
}

static inline void lnc_qstore8(__m256i a0, const float *mult, __m256 lo, __m256 hi,
                               __m256i zp, int sgn, uint8_t *y) {
    __m128i h0 = lnc_rq8(a0, mult, lo, hi, zp);
    __m128i b = sgn ? _mm_packs_epi16(h0, h0) : _mm_packus_epi16(h0, h0);
    _mm_storel_epi64((__m128i *)y, b);
}
#endif

/* ----- GEMM (pointwise and gathered convolutions) --------------------------------------- */

typedef struct {
    const lnc_conv *g;
    const long *xs;
    const uint8_t *x;
    const uint32_t *w;
    const lnc_qparams *q;
    uint8_t *y;
    uint16_t *tmp;
    long npix, K, KP, panels, cpg, mpg;
    int parts, by_pixels, pw;
} lnc_qg_job;

/* Gather the receptive field of output pixel p (group grp): 2*KP int16 (x - x_zp, zero for
 * padding and past K). */
static void lnc_qgather(const lnc_qg_job *j, long n, long oh, long ow, long grp,
                        uint16_t *ar) {
    const lnc_conv *g = j->g;
    const long *xs = j->xs;
    const int zp = j->q->x_zp, sg = j->q->x_signed;
    const long cpg = j->cpg;
    long c;
    int ky, kx;
    if (j->pw) {
        const uint8_t *xp = j->x + n * xs[0] + oh * xs[2] + ow * xs[3];
        c = 0;
#if defined(LNC_QAVX2)
        {
            const __m256i z = _mm256_set1_epi16((short)zp);
            for (; c + 16 <= cpg; c += 16) {
                __m128i b = _mm_loadu_si128((const __m128i *)(xp + c));
                __m256i v = sg ? _mm256_cvtepi8_epi16(b) : _mm256_cvtepu8_epi16(b);
                _mm256_storeu_si256((__m256i *)(ar + c), _mm256_sub_epi16(v, z));
            }
        }
#endif
        if (sg)
            for (; c < cpg; c++) ar[c] = (uint16_t)(((const int8_t *)xp)[c] - zp);
        else
            for (; c < cpg; c++) ar[c] = (uint16_t)(xp[c] - zp);
        if (cpg & 1) ar[cpg] = 0;
        return;
    }
    {
        /* The kx taps of a row are one contiguous run when x is pixel-major with
         * ld == cpg, columns are not dilated and the run is inside the row. */
        const long iw0 = ow * g->sw - g->pl, seg = g->kw * cpg;
        if (xs[1] == 1 && xs[3] == cpg && g->group == 1 && g->dw == 1 && iw0 >= 0 &&
            iw0 + g->kw <= g->w) {
            for (ky = 0; ky < g->kh; ky++, ar += seg) {
                const long ih = oh * g->sh - g->pt + ky * g->dh;
                const uint8_t *xp = j->x + n * xs[0] + ih * xs[2] + iw0 * xs[3];
                if (ih < 0 || ih >= g->h) {
                    memset(ar, 0, (size_t)seg * sizeof(uint16_t));
                    continue;
                }
#if defined(LNC_QAVX2)
                if (seg >= 8) {
                    /* 8-byte chunks, the last one overlapping (never reads past the run). */
                    const __m128i z = _mm_set1_epi16((short)zp);
                    for (c = 0;; c += 8) {
                        __m128i b, v;
                        if (c + 8 > seg) c = seg - 8;
                        b = _mm_loadl_epi64((const __m128i *)(xp + c));
                        v = sg ? _mm_cvtepi8_epi16(b) : _mm_cvtepu8_epi16(b);
                        _mm_storeu_si128((__m128i *)(ar + c), _mm_sub_epi16(v, z));
                        if (c + 8 >= seg) break;
                    }
                    continue;
                }
#endif
                if (sg) {
                    for (c = 0; c < seg; c++) ar[c] = (uint16_t)(((const int8_t *)xp)[c] - zp);
                } else {
                    for (c = 0; c < seg; c++) ar[c] = (uint16_t)(xp[c] - zp);
                }
            }
            if (j->K & 1) ar[0] = 0;
            return;
        }
    }
    for (ky = 0; ky < g->kh; ky++) {
        const long ih = oh * g->sh - g->pt + ky * g->dh;
        for (kx = 0; kx < g->kw; kx++) {
            const long iw = ow * g->sw - g->pl + kx * g->dw;
            if (ih < 0 || ih >= g->h || iw < 0 || iw >= g->w) {
                memset(ar, 0, (size_t)cpg * sizeof(uint16_t));
            } else if (xs[1] == 1) {
                const uint8_t *xp = j->x + n * xs[0] + grp * cpg + ih * xs[2] + iw * xs[3];
                if (sg)
                    for (c = 0; c < cpg; c++) ar[c] = (uint16_t)(((const int8_t *)xp)[c] - zp);
                else
                    for (c = 0; c < cpg; c++) ar[c] = (uint16_t)(xp[c] - zp);
            } else {
                const uint8_t *xp = j->x + n * xs[0] + grp * cpg * xs[1] + ih * xs[2] + iw * xs[3];
                const long s1 = xs[1];
                if (sg)
                    for (c = 0; c < cpg; c++) ar[c] = (uint16_t)(((const int8_t *)xp)[c * s1] - zp);
                else
                    for (c = 0; c < cpg; c++) ar[c] = (uint16_t)(xp[c * s1] - zp);
            }
            ar += cpg;
        }
    }
    if (j->K & 1) ar[0] = 0;
}

/* The k-pair `k` of a gathered row (k even in the low half on every byte order). */
static inline uint32_t lnc_qpair(const uint16_t *a, long k) {
#if defined(LNC_QAVX2)
    uint32_t v; /* x86 is little-endian */
    memcpy(&v, a + 2 * k, sizeof v);
    return v;
#else
    return (uint32_t)a[2 * k] | ((uint32_t)a[2 * k + 1] << 16);
#endif
}

/* Rows a[0..QMR) (KP pairs each; rows >= nr repeat the last valid one) times the packed
 * panel w (KP x QNR pairs), + bias, requantized into nr rows of y (nch channels). */
static void lnc_qmk(long KP, const uint16_t *const *a, const uint32_t *w, const int32_t *bias,
                    const float *mult, const lnc_qparams *q, uint8_t *y, long ldy, long nr,
                    long nch) {
    float lo, hi;
    lnc_qbounds(q, &lo, &hi);
#if defined(LNC_QAVX2)
    if (nr == 1) {
        /* One row (a Gemm / 1x1 classifier on one pixel): bound by the weight stream. */
        const uint16_t *p0 = a[0];
        __m256i c0 = _mm256_loadu_si256((const __m256i *)bias);
        __m256i c1 = _mm256_loadu_si256((const __m256i *)(bias + 8));
        __m256i d0 = _mm256_setzero_si256(), d1 = _mm256_setzero_si256();
        long k = 0;
        for (; k + 2 <= KP; k += 2) {
            const __m256i x0 = _mm256_set1_epi32((int)lnc_qpair(p0, k));
            const __m256i x1 = _mm256_set1_epi32((int)lnc_qpair(p0, k + 1));
            c0 = _mm256_add_epi32(c0, _mm256_madd_epi16(x0, _mm256_loadu_si256((const __m256i *)(w + k * 16))));
            c1 = _mm256_add_epi32(c1, _mm256_madd_epi16(x0, _mm256_loadu_si256((const __m256i *)(w + k * 16 + 8))));
            d0 = _mm256_add_epi32(d0, _mm256_madd_epi16(x1, _mm256_loadu_si256((const __m256i *)(w + k * 16 + 16))));
            d1 = _mm256_add_epi32(d1, _mm256_madd_epi16(x1, _mm256_loadu_si256((const __m256i *)(w + k * 16 + 24))));
        }
        for (; k < KP; k++) {
            const __m256i x0 = _mm256_set1_epi32((int)lnc_qpair(p0, k));
            c0 = _mm256_add_epi32(c0, _mm256_madd_epi16(x0, _mm256_loadu_si256((const __m256i *)(w + k * 16))));
            c1 = _mm256_add_epi32(c1, _mm256_madd_epi16(x0, _mm256_loadu_si256((const __m256i *)(w + k * 16 + 8))));
        }
        lnc_qstore16(_mm256_add_epi32(c0, d0), _mm256_add_epi32(c1, d1), mult, _mm256_set1_ps(lo),
                     _mm256_set1_ps(hi), _mm256_set1_epi32(q->y_zp), q->y_signed, y, nch);
    } else if (nch <= 8) {
        /* Half panel: 8 channels. */
        const uint16_t *p0 = a[0], *p1 = a[1], *p2 = a[2], *p3 = a[3], *p4 = a[4], *p5 = a[5];
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)bias);
        __m256i c0 = b0, c1 = b0, c2 = b0, c3 = b0, c4 = b0, c5 = b0;
        const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
        const __m256i vz = _mm256_set1_epi32(q->y_zp);
        long k;
        uint8_t t[16];
        for (k = 0; k < KP; k++) {
            const __m256i w0 = _mm256_loadu_si256((const __m256i *)(w + k * 16));
            c0 = _mm256_add_epi32(c0, _mm256_madd_epi16(_mm256_set1_epi32((int)lnc_qpair(p0, k)), w0));
            c1 = _mm256_add_epi32(c1, _mm256_madd_epi16(_mm256_set1_epi32((int)lnc_qpair(p1, k)), w0));
            c2 = _mm256_add_epi32(c2, _mm256_madd_epi16(_mm256_set1_epi32((int)lnc_qpair(p2, k)), w0));
            c3 = _mm256_add_epi32(c3, _mm256_madd_epi16(_mm256_set1_epi32((int)lnc_qpair(p3, k)), w0));
            c4 = _mm256_add_epi32(c4, _mm256_madd_epi16(_mm256_set1_epi32((int)lnc_qpair(p4, k)), w0));
            c5 = _mm256_add_epi32(c5, _mm256_madd_epi16(_mm256_set1_epi32((int)lnc_qpair(p5, k)), w0));
        }
#define LNC_QST8(C, R)                                                        \
    if (nr > R) {                                                             \
        lnc_qstore8(C, mult, vlo, vhi, vz, q->y_signed, t);                   \
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
        const uint16_t *p0 = a[0], *p1 = a[1], *p2 = a[2], *p3 = a[3], *p4 = a[4], *p5 = a[5];
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)bias);
        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(bias + 8));
        __m256i c00 = b0, c01 = b1, c10 = b0, c11 = b1, c20 = b0, c21 = b1;
        __m256i c30 = b0, c31 = b1, c40 = b0, c41 = b1, c50 = b0, c51 = b1;
        const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
        const __m256i vz = _mm256_set1_epi32(q->y_zp);
        long k;
        for (k = 0; k < KP; k++) {
            const __m256i w0 = _mm256_loadu_si256((const __m256i *)(w + k * 16));
            const __m256i w1 = _mm256_loadu_si256((const __m256i *)(w + k * 16 + 8));
            __m256i x;
#define LNC_QROW(P, C0, C1)                                       \
    x = _mm256_set1_epi32((int)lnc_qpair(P, k));                  \
    C0 = _mm256_add_epi32(C0, _mm256_madd_epi16(x, w0));          \
    C1 = _mm256_add_epi32(C1, _mm256_madd_epi16(x, w1));
            LNC_QROW(p0, c00, c01)
            LNC_QROW(p1, c10, c11)
            LNC_QROW(p2, c20, c21)
            LNC_QROW(p3, c30, c31)
            LNC_QROW(p4, c40, c41)
            LNC_QROW(p5, c50, c51)
#undef LNC_QROW
        }
        lnc_qstore16(c00, c01, mult, vlo, vhi, vz, q->y_signed, y, nch);
        if (nr > 1) lnc_qstore16(c10, c11, mult, vlo, vhi, vz, q->y_signed, y + ldy, nch);
        if (nr > 2) lnc_qstore16(c20, c21, mult, vlo, vhi, vz, q->y_signed, y + 2 * ldy, nch);
        if (nr > 3) lnc_qstore16(c30, c31, mult, vlo, vhi, vz, q->y_signed, y + 3 * ldy, nch);
        if (nr > 4) lnc_qstore16(c40, c41, mult, vlo, vhi, vz, q->y_signed, y + 4 * ldy, nch);
        if (nr > 5) lnc_qstore16(c50, c51, mult, vlo, vhi, vz, q->y_signed, y + 5 * ldy, nch);
    }
#elif defined(LNC_QNEON)
    {
        int32x4_t c[LNC_QMR][4];
        long k, r;
        const int32x4_t b0 = vld1q_s32(bias), b1 = vld1q_s32(bias + 4);
        const int32x4_t b2 = vld1q_s32(bias + 8), b3 = vld1q_s32(bias + 12);
        const float32x4_t vlo = vdupq_n_f32(lo), vhi = vdupq_n_f32(hi);
        const int32x4_t vz = vdupq_n_s32(q->y_zp);
        for (r = 0; r < LNC_QMR; r++) {
            c[r][0] = b0; c[r][1] = b1; c[r][2] = b2; c[r][3] = b3;
        }
        for (k = 0; k < KP; k++) {
            /* 16 words (lo: k even, hi: k odd) de-interleaved: val[0] even k, val[1] odd k. */
            const int16x8x2_t w0 = vld2q_s16((const int16_t *)(const void *)(w + k * 16));
            const int16x8x2_t w1 = vld2q_s16((const int16_t *)(const void *)(w + k * 16 + 8));
            for (r = 0; r < LNC_QMR; r++) {
                const int16x4_t av = vreinterpret_s16_u32(
                    vdup_n_u32((uint32_t)a[r][2 * k] | ((uint32_t)a[r][2 * k + 1] << 16)));
                c[r][0] = vmlal_lane_s16(c[r][0], vget_low_s16(w0.val[0]), av, 0);
                c[r][1] = vmlal_lane_s16(c[r][1], vget_high_s16(w0.val[0]), av, 0);
                c[r][2] = vmlal_lane_s16(c[r][2], vget_low_s16(w1.val[0]), av, 0);
                c[r][3] = vmlal_lane_s16(c[r][3], vget_high_s16(w1.val[0]), av, 0);
                c[r][0] = vmlal_lane_s16(c[r][0], vget_low_s16(w0.val[1]), av, 1);
                c[r][1] = vmlal_lane_s16(c[r][1], vget_high_s16(w0.val[1]), av, 1);
                c[r][2] = vmlal_lane_s16(c[r][2], vget_low_s16(w1.val[1]), av, 1);
                c[r][3] = vmlal_lane_s16(c[r][3], vget_high_s16(w1.val[1]), av, 1);
            }
        }
        for (r = 0; r < nr; r++) {
            int16x4_t h[4];
            uint8_t t[16];
            int u;
            for (u = 0; u < 4; u++) {
                float32x4_t f = vmulq_f32(vcvtq_f32_s32(c[r][u]), vld1q_f32(mult + 4 * u));
                f = vminq_f32(vmaxq_f32(f, vlo), vhi);
                h[u] = vqmovn_s32(vaddq_s32(vcvtnq_s32_f32(f), vz));
            }
            {
                const int16x8_t h0 = vcombine_s16(h[0], h[1]), h1 = vcombine_s16(h[2], h[3]);
                if (q->y_signed) {
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
        long k, r, jj;
        for (r = 0; r < LNC_QMR; r++)
            for (jj = 0; jj < LNC_QNR; jj++) acc[r][jj] = (uint32_t)bias[jj];
        for (k = 0; k < KP; k++) {
            int32_t wl[LNC_QNR], wh[LNC_QNR];
            for (jj = 0; jj < LNC_QNR; jj++) {
                wl[jj] = lnc_s16(w[k * LNC_QNR + jj]);
                wh[jj] = lnc_s16(w[k * LNC_QNR + jj] >> 16);
            }
            for (r = 0; r < nr; r++) {
                const int32_t al = lnc_s16(a[r][2 * k]), ah = lnc_s16(a[r][2 * k + 1]);
                for (jj = 0; jj < LNC_QNR; jj++)
                    acc[r][jj] += (uint32_t)(al * wl[jj] + ah * wh[jj]);
            }
        }
        for (r = 0; r < nr; r++)
            for (jj = 0; jj < nch; jj++)
                y[r * ldy + jj] = lnc_rq1(acc[r][jj], mult[jj], lo, hi, q->y_zp);
    }
#endif
}

static void lnc_qg_part(void *ctx, int part, int tid) {
    const lnc_qg_job *j = (const lnc_qg_job *)ctx;
    const lnc_conv *g = j->g;
    const long KP = j->KP;
    uint16_t *a = j->tmp + (long)tid * LNC_QROWS * 2 * KP;
    long p0 = 0, p1 = j->npix, q0 = 0, q1 = j->panels, pb, grp, qi, r;
    if (j->by_pixels)
        lnc_qchunk(j->npix, j->parts, part, LNC_QMR, &p0, &p1);
    else
        lnc_qchunk(j->panels, j->parts, part, 1, &q0, &q1);
    for (pb = p0; pb < p1; pb += LNC_QROWS) {
        const long rows = LNC_QMIN(LNC_QROWS, p1 - pb);
        for (grp = 0; grp < g->group; grp++) {
            {
                const long plane = g->oh * g->ow;
                long n = pb / plane, oh = (pb % plane) / g->ow, ow = pb % g->ow;
                for (r = 0; r < rows; r++) {
                    lnc_qgather(j, n, oh, ow, grp, a + r * 2 * KP);
                    if (++ow == g->ow) {
                        ow = 0;
                        if (++oh == g->oh) { oh = 0; n++; }
                    }
                }
            }
            for (qi = q0; qi < q1; qi++) {
                const long pan = grp * j->panels + qi;
                const uint32_t *wq = j->w + pan * KP * LNC_QNR;
                const long ch0 = grp * j->mpg + qi * LNC_QNR;
                const long nch = LNC_QMIN(LNC_QNR, j->mpg - qi * LNC_QNR);
                long rb;
                for (rb = 0; rb < rows; rb += LNC_QMR) {
                    const long nr = LNC_QMIN(LNC_QMR, rows - rb);
                    const uint16_t *ap[LNC_QMR];
                    int i;
                    for (i = 0; i < LNC_QMR; i++) ap[i] = a + (rb + LNC_QMIN(i, nr - 1)) * 2 * KP;
                    lnc_qmk(KP, ap, wq, j->q->bias + pan * LNC_QNR, j->q->mult + pan * LNC_QNR,
                            j->q, j->y + (pb + rb) * g->ldy + ch0, g->ldy, nr, nch);
                }
            }
        }
    }
}

void lnc_qconv_gemm(const lnc_conv *g, const long *xs, const uint8_t *x, const uint32_t *w,
                    const lnc_qparams *q, uint8_t *y, uint16_t *tmp) {
    lnc_qg_job j;
    int t = lnc_pool_threads();
    j.g = g; j.xs = xs; j.x = x; j.w = w; j.q = q; j.y = y; j.tmp = tmp;
    j.npix = g->n * g->oh * g->ow;
    j.cpg = g->c / g->group;
    j.mpg = g->m / g->group;
    j.K = g->kh * g->kw * j.cpg;
    j.KP = (j.K + 1) / 2;
    j.panels = (j.mpg + LNC_QNR - 1) / LNC_QNR;
    j.pw = g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 && g->pl == 0 &&
           g->group == 1 && xs[1] == 1;
    /* Few pixels: split the weight panels (each thread streams a part of the weights). */
    j.by_pixels = j.npix >= (long)LNC_QROWS * t || j.panels * g->group < 2 * t || g->group > 1;
    j.parts = 1;
    if (t > 1) {
        if (j.by_pixels)
            j.parts = (int)LNC_QMIN(2 * t, (j.npix + LNC_QMR - 1) / LNC_QMR);
        else
            j.parts = (int)LNC_QMIN(2 * t, j.panels);
    }
    if (j.npix * g->m * j.K < 32768) j.parts = 1;
    lnc_parallel_for(j.parts, lnc_qg_part, &j);
}

/* ----- depthwise ------------------------------------------------------------------------ */

typedef struct {
    const lnc_conv *g;
    const uint8_t *x;
    const uint32_t *w;
    const lnc_qparams *q;
    uint8_t *y;
    int parts;
} lnc_qdw_job;

/* Position of channel c in the depthwise packing: full blocks of 16 channels are stored as
 * [0-3, 8-11, 4-7, 12-15] (the lane order of unpacklo/unpackhi), the rest in order. */
static inline long lnc_dwpos(long c, long C) {
    const long b = c & ~15L, j = c & 15;
    if (b + 16 > C) return c;
    return b + ((j >= 4 && j < 8) ? j + 4 : ((j >= 8 && j < 12) ? j - 4 : j));
}

#define LNC_QDW_MAXTAPS 64

#if defined(LNC_QAVX2)
#if defined(__GNUC__)
#define LNC_QINLINE static inline __attribute__((always_inline))
#else
#define LNC_QINLINE static inline
#endif

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
#endif

static void lnc_qdw_part(void *ctx, int part, int tid) {
    const lnc_qdw_job *j = (const lnc_qdw_job *)ctx;
    const lnc_conv *g = j->g;
    const lnc_qparams *q = j->q;
    const long C = g->c, T = (long)g->kh * g->kw, TP = (T + 1) / 2;
    const int sg = q->x_signed, zp = q->x_zp;
    float lo, hi;
    long r0, r1, row, ow;
    (void)tid;
    lnc_qbounds(q, &lo, &hi);
    lnc_qchunk(g->n * g->oh, j->parts, part, 1, &r0, &r1);
    for (row = r0; row < r1; row++) {
        const long n = row / g->oh, oh = row % g->oh;
        long iv0 = g->ow, iv1 = g->ow, cfast = 0; /* interior pixels [iv0, iv1), channels < cfast */
#if defined(LNC_QAVX2)
        {
            const long ih0 = oh * g->sh - g->pt;
            if (T <= 10 && C >= 16 && ih0 >= 0 && ih0 + (g->kh - 1) * g->dh < g->h) {
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
        for (ow = 0; ow < g->ow; ow++) {
            /* Input pixel of every tap (NULL: padding), TP pairs. */
            const uint8_t *tap[LNC_QDW_MAXTAPS + 1];
            uint8_t *yp = j->y + (row * g->ow + ow) * g->ldy;
            long t, c = (ow >= iv0 && ow < iv1) ? cfast : 0;
            if (c >= C) continue;
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
                for (; c + 16 <= C; c += 16) {
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
                for (; c + 8 <= C; c += 8) {
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
            for (; c < C; c++) {
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
    if (g->n * g->oh * g->ow * g->c * g->kh * g->kw < 16384) j.parts = 1;
    lnc_parallel_for(j.parts, lnc_qdw_part, &j);
}

/* ----- n-d strided loops ------------------------------------------------------------------ */

/* Odometer over the first rank-1 dims (as in lnc_kernels.c). */
#define LNC_QND_LOOP(rank, shape, NOPS, strides, ...)                                     \
    do {                                                                                  \
        long idx_[6] = {0, 0, 0, 0, 0, 0};                                                \
        long off_[2] = {0, 0};                                                            \
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

void lnc_quantize_nd(float scale, int zp, int y_signed, int rank, const long *shape,
                     const float *x, const long *xs, uint8_t *y, const long *ys) {
    const long *st[2];
    const long n = shape[rank - 1], sx = xs[rank - 1], sy = ys[rank - 1];
    const float lo = (float)((y_signed ? -128 : 0) - zp);
    const float hi = (float)((y_signed ? 127 : 255) - zp);
    st[0] = xs; st[1] = ys;
    LNC_QND_LOOP(rank, shape, 2, st, {
        const float *xp = x + off_[0];
        uint8_t *yp = y + off_[1];
        long i = 0;
#if defined(LNC_QAVX2)
        if (sx == 1) {
            const __m256 vs = _mm256_set1_ps(scale), vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
            const __m256i vz = _mm256_set1_epi32(zp);
            for (; i + 8 <= n; i += 8) {
                __m256 t = _mm256_div_ps(_mm256_loadu_ps(xp + i), vs);
                const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(t, t, _CMP_UNORD_Q));
                __m256i q;
                __m128i h, b;
                t = _mm256_min_ps(_mm256_max_ps(t, vlo), vhi);
                q = _mm256_add_epi32(_mm256_andnot_si256(nan, _mm256_cvtps_epi32(t)), vz);
                h = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
                b = y_signed ? _mm_packs_epi16(h, h) : _mm_packus_epi16(h, h);
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
        for (; i < n; i++) {
            float t = xp[i * sx] / scale;
            if (t != t) {
                yp[i * sy] = (uint8_t)zp;
            } else {
                t = t < lo ? lo : (t > hi ? hi : t);
                yp[i * sy] = (uint8_t)((int)nearbyintf(t) + zp);
            }
        }
    });
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

void lnc_copy_nd_u8(int rank, const long *shape, const uint8_t *x, const long *xs, uint8_t *y,
                    const long *ys) {
    const long *st[2];
    const long n = shape[rank - 1], sx = xs[rank - 1], sy = ys[rank - 1];
    st[0] = xs; st[1] = ys;
    LNC_QND_LOOP(rank, shape, 2, st, {
        const uint8_t *xp = x + off_[0];
        uint8_t *yp = y + off_[1];
        long i;
        if (sx == 1 && sy == 1)
            memcpy(yp, xp, (size_t)n);
        else
            for (i = 0; i < n; i++) yp[i * sy] = xp[i * sx];
    });
}

/* ----- max pooling --------------------------------------------------------------------- */

typedef struct {
    const lnc_conv *g;
    int sgn;
    const uint8_t *x;
    uint8_t *y;
    int parts;
} lnc_qmp_job;

/* Output rows [lo, hi) of the flattened (n, oh) index. */
static void lnc_qmaxpool_part(void *ctx, int part, int tid) {
    const lnc_qmp_job *j = (const lnc_qmp_job *)ctx;
    const lnc_conv *g = j->g;
    long r, lo, hi;
    (void)tid;
    lnc_qchunk(g->n * g->oh, j->parts, part, 1, &lo, &hi);
    for (r = lo; r < hi; r++) {
        const long n = r / g->oh, oh = r % g->oh;
        long ow;
        for (ow = 0; ow < g->ow; ow++) {
            uint8_t *yp = j->y + ((n * g->oh + oh) * g->ow + ow) * g->ldy;
            long c = 0;
            int ky, kx;
#if defined(LNC_QAVX2)
            for (; c + 32 <= g->c; c += 32) {
                __m256i m = _mm256_set1_epi8(j->sgn ? (char)-128 : 0);
                for (ky = 0; ky < g->kh; ky++) {
                    const long ih = oh * g->sh - g->pt + ky * g->dh;
                    if (ih < 0 || ih >= g->h) continue;
                    for (kx = 0; kx < g->kw; kx++) {
                        const long iw = ow * g->sw - g->pl + kx * g->dw;
                        __m256i v;
                        if (iw < 0 || iw >= g->w) continue;
                        v = _mm256_loadu_si256(
                            (const __m256i *)(j->x + ((n * g->h + ih) * g->w + iw) * g->ldx + c));
                        m = j->sgn ? _mm256_max_epi8(m, v) : _mm256_max_epu8(m, v);
                    }
                }
                _mm256_storeu_si256((__m256i *)(yp + c), m);
            }
#endif
            for (; c < g->c; c++) {
                int m = j->sgn ? -128 : 0;
                for (ky = 0; ky < g->kh; ky++) {
                    const long ih = oh * g->sh - g->pt + ky * g->dh;
                    if (ih < 0 || ih >= g->h) continue;
                    for (kx = 0; kx < g->kw; kx++) {
                        const long iw = ow * g->sw - g->pl + kx * g->dw;
                        int v;
                        if (iw < 0 || iw >= g->w) continue;
                        v = lnc_qload(j->x + ((n * g->h + ih) * g->w + iw) * g->ldx + c, j->sgn);
                        if (v > m) m = v;
                    }
                }
                yp[c] = (uint8_t)m;
            }
        }
    }
}

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

void lnc_qchannel_map(long npix, long c, const uint8_t *const *bases, const long *lds,
                      const long *which, const long *ch, uint8_t *y, long ldy) {
    long p, j;
    for (p = 0; p < npix; p++) {
        uint8_t *yp = y + p * ldy;
        for (j = 0; j < c; j++) yp[j] = bases[which[j]][p * lds[which[j]] + ch[j]];
    }
}
