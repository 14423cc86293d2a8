/* lnc CPU runtime kernels (see lnc_kernels.h). Portable C99 with optional intrinsics. */
#define _POSIX_C_SOURCE 200809L
#include "lnc_kernels.h"

#include <math.h>
#include <string.h>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define LNC_AVX2 1
#endif
#if defined(__ARM_NEON)
#include <arm_neon.h>
#define LNC_NEON 1
#endif

#define LNC_MIN(a, b) ((a) < (b) ? (a) : (b))

/* ----- thread pool ------------------------------------------------------------------ */

#if LNC_THREADS > 1
#include <pthread.h>
#include <sched.h>

static struct {
    int threads;
    pthread_t tid[LNC_THREADS];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    void (*fn)(void *, int);
    void *ctx;
    int n;
    volatile int gen;  /* bumped per job (atomic builtins) */
    volatile int next; /* next task index */
    volatile int done; /* tasks finished */
    volatile int stop;
    int sleepers;
} lnc_pool;

static void lnc_pool_work(void) {
    for (;;) {
        int i = __atomic_fetch_add(&lnc_pool.next, 1, __ATOMIC_ACQ_REL);
        if (i >= lnc_pool.n) return;
        lnc_pool.fn(lnc_pool.ctx, i);
        __atomic_fetch_add(&lnc_pool.done, 1, __ATOMIC_ACQ_REL);
    }
}

static void *lnc_pool_main(void *arg) {
    int seen = 0;
    (void)arg;
    for (;;) {
        int spins = 0;
        int g;
        while ((g = __atomic_load_n(&lnc_pool.gen, __ATOMIC_ACQUIRE)) == seen) {
            if (__atomic_load_n(&lnc_pool.stop, __ATOMIC_ACQUIRE)) return NULL;
            if (++spins < 200000) continue;
            pthread_mutex_lock(&lnc_pool.mu);
            lnc_pool.sleepers++;
            while (__atomic_load_n(&lnc_pool.gen, __ATOMIC_ACQUIRE) == seen &&
                   !__atomic_load_n(&lnc_pool.stop, __ATOMIC_ACQUIRE))
                pthread_cond_wait(&lnc_pool.cv, &lnc_pool.mu);
            lnc_pool.sleepers--;
            pthread_mutex_unlock(&lnc_pool.mu);
            spins = 0;
        }
        seen = g;
        lnc_pool_work();
    }
}

int lnc_pool_start(int threads) {
    int t;
    if (threads > LNC_THREADS) threads = LNC_THREADS;
    if (lnc_pool.threads > 0) return lnc_pool.threads;
    if (threads < 1) threads = 1;
    pthread_mutex_init(&lnc_pool.mu, NULL);
    pthread_cond_init(&lnc_pool.cv, NULL);
    lnc_pool.stop = 0;
    lnc_pool.threads = 1;
    for (t = 1; t < threads; t++) {
        if (pthread_create(&lnc_pool.tid[t], NULL, lnc_pool_main, NULL) != 0) break;
        lnc_pool.threads++;
    }
    return lnc_pool.threads;
}

void lnc_pool_stop(void) {
    int t;
    if (lnc_pool.threads <= 1) { lnc_pool.threads = 0; return; }
    pthread_mutex_lock(&lnc_pool.mu);
    __atomic_store_n(&lnc_pool.stop, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&lnc_pool.cv);
    pthread_mutex_unlock(&lnc_pool.mu);
    for (t = 1; t < lnc_pool.threads; t++) pthread_join(lnc_pool.tid[t], NULL);
    lnc_pool.threads = 0;
}

int lnc_pool_threads(void) { return lnc_pool.threads > 0 ? lnc_pool.threads : 1; }

void lnc_parallel_for(int n, void (*fn)(void *, int), void *ctx) {
    int i;
    if (lnc_pool.threads <= 1 || n <= 1) {
        for (i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    lnc_pool.fn = fn;
    lnc_pool.ctx = ctx;
    lnc_pool.n = n;
    __atomic_store_n(&lnc_pool.done, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&lnc_pool.next, 0, __ATOMIC_RELEASE);
    __atomic_fetch_add(&lnc_pool.gen, 1, __ATOMIC_ACQ_REL);
    pthread_mutex_lock(&lnc_pool.mu);
    if (lnc_pool.sleepers > 0) pthread_cond_broadcast(&lnc_pool.cv);
    pthread_mutex_unlock(&lnc_pool.mu);
    lnc_pool_work();
    while (__atomic_load_n(&lnc_pool.done, __ATOMIC_ACQUIRE) < n) {
    }
}
#else
int lnc_pool_start(int threads) { (void)threads; return 1; }
void lnc_pool_stop(void) {}
int lnc_pool_threads(void) { return 1; }
void lnc_parallel_for(int n, void (*fn)(void *, int), void *ctx) {
    int i;
    for (i = 0; i < n; i++) fn(ctx, i);
}
#endif

/* Split `total` items into `parts` contiguous chunks; chunk i is [*lo, *hi). */
static void lnc_chunk(long total, int parts, int i, long align, long *lo, long *hi) {
    long units = (total + align - 1) / align;
    long per = units / parts, extra = units % parts;
    long u0 = i * per + (i < extra ? i : extra);
    long u1 = u0 + per + (i < extra ? 1 : 0);
    *lo = LNC_MIN(u0 * align, total);
    *hi = LNC_MIN(u1 * align, total);
}

/* ----- activations and epilogues --------------------------------------------------- */

static float lnc_act1(int act, float a, float b, float v) {
    switch (act) {
    case LNC_ACT_RELU: return v < 0.0f ? 0.0f : v;
    case LNC_ACT_CLIP: return v < a ? a : (v > b ? b : v);
    case LNC_ACT_HARDSWISH: {
        float t = (1.0f / 6.0f) * v + 0.5f;
        t = t < 0.0f ? 0.0f : (t > 1.0f ? 1.0f : t);
        return v * t;
    }
    case LNC_ACT_HARDSIGMOID: {
        float t = a * v + b;
        return t < 0.0f ? 0.0f : (t > 1.0f ? 1.0f : t);
    }
    case LNC_ACT_SIGMOID: return 1.0f / (1.0f + expf(-v));
    case LNC_ACT_SILU: return v * (1.0f / (1.0f + expf(-v)));
    case LNC_ACT_LEAKYRELU: return v > 0.0f ? v : v * a;
    case LNC_ACT_ELU: return v > 0.0f ? v : a * (expf(v) - 1.0f);
    case LNC_ACT_TANH: return tanhf(v);
    case LNC_ACT_EXP: return expf(v);
    case LNC_ACT_LOG: return logf(v);
    case LNC_ACT_SQRT: return sqrtf(v);
    case LNC_ACT_NEG: return -v;
    case LNC_ACT_ABS: return fabsf(v);
    case LNC_ACT_FLOOR: return floorf(v);
    case LNC_ACT_CEIL: return ceilf(v);
    case LNC_ACT_ROUND: return nearbyintf(v);
    case LNC_ACT_RECIPROCAL: return 1.0f / v;
    case LNC_ACT_SIGN: return v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : v);
    case LNC_ACT_SOFTPLUS:
        if (v != v) return v;
        return (v > 0.0f ? v : 0.0f) + log1pf(expf(-fabsf(v)));
    case LNC_ACT_SOFTSIGN: return v / (1.0f + fabsf(v));
    default: return v;
    }
}

/* y[j] = epilogue(acc[j] + bias[j]) for channels ch0..ch0+n; r is the residual row. */
static void lnc_epi_row(const lnc_epi *e, const float *acc, long n, long ch0,
                        const float *bias, float *y, const float *r) {
    long j;
    const float a = e->a, b = e->b;
    float t[64];
    while (n > 0) {
        long nb = LNC_MIN(n, 64);
        for (j = 0; j < nb; j++) t[j] = acc[j] + (bias ? bias[ch0 + j] : 0.0f);
        if (e->res_mode == 1)
            for (j = 0; j < nb; j++) t[j] += r[j];
        switch (e->act) {
        case LNC_ACT_IDENTITY: break;
        case LNC_ACT_RELU:
            for (j = 0; j < nb; j++) t[j] = t[j] < 0.0f ? 0.0f : t[j];
            break;
        case LNC_ACT_CLIP:
            for (j = 0; j < nb; j++) t[j] = t[j] < a ? a : (t[j] > b ? b : t[j]);
            break;
        case LNC_ACT_HARDSWISH:
            for (j = 0; j < nb; j++) {
                float s = (1.0f / 6.0f) * t[j] + 0.5f;
                s = s < 0.0f ? 0.0f : (s > 1.0f ? 1.0f : s);
                t[j] = t[j] * s;
            }
            break;
        case LNC_ACT_PRELU:
            for (j = 0; j < nb; j++) t[j] = t[j] < 0.0f ? t[j] * e->slope[ch0 + j] : t[j];
            break;
        default:
            for (j = 0; j < nb; j++) t[j] = lnc_act1(e->act, a, b, t[j]);
            break;
        }
        if (e->res_mode == 2)
            for (j = 0; j < nb; j++) t[j] += r[j];
        for (j = 0; j < nb; j++) y[j] = t[j];
        n -= nb;
        acc += nb;
        ch0 += nb;
        y += nb;
        if (r) r += nb;
    }
}

/* ----- pointwise convolution: packed GEMM ------------------------------------------ */

typedef struct {
    const lnc_conv *g;
    const float *x, *w, *bias;
    float *y;
    const lnc_epi *e;
    long npix, panels;
    int parts, by_pixels;
} lnc_pw_job;

#if defined(LNC_AVX2) && !defined(__AVX512F__)
#define LNC_MR 6
#define LNC_PW_FUSED 1

/* Epilogue of 8 channels starting at `ch` (bias already added); `r`: residual or NULL. */
static inline __m256 lnc_epi_v8(const lnc_epi *e, __m256 v, long ch, const float *r) {
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
    if (e->res_mode == 1) v = _mm256_add_ps(v, _mm256_loadu_ps(r));
    switch (e->act) {
    case LNC_ACT_IDENTITY: break;
    case LNC_ACT_RELU: v = _mm256_max_ps(zero, v); break;
    case LNC_ACT_CLIP:
        v = _mm256_min_ps(_mm256_set1_ps(e->b), _mm256_max_ps(_mm256_set1_ps(e->a), v));
        break;
    case LNC_ACT_HARDSWISH: {
        __m256 t = _mm256_fmadd_ps(v, _mm256_set1_ps(1.0f / 6.0f), _mm256_set1_ps(0.5f));
        t = _mm256_min_ps(one, _mm256_max_ps(zero, t));
        v = _mm256_mul_ps(v, t);
        break;
    }
    case LNC_ACT_HARDSIGMOID: {
        __m256 t = _mm256_fmadd_ps(v, _mm256_set1_ps(e->a), _mm256_set1_ps(e->b));
        v = _mm256_min_ps(one, _mm256_max_ps(zero, t));
        break;
    }
    case LNC_ACT_PRELU: {
        __m256 neg = _mm256_cmp_ps(v, zero, _CMP_LT_OQ);
        v = _mm256_blendv_ps(v, _mm256_mul_ps(v, _mm256_loadu_ps(e->slope + ch)), neg);
        break;
    }
    case LNC_ACT_LEAKYRELU: {
        __m256 pos = _mm256_cmp_ps(v, zero, _CMP_GT_OQ);
        v = _mm256_blendv_ps(_mm256_mul_ps(v, _mm256_set1_ps(e->a)), v, pos);
        break;
    }
    default: {
        float t[8];
        int j;
        _mm256_storeu_ps(t, v);
        for (j = 0; j < 8; j++) t[j] = lnc_act1(e->act, e->a, e->b, t[j]);
        v = _mm256_loadu_ps(t);
        break;
    }
    }
    if (e->res_mode == 2) v = _mm256_add_ps(v, _mm256_loadu_ps(r));
    return v;
}

/* Store 8 lanes of `v` as channels ch..ch+n of row y (n <= 8) through the epilogue. */
static inline void lnc_epi_store8(const lnc_epi *e, __m256 acc, const float *bias, long ch,
                                  long n, float *y, const float *r) {
    if (n >= 8) {
        __m256 v = bias ? _mm256_add_ps(acc, _mm256_loadu_ps(bias + ch)) : acc;
        _mm256_storeu_ps(y, lnc_epi_v8(e, v, ch, r));
    } else if (n > 0) {
        float t[8];
        _mm256_storeu_ps(t, acc);
        lnc_epi_row(e, t, n, ch, bias, y, r);
    }
}

/* One 6x16 tile: rows of x (stride ldx) times a packed panel [K][16], epilogue, store. */
static void lnc_pw_tile_fused(long rows, long K, const float *x, long ldx, const float *w,
                              const float *bias, const lnc_epi *e, long ch0, long nch,
                              float *y, long ldy) {
    const float *x0 = x, *x1 = rows > 1 ? x + ldx : x, *x2 = rows > 2 ? x + 2 * ldx : x;
    const float *x3 = rows > 3 ? x + 3 * ldx : x, *x4 = rows > 4 ? x + 4 * ldx : x;
    const float *x5 = rows > 5 ? x + 5 * ldx : x;
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    long k;
    for (k = 0; k < K; k++) {
        __m256 b0 = _mm256_loadu_ps(w + k * 16), b1 = _mm256_loadu_ps(w + k * 16 + 8);
        __m256 a;
        a = _mm256_broadcast_ss(x0 + k);
        c00 = _mm256_fmadd_ps(a, b0, c00); c01 = _mm256_fmadd_ps(a, b1, c01);
        a = _mm256_broadcast_ss(x1 + k);
        c10 = _mm256_fmadd_ps(a, b0, c10); c11 = _mm256_fmadd_ps(a, b1, c11);
        a = _mm256_broadcast_ss(x2 + k);
        c20 = _mm256_fmadd_ps(a, b0, c20); c21 = _mm256_fmadd_ps(a, b1, c21);
        a = _mm256_broadcast_ss(x3 + k);
        c30 = _mm256_fmadd_ps(a, b0, c30); c31 = _mm256_fmadd_ps(a, b1, c31);
        a = _mm256_broadcast_ss(x4 + k);
        c40 = _mm256_fmadd_ps(a, b0, c40); c41 = _mm256_fmadd_ps(a, b1, c41);
        a = _mm256_broadcast_ss(x5 + k);
        c50 = _mm256_fmadd_ps(a, b0, c50); c51 = _mm256_fmadd_ps(a, b1, c51);
    }
    {
        const __m256 lo[6] = {c00, c10, c20, c30, c40, c50};
        const __m256 hi[6] = {c01, c11, c21, c31, c41, c51};
        long r;
        for (r = 0; r < rows; r++) {
            float *yr = y + r * ldy + ch0;
            const float *rr = e->res ? e->res + r * e->ldr + ch0 : NULL;
            lnc_epi_store8(e, lo[r], bias, ch0, nch, yr, rr);
            lnc_epi_store8(e, hi[r], bias, ch0 + 8, nch - 8, yr + 8, rr ? rr + 8 : NULL);
        }
    }
}
#elif defined(__AVX512F__)
#define LNC_MR 8
static void lnc_pw_tile(long rows, long K, const float *x, long ldx, const float *w,
                        float *acc) {
    const float *xr[8];
    __m512 c0[8], c1[8];
    long k;
    int r;
    for (r = 0; r < 8; r++) {
        xr[r] = r < rows ? x + r * ldx : x;
        c0[r] = _mm512_setzero_ps();
        c1[r] = _mm512_setzero_ps();
    }
    for (k = 0; k < K; k++) {
        __m512 b0 = _mm512_loadu_ps(w + k * 32), b1 = _mm512_loadu_ps(w + k * 32 + 16);
        for (r = 0; r < 8; r++) {
            __m512 a = _mm512_set1_ps(xr[r][k]);
            c0[r] = _mm512_fmadd_ps(a, b0, c0[r]);
            c1[r] = _mm512_fmadd_ps(a, b1, c1[r]);
        }
    }
    for (r = 0; r < 8; r++) {
        _mm512_storeu_ps(acc + r * 32, c0[r]);
        _mm512_storeu_ps(acc + r * 32 + 16, c1[r]);
    }
}
#elif defined(LNC_NEON)
#define LNC_MR 6
static void lnc_pw_tile(long rows, long K, const float *x, long ldx, const float *w,
                        float *acc) {
    const float *xr[6];
    float32x4_t c[6][4];
    long k;
    int r, q;
    for (r = 0; r < 6; r++) {
        xr[r] = r < rows ? x + r * ldx : x;
        for (q = 0; q < 4; q++) c[r][q] = vdupq_n_f32(0.0f);
    }
    for (k = 0; k < K; k++) {
        float32x4_t b0 = vld1q_f32(w + k * 16), b1 = vld1q_f32(w + k * 16 + 4);
        float32x4_t b2 = vld1q_f32(w + k * 16 + 8), b3 = vld1q_f32(w + k * 16 + 12);
        for (r = 0; r < 6; r++) {
            float32x4_t a = vdupq_n_f32(xr[r][k]);
            c[r][0] = vfmaq_f32(c[r][0], a, b0);
            c[r][1] = vfmaq_f32(c[r][1], a, b1);
            c[r][2] = vfmaq_f32(c[r][2], a, b2);
            c[r][3] = vfmaq_f32(c[r][3], a, b3);
        }
    }
    for (r = 0; r < 6; r++)
        for (q = 0; q < 4; q++) vst1q_f32(acc + r * 16 + q * 4, c[r][q]);
}
#else
#define LNC_MR 4
static void lnc_pw_tile(long rows, long K, const float *x, long ldx, const float *w,
                        float *acc) {
    long k;
    int r, j;
    for (r = 0; r < LNC_MR * LNC_NR; r++) acc[r] = 0.0f;
    for (r = 0; r < LNC_MR && r < rows; r++) {
        const float *xr = x + r * ldx;
        float *ar = acc + r * LNC_NR;
        for (k = 0; k < K; k++) {
            const float xv = xr[k];
            const float *wk = w + k * LNC_NR;
            for (j = 0; j < LNC_NR; j++) ar[j] += xv * wk[j];
        }
    }
}
#endif

static void lnc_pw_part(void *ctx, int part) {
    const lnc_pw_job *j = (const lnc_pw_job *)ctx;
    const lnc_conv *g = j->g;
    const lnc_epi *e = j->e;
    long p0 = 0, p1 = j->npix, q0 = 0, q1 = j->panels, pb, p, q;
    /* Pixel blocks keep the activations of a block in L2 while every panel passes over it. */
    const long block = LNC_MR * 8;
    if (j->by_pixels)
        lnc_chunk(j->npix, j->parts, part, LNC_MR, &p0, &p1);
    else
        lnc_chunk(j->panels, j->parts, part, 1, &q0, &q1);
    for (pb = p0; pb < p1; pb += block) {
        long pe = LNC_MIN(pb + block, p1);
        for (q = q0; q < q1; q++) {
            long ch0 = q * LNC_NR, nch = LNC_MIN(LNC_NR, g->m - ch0);
            const float *wq = j->w + q * g->c * LNC_NR;
            for (p = pb; p < pe; p += LNC_MR) {
                long rows = LNC_MIN(LNC_MR, pe - p);
#if defined(LNC_PW_FUSED)
                lnc_epi er = *e;
                if (er.res) er.res += p * er.ldr;
                lnc_pw_tile_fused(rows, g->c, j->x + p * g->ldx, g->ldx, wq, j->bias, &er, ch0,
                                  nch, j->y + p * g->ldy, g->ldy);
#else
                float acc[LNC_MR * LNC_NR];
                long r;
                lnc_pw_tile(rows, g->c, j->x + p * g->ldx, g->ldx, wq, acc);
                for (r = 0; r < rows; r++)
                    lnc_epi_row(e, acc + r * LNC_NR, nch, ch0, j->bias,
                                j->y + (p + r) * g->ldy + ch0,
                                e->res ? e->res + (p + r) * e->ldr + ch0 : NULL);
#endif
            }
        }
    }
}

void lnc_conv_pw(const lnc_conv *g, const float *x, const float *w, const float *bias,
                 float *y, const lnc_epi *e) {
    lnc_pw_job j;
    int t = lnc_pool_threads();
    j.g = g; j.x = x; j.w = w; j.bias = bias; j.y = y; j.e = e;
    j.npix = g->n * g->oh * g->ow;
    j.panels = (g->m + LNC_NR - 1) / LNC_NR;
    j.by_pixels = j.npix >= (long)LNC_MR * 4 * t || j.panels < t;
    j.parts = t;
    if (j.npix * g->m * g->c < 32768) j.parts = 1;
    lnc_parallel_for(j.parts, lnc_pw_part, &j);
}

/* ----- depthwise convolution ------------------------------------------------------- */

typedef struct {
    const lnc_conv *g;
    const float *x, *w, *bias;
    float *y;
    const lnc_epi *e;
    int parts;
} lnc_cv_job;

/* Generic depthwise output pixel for channels [c0, c1). */
static void lnc_dw_px(const lnc_cv_job *j, long n, long oh, long ow, long c0, long c1) {
    const lnc_conv *g = j->g;
    const lnc_epi *e = j->e;
    long opix = (n * g->oh + oh) * g->ow + ow, cb;
    float acc[64];
    for (cb = c0; cb < c1; cb += 64) {
        long nb = LNC_MIN(64, c1 - cb), c;
        int ky, kx;
        for (c = 0; c < nb; c++) acc[c] = 0.0f;
        for (ky = 0; ky < g->kh; ky++) {
            long ih = oh * g->sh - g->pt + ky * g->dh;
            if (ih < 0 || ih >= g->h) continue;
            for (kx = 0; kx < g->kw; kx++) {
                long iw = ow * g->sw - g->pl + kx * g->dw;
                const float *xp, *wp;
                if (iw < 0 || iw >= g->w) continue;
                xp = j->x + ((n * g->h + ih) * g->w + iw) * g->ldx + cb;
                wp = j->w + (ky * g->kw + kx) * g->c + cb;
                for (c = 0; c < nb; c++) acc[c] += xp[c] * wp[c];
            }
        }
        lnc_epi_row(e, acc, nb, cb, j->bias, j->y + opix * g->ldy + cb,
                    e->res ? e->res + opix * e->ldr + cb : NULL);
    }
}

#if defined(LNC_AVX2) && !defined(__AVX512F__)
/* NV x 8 channels from cb of one output pixel, accumulators in registers. */
static inline __attribute__((always_inline)) void lnc_dw_px_v(const lnc_cv_job *j, long n,
                                                              long oh, long ow, long cb,
                                                              const int nv) {
    const lnc_conv *g = j->g;
    const lnc_epi *e = j->e;
    long opix = (n * g->oh + oh) * g->ow + ow;
    __m256 acc[4];
    int ky, kx, v;
    for (v = 0; v < nv; v++) acc[v] = _mm256_setzero_ps();
    for (ky = 0; ky < g->kh; ky++) {
        long ih = oh * g->sh - g->pt + ky * g->dh;
        const float *xr;
        if (ih < 0 || ih >= g->h) continue;
        xr = j->x + ((n * g->h + ih) * g->w) * g->ldx + cb;
        for (kx = 0; kx < g->kw; kx++) {
            long iw = ow * g->sw - g->pl + kx * g->dw;
            const float *xp, *wp;
            if (iw < 0 || iw >= g->w) continue;
            xp = xr + iw * g->ldx;
            wp = j->w + (ky * g->kw + kx) * g->c + cb;
            for (v = 0; v < nv; v++)
                acc[v] = _mm256_fmadd_ps(_mm256_loadu_ps(xp + 8 * v), _mm256_loadu_ps(wp + 8 * v),
                                         acc[v]);
        }
    }
    for (v = 0; v < nv; v++) {
        long ch = cb + 8 * v;
        lnc_epi_store8(e, acc[v], j->bias, ch, 8, j->y + opix * g->ldy + ch,
                       e->res ? e->res + opix * e->ldr + ch : NULL);
    }
}
#endif

static void lnc_dw_part(void *ctx, int part) {
    const lnc_cv_job *j = (const lnc_cv_job *)ctx;
    const lnc_conv *g = j->g;
    long r0, r1, row, ow;
    lnc_chunk(g->n * g->oh, j->parts, part, 1, &r0, &r1);
    for (row = r0; row < r1; row++) {
        long n = row / g->oh, oh = row % g->oh, cb = 0;
#if defined(LNC_AVX2) && !defined(__AVX512F__)
        for (; cb + 32 <= g->c; cb += 32)
            for (ow = 0; ow < g->ow; ow++) lnc_dw_px_v(j, n, oh, ow, cb, 4);
        for (; cb + 8 <= g->c; cb += 8)
            for (ow = 0; ow < g->ow; ow++) lnc_dw_px_v(j, n, oh, ow, cb, 1);
#endif
        if (cb < g->c)
            for (ow = 0; ow < g->ow; ow++) lnc_dw_px(j, n, oh, ow, cb, g->c);
    }
}

void lnc_conv_dw(const lnc_conv *g, const float *x, const float *w, const float *bias,
                 float *y, const lnc_epi *e) {
    lnc_cv_job j;
    j.g = g; j.x = x; j.w = w; j.bias = bias; j.y = y; j.e = e;
    j.parts = lnc_pool_threads();
    if (g->n * g->oh * g->ow * g->c * g->kh * g->kw < 32768) j.parts = 1;
    lnc_parallel_for(j.parts, lnc_dw_part, &j);
}

/* ----- direct convolution (first layer, group conv, dilation) ----------------------- */

#if defined(LNC_AVX2) && !defined(__AVX512F__)
/* Direct convolution of one output pixel, group grp, channels mb..mb+8*nv (in group). */
static inline __attribute__((always_inline)) void lnc_direct_px_v(const lnc_cv_job *j, long n,
                                                                  long oh, long ow, long grp,
                                                                  long mb, const int nv) {
    const lnc_conv *g = j->g;
    const lnc_epi *e = j->e;
    long cpg = g->c / g->group, mpg = g->m / g->group, c;
    long opix = (n * g->oh + oh) * g->ow + ow;
    __m256 acc[4];
    int ky, kx, v;
    for (v = 0; v < nv; v++) acc[v] = _mm256_setzero_ps();
    for (ky = 0; ky < g->kh; ky++) {
        long ih = oh * g->sh - g->pt + ky * g->dh;
        if (ih < 0 || ih >= g->h) continue;
        for (kx = 0; kx < g->kw; kx++) {
            long iw = ow * g->sw - g->pl + kx * g->dw;
            const float *xp, *wp;
            if (iw < 0 || iw >= g->w) continue;
            xp = j->x + ((n * g->h + ih) * g->w + iw) * g->ldx + grp * cpg;
            wp = j->w + (((grp * g->kh + ky) * g->kw + kx) * cpg) * mpg + mb;
            for (c = 0; c < cpg; c++) {
                const __m256 xv = _mm256_broadcast_ss(xp + c);
                for (v = 0; v < nv; v++)
                    acc[v] = _mm256_fmadd_ps(xv, _mm256_loadu_ps(wp + c * mpg + 8 * v), acc[v]);
            }
        }
    }
    for (v = 0; v < nv; v++) {
        long ch = grp * mpg + mb + 8 * v;
        lnc_epi_store8(e, acc[v], j->bias, ch, 8, j->y + opix * g->ldy + ch,
                       e->res ? e->res + opix * e->ldr + ch : NULL);
    }
}
#endif

static void lnc_direct_part(void *ctx, int part) {
    const lnc_cv_job *j = (const lnc_cv_job *)ctx;
    const lnc_conv *g = j->g;
    const lnc_epi *e = j->e;
    long cpg = g->c / g->group, mpg = g->m / g->group;
    long r0, r1, row, ow, grp, mb;
    float acc[64];
    lnc_chunk(g->n * g->oh, j->parts, part, 1, &r0, &r1);
    for (row = r0; row < r1; row++) {
        long n = row / g->oh, oh = row % g->oh;
        for (ow = 0; ow < g->ow; ow++) {
            long opix = row * g->ow + ow;
            for (grp = 0; grp < g->group; grp++) {
                mb = 0;
#if defined(LNC_AVX2) && !defined(__AVX512F__)
                for (; mb + 32 <= mpg; mb += 32) lnc_direct_px_v(j, n, oh, ow, grp, mb, 4);
                for (; mb + 8 <= mpg; mb += 8) lnc_direct_px_v(j, n, oh, ow, grp, mb, 1);
#endif
                for (; mb < mpg; mb += 64) {
                    long nb = LNC_MIN(64, mpg - mb), c, m;
                    int ky, kx;
                    for (m = 0; m < nb; m++) acc[m] = 0.0f;
                    for (ky = 0; ky < g->kh; ky++) {
                        long ih = oh * g->sh - g->pt + ky * g->dh;
                        if (ih < 0 || ih >= g->h) continue;
                        for (kx = 0; kx < g->kw; kx++) {
                            long iw = ow * g->sw - g->pl + kx * g->dw;
                            const float *xp, *wp;
                            if (iw < 0 || iw >= g->w) continue;
                            xp = j->x + ((n * g->h + ih) * g->w + iw) * g->ldx + grp * cpg;
                            wp = j->w + (((grp * g->kh + ky) * g->kw + kx) * cpg) * mpg + mb;
                            for (c = 0; c < cpg; c++) {
                                const float xv = xp[c];
                                const float *wr = wp + c * mpg;
                                for (m = 0; m < nb; m++) acc[m] += xv * wr[m];
                            }
                        }
                    }
                    lnc_epi_row(e, acc, nb, grp * mpg + mb, j->bias,
                                j->y + opix * g->ldy + grp * mpg + mb,
                                e->res ? e->res + opix * e->ldr + grp * mpg + mb : NULL);
                }
            }
        }
    }
}

void lnc_conv_direct(const lnc_conv *g, const float *x, const float *w, const float *bias,
                     float *y, const lnc_epi *e) {
    lnc_cv_job j;
    j.g = g; j.x = x; j.w = w; j.bias = bias; j.y = y; j.e = e;
    j.parts = lnc_pool_threads();
    if (g->n * g->oh * g->ow * g->m * g->kh * g->kw * (g->c / g->group) < 32768) j.parts = 1;
    lnc_parallel_for(j.parts, lnc_direct_part, &j);
}

/* ----- pooling ----------------------------------------------------------------------- */

void lnc_maxpool(const lnc_conv *g, const float *x, float *y) {
    long n, oh, ow, c;
    float acc[64];
    for (n = 0; n < g->n; n++)
        for (oh = 0; oh < g->oh; oh++)
            for (ow = 0; ow < g->ow; ow++) {
                float *yp = y + ((n * g->oh + oh) * g->ow + ow) * g->ldy;
                long cb;
                for (cb = 0; cb < g->c; cb += 64) {
                    long nb = LNC_MIN(64, g->c - cb);
                    int ky, kx;
                    for (c = 0; c < nb; c++) acc[c] = -INFINITY;
                    for (ky = 0; ky < g->kh; ky++) {
                        long ih = oh * g->sh - g->pt + ky * g->dh;
                        if (ih < 0 || ih >= g->h) continue;
                        for (kx = 0; kx < g->kw; kx++) {
                            long iw = ow * g->sw - g->pl + kx * g->dw;
                            const float *xp;
                            if (iw < 0 || iw >= g->w) continue;
                            xp = x + ((n * g->h + ih) * g->w + iw) * g->ldx + cb;
                            for (c = 0; c < nb; c++) {
                                float v = xp[c];
                                acc[c] = (v > acc[c] || v != v) ? v : acc[c];
                            }
                        }
                    }
                    for (c = 0; c < nb; c++) yp[cb + c] = acc[c];
                }
            }
}

void lnc_avgpool(const lnc_conv *g, int count_include_pad, const float *x, float *y) {
    long n, oh, ow, c;
    float acc[64];
    for (n = 0; n < g->n; n++)
        for (oh = 0; oh < g->oh; oh++)
            for (ow = 0; ow < g->ow; ow++) {
                float *yp = y + ((n * g->oh + oh) * g->ow + ow) * g->ldy;
                long cb, cnt = 0, pcnt_h = 0, pcnt_w = 0;
                int ky, kx;
                for (ky = 0; ky < g->kh; ky++) {
                    long ih = oh * g->sh - g->pt + ky * g->dh;
                    if (ih >= -g->pt && ih < g->h + g->pb) pcnt_h++;
                }
                for (kx = 0; kx < g->kw; kx++) {
                    long iw = ow * g->sw - g->pl + kx * g->dw;
                    if (iw >= -g->pl && iw < g->w + g->pr) pcnt_w++;
                }
                for (cb = 0; cb < g->c; cb += 64) {
                    long nb = LNC_MIN(64, g->c - cb);
                    float div;
                    cnt = 0;
                    for (c = 0; c < nb; c++) acc[c] = 0.0f;
                    for (ky = 0; ky < g->kh; ky++) {
                        long ih = oh * g->sh - g->pt + ky * g->dh;
                        if (ih < 0 || ih >= g->h) continue;
                        for (kx = 0; kx < g->kw; kx++) {
                            long iw = ow * g->sw - g->pl + kx * g->dw;
                            const float *xp;
                            if (iw < 0 || iw >= g->w) continue;
                            xp = x + ((n * g->h + ih) * g->w + iw) * g->ldx + cb;
                            for (c = 0; c < nb; c++) acc[c] += xp[c];
                            cnt++;
                        }
                    }
                    div = (float)(count_include_pad ? pcnt_h * pcnt_w : cnt);
                    for (c = 0; c < nb; c++) yp[cb + c] = acc[c] / div;
                }
            }
}

void lnc_global_pool(int is_max, long n, long hw, long c, long ldx, const float *x,
                     float *y) {
    long i, p, ch;
    for (i = 0; i < n; i++) {
        float *yr = y + i * c;
        const float *xb = x + i * hw * ldx;
        for (ch = 0; ch < c; ch++) yr[ch] = is_max ? -INFINITY : 0.0f;
        for (p = 0; p < hw; p++) {
            const float *xp = xb + p * ldx;
            if (is_max) {
                for (ch = 0; ch < c; ch++) {
                    float v = xp[ch];
                    yr[ch] = (v > yr[ch] || v != v) ? v : yr[ch];
                }
            } else {
                for (ch = 0; ch < c; ch++) yr[ch] += xp[ch];
            }
        }
        if (!is_max)
            for (ch = 0; ch < c; ch++) yr[ch] = yr[ch] / (float)hw;
    }
}

/* ----- n-d strided loops ----------------------------------------------------------- */

/* Odometer over the first rank-1 dims; calls body with element offsets of each operand. */
#define LNC_ND_LOOP(rank, shape, NOPS, strides, ...)                                      \
    do {                                                                                  \
        long idx_[6] = {0, 0, 0, 0, 0, 0};                                                \
        long off_[4] = {0, 0, 0, 0};                                                      \
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

void lnc_copy_nd(int rank, const long *shape, const float *x, const long *xs, float *y,
                 const long *ys) {
    const long *st[2];
    long n = shape[rank - 1], sx = xs[rank - 1], sy = ys[rank - 1];
    st[0] = xs; st[1] = ys;
    LNC_ND_LOOP(rank, shape, 2, st, {
        const float *xp = x + off_[0];
        float *yp = y + off_[1];
        long i;
        if (sx == 1 && sy == 1)
            memcpy(yp, xp, (size_t)n * sizeof(float));
        else
            for (i = 0; i < n; i++) yp[i * sy] = xp[i * sx];
    });
}

void lnc_unary_nd(int act, float a, float b, int rank, const long *shape, const float *x,
                  const long *xs, float *y, const long *ys) {
    const long *st[2];
    long n = shape[rank - 1], sx = xs[rank - 1], sy = ys[rank - 1];
    st[0] = xs; st[1] = ys;
    LNC_ND_LOOP(rank, shape, 2, st, {
        const float *xp = x + off_[0];
        float *yp = y + off_[1];
        long i;
        if (sx == 1 && sy == 1 && act == LNC_ACT_RELU)
            for (i = 0; i < n; i++) yp[i] = xp[i] < 0.0f ? 0.0f : xp[i];
        else if (sx == 1 && sy == 1 && act == LNC_ACT_CLIP)
            for (i = 0; i < n; i++) yp[i] = xp[i] < a ? a : (xp[i] > b ? b : xp[i]);
        else
            for (i = 0; i < n; i++) yp[i * sy] = lnc_act1(act, a, b, xp[i * sx]);
    });
}

static float lnc_bin1(int op, float x, float y, float z) {
    switch (op) {
    case LNC_BIN_ADD: return x + y;
    case LNC_BIN_SUB: return x - y;
    case LNC_BIN_MUL: return x * y;
    case LNC_BIN_DIV: return x / y;
    case LNC_BIN_MAX: return (x != x || y != y) ? NAN : (x > y ? x : y);
    case LNC_BIN_MIN: return (x != x || y != y) ? NAN : (x < y ? x : y);
    case LNC_BIN_POW: return powf(x, y);
    case LNC_BIN_PRELU: return x < 0.0f ? x * y : x;
    case LNC_BIN_AFFINE: return x * y + z;
    default: return x;
    }
}

void lnc_binary_nd(int op, int rank, const long *shape, const float *a, const long *as,
                   const float *b, const long *bs, const float *c, const long *cs, float *y,
                   const long *ys) {
    const long *st[4];
    long n = shape[rank - 1];
    long sa = as[rank - 1], sb = bs[rank - 1], sc = c ? cs[rank - 1] : 0, sy = ys[rank - 1];
    st[0] = as; st[1] = bs; st[2] = c ? cs : ys; st[3] = ys;
    LNC_ND_LOOP(rank, shape, 4, st, {
        const float *ap = a + off_[0], *bp = b + off_[1];
        const float *cp = c ? c + off_[2] : NULL;
        float *yp = y + off_[3];
        long i;
        if (sa == 1 && sb == 1 && sy == 1 && op == LNC_BIN_ADD)
            for (i = 0; i < n; i++) yp[i] = ap[i] + bp[i];
        else if (sa == 1 && sb == 0 && sy == 1 && op == LNC_BIN_MUL)
            for (i = 0; i < n; i++) yp[i] = ap[i] * bp[0];
        else if (sa == 1 && sb == 1 && sy == 1 && op == LNC_BIN_MUL)
            for (i = 0; i < n; i++) yp[i] = ap[i] * bp[i];
        else if (sa == 1 && sb == 1 && sc == 1 && sy == 1 && op == LNC_BIN_AFFINE)
            for (i = 0; i < n; i++) yp[i] = ap[i] * bp[i] + cp[i];
        else
            for (i = 0; i < n; i++)
                yp[i * sy] = lnc_bin1(op, ap[i * sa], bp[i * sb], cp ? cp[i * sc] : 0.0f);
    });
}

void lnc_gather_nd(int rank, const long *shape, const long *tabs, const float *x, float fill,
                   float *y) {
    long idx[6] = {0, 0, 0, 0, 0, 0};
    const long *tab[6];
    long total = 1, i, o = 0;
    int ax;
    for (ax = 0; ax < rank; ax++) {
        tab[ax] = tabs + o;
        o += shape[ax];
        total *= shape[ax];
    }
    for (i = 0; i < total; i++) {
        long off = 0;
        int pad = 0;
        for (ax = 0; ax < rank; ax++) {
            long t = tab[ax][idx[ax]];
            if (t < 0) { pad = 1; break; }
            off += t;
        }
        y[i] = pad ? fill : x[off];
        for (ax = rank - 1; ax >= 0; ax--) {
            if (++idx[ax] < shape[ax]) break;
            idx[ax] = 0;
        }
    }
}

void lnc_channel_map(long npix, long c, const float *const *bases, const long *lds,
                     const long *which, const long *ch, float *y, long ldy) {
    long p, k;
    for (p = 0; p < npix; p++) {
        float *yp = y + p * ldy;
        for (k = 0; k < c; k++) yp[k] = bases[which[k]][p * lds[which[k]] + ch[k]];
    }
}

void lnc_reduce_nd(int kind, int orank, const long *oshape, const long *os, int irank,
                   const long *ishape, const long *is, const float *x, float *y) {
    long oidx[6] = {0, 0, 0, 0, 0, 0};
    long ototal = 1, itotal = 1, i, j;
    int ax;
    for (ax = 0; ax < orank; ax++) ototal *= oshape[ax];
    for (ax = 0; ax < irank; ax++) itotal *= ishape[ax];
    for (i = 0; i < ototal; i++) {
        long base = 0, iidx[6] = {0, 0, 0, 0, 0, 0};
        float acc = kind == 2 ? -INFINITY : (kind == 3 ? INFINITY : 0.0f);
        for (ax = 0; ax < orank; ax++) base += oidx[ax] * os[ax];
        for (j = 0; j < itotal; j++) {
            long off = base;
            float v;
            for (ax = 0; ax < irank; ax++) off += iidx[ax] * is[ax];
            v = x[off];
            if (kind <= 1) acc += v;
            else if (kind == 2) acc = (v > acc || v != v) ? v : acc;
            else acc = (v < acc || v != v) ? v : acc;
            for (ax = irank - 1; ax >= 0; ax--) {
                if (++iidx[ax] < ishape[ax]) break;
                iidx[ax] = 0;
            }
        }
        y[i] = kind == 0 ? acc / (float)itotal : acc;
        for (ax = orank - 1; ax >= 0; ax--) {
            if (++oidx[ax] < oshape[ax]) break;
            oidx[ax] = 0;
        }
    }
}

void lnc_softmax(long outer, long d, long inner, int log, const float *x, float *y) {
    long o, i, k;
    for (o = 0; o < outer; o++)
        for (i = 0; i < inner; i++) {
            const float *xp = x + o * d * inner + i;
            float *yp = y + o * d * inner + i;
            float m = -INFINITY, s = 0.0f;
            for (k = 0; k < d; k++) m = xp[k * inner] > m ? xp[k * inner] : m;
            for (k = 0; k < d; k++) {
                float e = expf(xp[k * inner] - m);
                if (!log) yp[k * inner] = e;
                s += e;
            }
            for (k = 0; k < d; k++)
                yp[k * inner] = log ? xp[k * inner] - m - logf(s) : yp[k * inner] / s;
        }
}

void lnc_gemm(long M, long N, long K, float alpha, const float *a, long ars, long acs,
              const float *b, long brs, long bcs, float beta, const float *c, long crs,
              long ccs, float *y) {
    long i, k, n;
    for (i = 0; i < M; i++) {
        float *yr = y + i * N;
        for (n = 0; n < N; n++) yr[n] = 0.0f;
        for (k = 0; k < K; k++) {
            const float av = a[i * ars + k * acs];
            const float *br = b + k * brs;
            if (bcs == 1)
                for (n = 0; n < N; n++) yr[n] += av * br[n];
            else
                for (n = 0; n < N; n++) yr[n] += av * br[n * bcs];
        }
        for (n = 0; n < N; n++) {
            float v = alpha * yr[n];
            if (c) v += beta * c[i * crs + n * ccs];
            yr[n] = v;
        }
    }
}
