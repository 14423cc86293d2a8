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
#define LNC_MAX(a, b) ((a) > (b) ? (a) : (b))

/* ----- thread pool ------------------------------------------------------------------ */

#if LNC_THREADS > 1
#include <pthread.h>
#include <sched.h>

static struct {
    int threads;
    pthread_t tid[LNC_THREADS];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    void (*fn)(void *, int, int);
    void *ctx;
    int n;
    volatile int gen;                  /* job generation (atomic builtins) */
    volatile unsigned long long ticket; /* (generation << 32) | next part index */
    volatile int done;                 /* parts finished in the current job */
    volatile int stop;
    int sleepers;
} lnc_pool;

/* A spin-wait hint to the core (lets a sibling or the other thread of a job run). */
static inline void lnc_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Take parts of job `gen` until none is left. A ticket from another generation means the
 * job is over (its fields may already describe the next one): stop without touching them. */
static void lnc_pool_work(int gen, int tid) {
    for (;;) {
        /* Compare-and-swap, so a late thread never consumes a part of a newer job. */
        unsigned long long t = __atomic_load_n(&lnc_pool.ticket, __ATOMIC_ACQUIRE);
        int i = (int)(t & 0xffffffffULL);
        if ((int)(t >> 32) != gen || i >= lnc_pool.n) return;
        if (!__atomic_compare_exchange_n(&lnc_pool.ticket, &t, t + 1, 0, __ATOMIC_ACQ_REL,
                                         __ATOMIC_ACQUIRE))
            continue;
        lnc_pool.fn(lnc_pool.ctx, i, tid);
        __atomic_fetch_add(&lnc_pool.done, 1, __ATOMIC_ACQ_REL);
    }
}

static void *lnc_pool_main(void *arg) {
    int seen = 0;
    const int tid = (int)(long)arg;
    for (;;) {
        int spins = 0;
        int g;
        while ((g = __atomic_load_n(&lnc_pool.gen, __ATOMIC_ACQUIRE)) == seen) {
            if (__atomic_load_n(&lnc_pool.stop, __ATOMIC_ACQUIRE)) return NULL;
            /* Spin briefly, then yield (a thread sharing this core, e.g. the caller when
             * the machine is busy, runs instead of waiting for our time slice to end),
             * then sleep. */
            if (++spins < 3000) {
                if (spins < 1000)
                    lnc_relax();
                else
                    sched_yield();
                continue;
            }
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
        lnc_pool_work(g, tid);
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
        if (pthread_create(&lnc_pool.tid[t], NULL, lnc_pool_main, (void *)(long)t) != 0) break;
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

void lnc_parallel_for(int n, void (*fn)(void *, int, int), void *ctx) {
    int i, gen;
    if (lnc_pool.threads <= 1 || n <= 1) {
        for (i = 0; i < n; i++) fn(ctx, i, 0);
        return;
    }
    gen = (lnc_pool.gen + 1) & 0x3fffffff;
    if (gen == 0) gen = 1;
    /* Retire the previous job's tickets before its fields change. */
    __atomic_store_n(&lnc_pool.ticket, ((unsigned long long)gen << 32) | 0x7fffffffULL,
                     __ATOMIC_SEQ_CST);
    lnc_pool.fn = fn;
    lnc_pool.ctx = ctx;
    lnc_pool.n = n;
    __atomic_store_n(&lnc_pool.done, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&lnc_pool.ticket, (unsigned long long)gen << 32, __ATOMIC_RELEASE);
    __atomic_store_n(&lnc_pool.gen, gen, __ATOMIC_RELEASE);
    pthread_mutex_lock(&lnc_pool.mu);
    if (lnc_pool.sleepers > 0) pthread_cond_broadcast(&lnc_pool.cv);
    pthread_mutex_unlock(&lnc_pool.mu);
    lnc_pool_work(gen, 0);
    {
        /* A part still running on a worker: spin, then yield (the worker may be waiting
         * for this core). */
        int spins = 0;
        while (__atomic_load_n(&lnc_pool.done, __ATOMIC_ACQUIRE) < n) {
            if (++spins < 1000)
                lnc_relax();
            else
                sched_yield();
        }
    }
}
#else
int lnc_pool_start(int threads) { (void)threads; return 1; }
void lnc_pool_stop(void) {}
int lnc_pool_threads(void) { return 1; }
void lnc_parallel_for(int n, void (*fn)(void *, int, int), void *ctx) {
    int i;
    for (i = 0; i < n; i++) fn(ctx, i, 0);
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

/* min(max(t, 0), 1), NaN passing through (as the interpreter's clamp). */
static inline float lnc_clamp01(float t) { return t < 0.0f ? 0.0f : (t > 1.0f ? 1.0f : t); }

static float lnc_act1(int act, float a, float b, float v) {
    switch (act) {
    case LNC_ACT_RELU: return v < 0.0f ? 0.0f : v;
    case LNC_ACT_CLIP: return v < a ? a : (v > b ? b : v);
    case LNC_ACT_HARDSWISH: return v * lnc_clamp01((1.0f / 6.0f) * v + 0.5f);
    case LNC_ACT_HARDSIGMOID: return lnc_clamp01(a * v + b);
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

static inline __m256 lnc_hswish8(__m256 v) {
    __m256 t = _mm256_fmadd_ps(v, _mm256_set1_ps(1.0f / 6.0f), _mm256_set1_ps(0.5f));
    t = _mm256_min_ps(_mm256_set1_ps(1.0f), _mm256_max_ps(_mm256_setzero_ps(), t));
    return _mm256_mul_ps(v, t);
}

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

/* Apply the epilogue to the 12 accumulators of a tile and store `rows` x `nch`. */
/* Lane masks of the first n (0..8) lanes. */
static inline __m256i lnc_mask8(long n) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n < 0 ? 0 : (n > 8 ? 8 : n))), lane);
}

/* Apply the epilogue to the 12 accumulators of a tile and store `rows` x `nch`. A partial
 * panel (nch < 16) reads bias / residual and stores through lane masks. */
static void lnc_tile_epilogue(__m256 *c, long rows, const float *bias, const lnc_epi *e,
                              const float *res, long ch0, long nch, float *y, long ldy) {
    const __m256 zero = _mm256_setzero_ps();
    const int full = nch >= 16;
    const __m256i m0 = lnc_mask8(nch), m1 = lnc_mask8(nch - 8);
    long r;
    int i;
    if (full && bias && e->res_mode == 0 && e->act == LNC_ACT_HARDSWISH) {
        /* MobileNet V3's expansions: bias and hard-swish, straight to y. */
        const __m256 b0 = _mm256_loadu_ps(bias + ch0), b1 = _mm256_loadu_ps(bias + ch0 + 8);
        for (r = 0; r < rows; r++) {
            _mm256_storeu_ps(y + r * ldy + ch0, lnc_hswish8(_mm256_add_ps(c[2 * r], b0)));
            _mm256_storeu_ps(y + r * ldy + ch0 + 8, lnc_hswish8(_mm256_add_ps(c[2 * r + 1], b1)));
        }
        return;
    }
    if (!full && e->act == LNC_ACT_PRELU) {
        /* Tail panel with per-channel slopes: through the generic path, lane by lane. */
        for (r = 0; r < rows; r++) {
            float t[16];
            _mm256_storeu_ps(t, c[2 * r]);
            _mm256_storeu_ps(t + 8, c[2 * r + 1]);
            lnc_epi_row(e, t, nch, ch0, bias, y + r * ldy + ch0,
                        res ? res + r * e->ldr + ch0 : NULL);
        }
        return;
    }
#define LNC_LD0(p_) (full ? _mm256_loadu_ps(p_) : _mm256_maskload_ps((p_), m0))
#define LNC_LD1(p_) (full ? _mm256_loadu_ps(p_) : _mm256_maskload_ps((p_), m1))
    if (bias) {
        const __m256 b0 = LNC_LD0(bias + ch0), b1 = LNC_LD1(bias + ch0 + 8);
        for (i = 0; i < 12; i += 2) {
            c[i] = _mm256_add_ps(c[i], b0);
            c[i + 1] = _mm256_add_ps(c[i + 1], b1);
        }
    }
    if (e->res_mode == 1)
        for (r = 0; r < rows; r++) {
            const float *rr = res + r * e->ldr + ch0;
            c[2 * r] = _mm256_add_ps(c[2 * r], LNC_LD0(rr));
            c[2 * r + 1] = _mm256_add_ps(c[2 * r + 1], LNC_LD1(rr + 8));
        }
    switch (e->act) {
    case LNC_ACT_IDENTITY: break;
    case LNC_ACT_RELU:
        for (i = 0; i < 12; i++) c[i] = _mm256_max_ps(zero, c[i]);
        break;
    case LNC_ACT_CLIP: {
        const __m256 lo = _mm256_set1_ps(e->a), hi = _mm256_set1_ps(e->b);
        for (i = 0; i < 12; i++) c[i] = _mm256_min_ps(hi, _mm256_max_ps(lo, c[i]));
        break;
    }
    case LNC_ACT_HARDSWISH: {
        const __m256 s6 = _mm256_set1_ps(1.0f / 6.0f), h = _mm256_set1_ps(0.5f);
        const __m256 one = _mm256_set1_ps(1.0f);
        for (i = 0; i < 12; i++) {
            __m256 t = _mm256_fmadd_ps(c[i], s6, h);
            t = _mm256_min_ps(one, _mm256_max_ps(zero, t));
            c[i] = _mm256_mul_ps(c[i], t);
        }
        break;
    }
    default: {
        lnc_epi e2 = *e;
        e2.res_mode = 0;
        for (i = 0; i < 12; i++) c[i] = lnc_epi_v8(&e2, c[i], ch0 + 8 * (i & 1), NULL);
        break;
    }
    }
    if (e->res_mode == 2)
        for (r = 0; r < rows; r++) {
            const float *rr = res + r * e->ldr + ch0;
            c[2 * r] = _mm256_add_ps(c[2 * r], LNC_LD0(rr));
            c[2 * r + 1] = _mm256_add_ps(c[2 * r + 1], LNC_LD1(rr + 8));
        }
#undef LNC_LD0
#undef LNC_LD1
    if (full) {
        for (r = 0; r < rows; r++) {
            _mm256_storeu_ps(y + r * ldy + ch0, c[2 * r]);
            _mm256_storeu_ps(y + r * ldy + ch0 + 8, c[2 * r + 1]);
        }
    } else {
        for (r = 0; r < rows; r++) {
            _mm256_maskstore_ps(y + r * ldy + ch0, m0, c[2 * r]);
            _mm256_maskstore_ps(y + r * ldy + ch0 + 8, m1, c[2 * r + 1]);
        }
    }
}

#define LNC_FMA_ROW(a_, x_, k_, c0_, c1_)                                                   \
    a_ = _mm256_broadcast_ss((x_) + (k_));                                                \
    c0_ = _mm256_fmadd_ps(a_, b0, c0_);                                                   \
    c1_ = _mm256_fmadd_ps(a_, b1, c1_)

/* One 6x16 tile: rows of x (row r at xr[r]) times a packed panel [K][16], epilogue, store.
 * Rows past `rows` repeat row 0 (their results are not stored). The rows are addressed
 * from one moving pointer plus fixed offsets (fewer induction variables in the loop). */
static void lnc_pw_tile_fused(long rows, long K, const float *const *xr, const float *w,
                              const float *bias, const lnc_epi *e, const float *res, long ch0,
                              long nch, float *y, long ldy) {
    const float *p = xr[0];
    const long o1 = rows > 1 ? xr[1] - p : 0, o2 = rows > 2 ? xr[2] - p : 0;
    const long o3 = rows > 3 ? xr[3] - p : 0, o4 = rows > 4 ? xr[4] - p : 0;
    const long o5 = rows > 5 ? xr[5] - p : 0;
    const float *const pe = p + K;
    if (rows == 1) {
        /* One row (squeeze-excite, classifier-like 1x1 on one pixel, tile tails): a GEMV,
         * four k phases in separate accumulators (no 6-row waste, no latency chain). */
        __m256 c[12], s0 = _mm256_setzero_ps(), s1 = s0, t0 = s0, t1 = s0, u0 = s0, u1 = s0;
        __m256 v0 = s0, v1 = s0;
        int i;
        for (; p + 4 <= pe; p += 4) {
            __m256 a = _mm256_broadcast_ss(p);
            s0 = _mm256_fmadd_ps(a, _mm256_loadu_ps(w), s0);
            s1 = _mm256_fmadd_ps(a, _mm256_loadu_ps(w + 8), s1);
            a = _mm256_broadcast_ss(p + 1);
            t0 = _mm256_fmadd_ps(a, _mm256_loadu_ps(w + 16), t0);
            t1 = _mm256_fmadd_ps(a, _mm256_loadu_ps(w + 24), t1);
            a = _mm256_broadcast_ss(p + 2);
            u0 = _mm256_fmadd_ps(a, _mm256_loadu_ps(w + 32), u0);
            u1 = _mm256_fmadd_ps(a, _mm256_loadu_ps(w + 40), u1);
            a = _mm256_broadcast_ss(p + 3);
            v0 = _mm256_fmadd_ps(a, _mm256_loadu_ps(w + 48), v0);
            v1 = _mm256_fmadd_ps(a, _mm256_loadu_ps(w + 56), v1);
            w += 64;
        }
        for (; p < pe; p++) {
            const __m256 a = _mm256_broadcast_ss(p);
            s0 = _mm256_fmadd_ps(a, _mm256_loadu_ps(w), s0);
            s1 = _mm256_fmadd_ps(a, _mm256_loadu_ps(w + 8), s1);
            w += 16;
        }
        c[0] = _mm256_add_ps(_mm256_add_ps(s0, t0), _mm256_add_ps(u0, v0));
        c[1] = _mm256_add_ps(_mm256_add_ps(s1, t1), _mm256_add_ps(u1, v1));
        for (i = 2; i < 12; i++) c[i] = c[i & 1];
        lnc_tile_epilogue(c, 1, bias, e, res, ch0, nch, y, ldy);
        return;
    }
    if (nch <= 8) {
        /* Tail panel of at most 8 channels: a 6x8 tile (half the FMAs of 6x16). */
        __m256 c[12], d0 = _mm256_setzero_ps(), d1 = d0, d2 = d0, d3 = d0, d4 = d0, d5 = d0;
        for (; p < pe; p++) {
            const __m256 b0 = _mm256_loadu_ps(w);
            d0 = _mm256_fmadd_ps(_mm256_broadcast_ss(p), b0, d0);
            d1 = _mm256_fmadd_ps(_mm256_broadcast_ss(p + o1), b0, d1);
            d2 = _mm256_fmadd_ps(_mm256_broadcast_ss(p + o2), b0, d2);
            d3 = _mm256_fmadd_ps(_mm256_broadcast_ss(p + o3), b0, d3);
            d4 = _mm256_fmadd_ps(_mm256_broadcast_ss(p + o4), b0, d4);
            d5 = _mm256_fmadd_ps(_mm256_broadcast_ss(p + o5), b0, d5);
            w += 16;
        }
        c[0] = d0; c[2] = d1; c[4] = d2; c[6] = d3; c[8] = d4; c[10] = d5;
        c[1] = c[3] = c[5] = c[7] = c[9] = c[11] = _mm256_setzero_ps();
        lnc_tile_epilogue(c, rows, bias, e, res, ch0, nch, y, ldy);
        return;
    }
    {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (; p + 2 <= pe; p += 2) {
        __m256 b0 = _mm256_loadu_ps(w), b1 = _mm256_loadu_ps(w + 8), a;
        LNC_FMA_ROW(a, p, 0, c00, c01);
        LNC_FMA_ROW(a, p, o1, c10, c11);
        LNC_FMA_ROW(a, p, o2, c20, c21);
        LNC_FMA_ROW(a, p, o3, c30, c31);
        LNC_FMA_ROW(a, p, o4, c40, c41);
        LNC_FMA_ROW(a, p, o5, c50, c51);
        b0 = _mm256_loadu_ps(w + 16);
        b1 = _mm256_loadu_ps(w + 24);
        LNC_FMA_ROW(a, p + 1, 0, c00, c01);
        LNC_FMA_ROW(a, p + 1, o1, c10, c11);
        LNC_FMA_ROW(a, p + 1, o2, c20, c21);
        LNC_FMA_ROW(a, p + 1, o3, c30, c31);
        LNC_FMA_ROW(a, p + 1, o4, c40, c41);
        LNC_FMA_ROW(a, p + 1, o5, c50, c51);
        w += 32;
    }
    if (p < pe) {
        __m256 b0 = _mm256_loadu_ps(w), b1 = _mm256_loadu_ps(w + 8), a;
        LNC_FMA_ROW(a, p, 0, c00, c01);
        LNC_FMA_ROW(a, p, o1, c10, c11);
        LNC_FMA_ROW(a, p, o2, c20, c21);
        LNC_FMA_ROW(a, p, o3, c30, c31);
        LNC_FMA_ROW(a, p, o4, c40, c41);
        LNC_FMA_ROW(a, p, o5, c50, c51);
    }
    if (nch == 16 && e->res_mode == 0 && bias &&
        (e->act == LNC_ACT_IDENTITY || e->act == LNC_ACT_RELU || e->act == LNC_ACT_CLIP)) {
        /* The common epilogue (bias, then a clamp) in registers, without the call (richer
         * epilogues here would make the compiler spill accumulators in the loop). */
        const __m256 b0 = _mm256_loadu_ps(bias + ch0), b1 = _mm256_loadu_ps(bias + ch0 + 8);
        const __m256 lo = _mm256_set1_ps(e->act == LNC_ACT_CLIP ? e->a : (e->act == LNC_ACT_RELU ? 0.0f : -INFINITY));
        const __m256 hi = _mm256_set1_ps(e->act == LNC_ACT_CLIP ? e->b : INFINITY);
        float *yq = y + ch0;
#define LNC_ST(r_, v0_, v1_)                                                                \
    _mm256_storeu_ps(yq + (r_) * ldy, _mm256_min_ps(hi, _mm256_max_ps(lo, _mm256_add_ps(v0_, b0)))); \
    _mm256_storeu_ps(yq + (r_) * ldy + 8, _mm256_min_ps(hi, _mm256_max_ps(lo, _mm256_add_ps(v1_, b1))))
        LNC_ST(0, c00, c01);
        if (rows > 1) { LNC_ST(1, c10, c11); }
        if (rows > 2) { LNC_ST(2, c20, c21); }
        if (rows > 3) { LNC_ST(3, c30, c31); }
        if (rows > 4) { LNC_ST(4, c40, c41); }
        if (rows > 5) { LNC_ST(5, c50, c51); }
#undef LNC_ST
        return;
    }
    if (nch == 16 && e->res_mode != 0 && bias && e->act == LNC_ACT_IDENTITY) {
        /* Linear bottleneck with a residual (MobileNet V2/V3 projections): bias + residual. */
        const __m256 b0 = _mm256_loadu_ps(bias + ch0), b1 = _mm256_loadu_ps(bias + ch0 + 8);
        const float *rq = res + ch0;
        const long ldr = e->ldr;
        float *yq = y + ch0;
#define LNC_ST(r_, v0_, v1_)                                                                \
    _mm256_storeu_ps(yq + (r_) * ldy, _mm256_add_ps(_mm256_add_ps(v0_, b0), _mm256_loadu_ps(rq + (r_) * ldr))); \
    _mm256_storeu_ps(yq + (r_) * ldy + 8, _mm256_add_ps(_mm256_add_ps(v1_, b1), _mm256_loadu_ps(rq + (r_) * ldr + 8)))
        LNC_ST(0, c00, c01);
        if (rows > 1) { LNC_ST(1, c10, c11); }
        if (rows > 2) { LNC_ST(2, c20, c21); }
        if (rows > 3) { LNC_ST(3, c30, c31); }
        if (rows > 4) { LNC_ST(4, c40, c41); }
        if (rows > 5) { LNC_ST(5, c50, c51); }
#undef LNC_ST
        return;
    }
    {
        __m256 c[12];
        c[0] = c00; c[1] = c01; c[2] = c10; c[3] = c11; c[4] = c20; c[5] = c21;
        c[6] = c30; c[7] = c31; c[8] = c40; c[9] = c41; c[10] = c50; c[11] = c51;
        lnc_tile_epilogue(c, rows, bias, e, res, ch0, nch, y, ldy);
    }
    }
}
#elif defined(__AVX512F__)
#define LNC_MR 8
static void lnc_pw_tile(long rows, long K, const float *const *xp, const float *w,
                        float *acc) {
    const float *xr[8];
    __m512 c0[8], c1[8];
    long k;
    int r;
    for (r = 0; r < 8; r++) {
        xr[r] = r < rows ? xp[r] : xp[0];
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
static void lnc_pw_tile(long rows, long K, const float *const *xp, const float *w,
                        float *acc) {
    const float *xr[6];
    float32x4_t c[6][4];
    long k;
    int r, q;
    for (r = 0; r < 6; r++) {
        xr[r] = r < rows ? xp[r] : xp[0];
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
static void lnc_pw_tile(long rows, long K, const float *const *xp, const float *w,
                        float *acc) {
    long k;
    int r, j;
    for (r = 0; r < LNC_MR * LNC_NR; r++) acc[r] = 0.0f;
    for (r = 0; r < LNC_MR && r < rows; r++) {
        const float *xr = xp[r];
        float *ar = acc + r * LNC_NR;
        for (k = 0; k < K; k++) {
            const float xv = xr[k];
            const float *wk = w + k * LNC_NR;
            for (j = 0; j < LNC_NR; j++) ar[j] += xv * wk[j];
        }
    }
}
#endif

/* One tile: rows [0, rows) (rows <= LNC_MR, row r starts at xr[r], K columns) times packed
 * panel `wq`, channels ch0..ch0+nch, epilogue, into y (row stride ldy); `res` is the
 * residual of row 0 (row stride e->ldr). */
static void lnc_tile(long rows, long K, const float *const *xr, const float *wq,
                     const float *bias, const lnc_epi *e, const float *res, long ch0, long nch,
                     float *y, long ldy) {
#if defined(LNC_PW_FUSED)
    lnc_pw_tile_fused(rows, K, xr, wq, bias, e, res, ch0, nch, y, ldy);
#else
    float acc[LNC_MR * LNC_NR];
    long r;
    lnc_pw_tile(rows, K, xr, wq, acc);
    for (r = 0; r < rows; r++)
        lnc_epi_row(e, acc + r * LNC_NR, nch, ch0, bias, y + r * ldy + ch0,
                    res ? res + r * e->ldr + ch0 : NULL);
#endif
}

/* Rows [0, rows) of `a` (row stride lda, K columns) times packed panel `wq`, channels
 * ch0..ch0+nch, epilogue, into y (row stride ldy); `res` is the residual of row 0. */
static void lnc_panel_rows(const float *a, long lda, long rows, long K, const float *wq,
                           const float *bias, const lnc_epi *e, const float *res, long ch0,
                           long nch, float *y, long ldy) {
    long p, r;
    for (p = 0; p < rows; p += LNC_MR) {
        long tr = LNC_MIN(LNC_MR, rows - p);
        const float *xr[LNC_MR];
        for (r = 0; r < tr; r++) xr[r] = a + (p + r) * lda;
        lnc_tile(tr, K, xr, wq, bias, e, res ? res + p * e->ldr : NULL, ch0, nch, y + p * ldy,
                 ldy);
    }
}

static void lnc_pw_part(void *ctx, int part, int tid) {
    const lnc_pw_job *j = (const lnc_pw_job *)ctx;
    (void)tid;
    const lnc_conv *g = j->g;
    const lnc_epi *e = j->e;
    long p0 = 0, p1 = j->npix, q0 = 0, q1 = j->panels, pb, q;
    /* Pixel blocks keep the activations of a block in L2 while every panel passes over it. */
    const long block = LNC_MR * 8;
    if (j->by_pixels)
        lnc_chunk(j->npix, j->parts, part, LNC_MR, &p0, &p1);
    else
        lnc_chunk(j->panels, j->parts, part, 1, &q0, &q1);
    if ((p1 - p0) * g->c * (long)sizeof(float) <= 384 * 1024) {
        /* The activations fit in L2: each weight panel is read once for all pixels. */
        for (q = q0; q < q1; q++) {
            long ch0 = q * LNC_NR, nch = LNC_MIN(LNC_NR, g->m - ch0);
            lnc_panel_rows(j->x + p0 * g->ldx, g->ldx, p1 - p0, g->c, j->w + q * g->c * LNC_NR,
                           j->bias, e, e->res ? e->res + p0 * e->ldr : NULL, ch0, nch,
                           j->y + p0 * g->ldy, g->ldy);
        }
        return;
    }
    for (pb = p0; pb < p1; pb += block) {
        long pe = LNC_MIN(pb + block, p1);
        for (q = q0; q < q1; q++) {
            long ch0 = q * LNC_NR, nch = LNC_MIN(LNC_NR, g->m - ch0);
            lnc_panel_rows(j->x + pb * g->ldx, g->ldx, pe - pb, g->c, j->w + q * g->c * LNC_NR,
                           j->bias, e, e->res ? e->res + pb * e->ldr : NULL, ch0, nch,
                           j->y + pb * g->ldy, g->ldy);
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
    /* Split the larger operand: pixels when the activations outweigh the weights (each
     * thread then reads all weights), weight panels otherwise (late, narrow layers). */
    j.by_pixels = (j.npix >= (long)LNC_MR * 4 * t && j.npix >= g->m) || j.panels < t;
    /* More parts than threads: a thread that is slowed down takes fewer of them. */
    j.parts = t > 1 ? (j.by_pixels ? LNC_MIN(4 * t, j.npix / LNC_MR + 1) : LNC_MIN(4 * t, j.panels)) : 1;
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

/* Depthwise convolution works on output rows. `xr[ky]` is the start of the input row
 * (pixel-major, stride g->ldx) tap row ky reads, or NULL when that row is padding; `yr` and
 * `rr` are the output and residual rows. The same row kernel serves lnc_conv_dw (rows of a
 * tensor) and lnc_conv_pw_dw (rows of a ring of pointwise results). */

/* Portable: output pixel ow, channels [c0, c1). */
static void lnc_dw_px(const lnc_conv *g, const lnc_epi *e, const float *const *xr,
                      const float *w, const float *bias, long ow, long c0, long c1,
                      float *yr, const float *rr) {
    long cb;
    float acc[64];
    for (cb = c0; cb < c1; cb += 64) {
        long nb = LNC_MIN(64, c1 - cb), c;
        int ky, kx;
        for (c = 0; c < nb; c++) acc[c] = 0.0f;
        for (ky = 0; ky < g->kh; ky++) {
            if (!xr[ky]) continue;
            for (kx = 0; kx < g->kw; kx++) {
                long iw = ow * g->sw - g->pl + kx * g->dw;
                const float *xp, *wp;
                if (iw < 0 || iw >= g->w) continue;
                xp = xr[ky] + iw * g->ldx + cb;
                wp = w + (ky * g->kw + kx) * g->c + cb;
                for (c = 0; c < nb; c++) acc[c] += xp[c] * wp[c];
            }
        }
        lnc_epi_row(e, acc, nb, cb, bias, yr + ow * g->ldy + cb,
                    rr ? rr + ow * e->ldr + cb : NULL);
    }
}

#if defined(LNC_AVX2) && !defined(__AVX512F__)
/* Channels [0, C/8*8) of one output row: 8-channel blocks, four output pixels at a time in
 * the interior (one weight load feeds four FMAs), one at a time at the borders. */
static long lnc_dw_row_avx2(const lnc_conv *gp, const lnc_epi *ep, const float *const *xr,
                            const float *w, const float *bias, float *yr, const float *rr,
                            long c0, long c1) {
    const lnc_conv g = *gp;
    const lnc_epi e = *ep;
    const long C = g.c, ldx = g.ldx, ldy = g.ldy, C8 = c0 + (c1 - c0) / 8 * 8;
    const long sx = g.sw * ldx;
    const int k3s1 = g.kw == 3 && g.sw == 1 && g.dw == 1;
    /* Identity, ReLU and clip without residual: a clamp, stored directly. */
    const int clamp = e.res_mode == 0 && (e.act == LNC_ACT_IDENTITY || e.act == LNC_ACT_RELU ||
                                          e.act == LNC_ACT_CLIP);
    const __m256 lo = _mm256_set1_ps(e.act == LNC_ACT_CLIP ? e.a : (e.act == LNC_ACT_RELU ? 0.0f : -INFINITY));
    const __m256 hi = _mm256_set1_ps(e.act == LNC_ACT_CLIP ? e.b : INFINITY);
    long ow_lo, ow_hi, cb, ow = 0;
    /* Interior columns: every kx tap inside the input. */
    ow_lo = (g.pl + g.sw - 1) / g.sw;
    ow_hi = g.w - 1 - (g.kw - 1) * g.dw + g.pl >= 0
                ? (g.w - 1 - (g.kw - 1) * g.dw + g.pl) / g.sw + 1
                : 0;
    if (ow_hi > g.ow) ow_hi = g.ow;
    if (ow_lo > ow_hi) ow_lo = ow_hi;
    while (ow < g.ow) {
        if (ow >= ow_lo && ow + 4 <= ow_hi) {
            /* Four interior pixels, all channel blocks (their windows stay in L1). */
            for (cb = c0; cb < C8; cb += 8) {
                const __m256 bv = bias ? _mm256_loadu_ps(bias + cb) : _mm256_setzero_ps();
                __m256 a0 = bv, a1 = bv, a2 = bv, a3 = bv;
                long ky, kx, q;
                for (ky = 0; ky < g.kh; ky++) {
                    const float *xrow, *wr;
                    if (!xr[ky]) continue;
                    xrow = xr[ky] + (ow * g.sw - g.pl) * ldx + cb;
                    wr = w + ky * g.kw * C + cb;
                    if (k3s1) {
                        /* 3 taps, stride 1: the four windows share input columns (6 loads
                         * instead of 12). */
                        const __m256 w0 = _mm256_loadu_ps(wr), w1 = _mm256_loadu_ps(wr + C);
                        const __m256 w2 = _mm256_loadu_ps(wr + 2 * C);
                        __m256 xa = _mm256_loadu_ps(xrow), xb = _mm256_loadu_ps(xrow + ldx);
                        __m256 xc = _mm256_loadu_ps(xrow + 2 * ldx);
                        a0 = _mm256_fmadd_ps(xa, w0, a0);
                        a0 = _mm256_fmadd_ps(xb, w1, a0);
                        a0 = _mm256_fmadd_ps(xc, w2, a0);
                        a1 = _mm256_fmadd_ps(xb, w0, a1);
                        a1 = _mm256_fmadd_ps(xc, w1, a1);
                        a2 = _mm256_fmadd_ps(xc, w0, a2);
                        xa = _mm256_loadu_ps(xrow + 3 * ldx);
                        a1 = _mm256_fmadd_ps(xa, w2, a1);
                        a2 = _mm256_fmadd_ps(xa, w1, a2);
                        a3 = _mm256_fmadd_ps(xa, w0, a3);
                        xb = _mm256_loadu_ps(xrow + 4 * ldx);
                        a2 = _mm256_fmadd_ps(xb, w2, a2);
                        a3 = _mm256_fmadd_ps(xb, w1, a3);
                        xc = _mm256_loadu_ps(xrow + 5 * ldx);
                        a3 = _mm256_fmadd_ps(xc, w2, a3);
                        continue;
                    }
                    for (kx = 0; kx < g.kw; kx++) {
                        const __m256 wv = _mm256_loadu_ps(wr + kx * C);
                        const float *xp = xrow + kx * g.dw * ldx;
                        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(xp), wv, a0);
                        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(xp + sx), wv, a1);
                        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(xp + 2 * sx), wv, a2);
                        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(xp + 3 * sx), wv, a3);
                    }
                }
                if (e.act == LNC_ACT_HARDSWISH && e.res_mode == 0) {
                    float *yq = yr + ow * ldy + cb;
                    _mm256_storeu_ps(yq, lnc_hswish8(a0));
                    _mm256_storeu_ps(yq + ldy, lnc_hswish8(a1));
                    _mm256_storeu_ps(yq + 2 * ldy, lnc_hswish8(a2));
                    _mm256_storeu_ps(yq + 3 * ldy, lnc_hswish8(a3));
                } else if (clamp) {
                    float *yq = yr + ow * ldy + cb;
                    _mm256_storeu_ps(yq, _mm256_min_ps(hi, _mm256_max_ps(lo, a0)));
                    _mm256_storeu_ps(yq + ldy, _mm256_min_ps(hi, _mm256_max_ps(lo, a1)));
                    _mm256_storeu_ps(yq + 2 * ldy, _mm256_min_ps(hi, _mm256_max_ps(lo, a2)));
                    _mm256_storeu_ps(yq + 3 * ldy, _mm256_min_ps(hi, _mm256_max_ps(lo, a3)));
                } else {
                    const __m256 acc[4] = {a0, a1, a2, a3};
                    for (q = 0; q < 4; q++)
                        lnc_epi_store8(&e, acc[q], NULL, cb, 8, yr + (ow + q) * ldy + cb,
                                       rr ? rr + (ow + q) * e.ldr + cb : NULL);
                }
            }
            ow += 4;
        } else {
            const long iw0 = ow * g.sw - g.pl;
            long kx0 = 0, kx1 = g.kw, ky, kx;
            while (kx0 < kx1 && iw0 + kx0 * g.dw < 0) kx0++;
            while (kx1 > kx0 && iw0 + (kx1 - 1) * g.dw >= g.w) kx1--;
            for (cb = c0; cb < C8; cb += 8) {
                __m256 a0 = bias ? _mm256_loadu_ps(bias + cb) : _mm256_setzero_ps();
                for (ky = 0; ky < g.kh; ky++) {
                    const float *xrow, *wr;
                    if (!xr[ky]) continue;
                    xrow = xr[ky] + iw0 * ldx + cb;
                    wr = w + ky * g.kw * C + cb;
                    for (kx = kx0; kx < kx1; kx++)
                        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(xrow + kx * g.dw * ldx),
                                             _mm256_loadu_ps(wr + kx * C), a0);
                }
                lnc_epi_store8(&e, a0, NULL, cb, 8, yr + ow * ldy + cb,
                               rr ? rr + ow * e.ldr + cb : NULL);
            }
            ow += 1;
        }
    }
    return C8;
}
#endif

/* One depthwise output row (channels [c0, c1)) from input row pointers. */
static void lnc_dw_row(const lnc_conv *g, const lnc_epi *e, const float *const *xr,
                       const float *w, const float *bias, float *yr, const float *rr, long c0,
                       long c1) {
    long ow;
#if defined(LNC_AVX2) && !defined(__AVX512F__)
    c0 = lnc_dw_row_avx2(g, e, xr, w, bias, yr, rr, c0, c1);
#endif
    if (c0 < c1)
        for (ow = 0; ow < g->ow; ow++) lnc_dw_px(g, e, xr, w, bias, ow, c0, c1, yr, rr);
}

#define LNC_MAX_KH 16

static void lnc_dw_part(void *ctx, int part, int tid) {
    const lnc_cv_job *j = (const lnc_cv_job *)ctx;
    (void)tid;
    const lnc_conv *g = j->g;
    const lnc_epi *e = j->e;
    long r0, r1, row;
    lnc_chunk(g->n * g->oh, j->parts, part, 1, &r0, &r1);
    for (row = r0; row < r1; row++) {
        const long n = row / g->oh, oh = row % g->oh;
        const float *xr[LNC_MAX_KH];
        int ky;
        for (ky = 0; ky < g->kh && ky < LNC_MAX_KH; ky++) {
            const long ih = oh * g->sh - g->pt + ky * g->dh;
            xr[ky] = (ih < 0 || ih >= g->h) ? NULL : j->x + (n * g->h + ih) * g->w * g->ldx;
        }
        lnc_dw_row(g, e, xr, j->w, j->bias, j->y + row * g->ow * g->ldy,
                   e->res ? e->res + row * g->ow * e->ldr : NULL, 0, g->c);
    }
}

void lnc_conv_dw(const lnc_conv *g, const float *x, const float *w, const float *bias,
                 float *y, const lnc_epi *e) {
    lnc_cv_job j;
    j.g = g; j.x = x; j.w = w; j.bias = bias; j.y = y; j.e = e;
    j.parts = lnc_pool_threads() > 1 ? (int)LNC_MIN(4 * lnc_pool_threads(), g->n * g->oh) : 1;
    if (g->n * g->oh * g->ow * g->c * g->kh * g->kw < 32768) j.parts = 1;
    lnc_parallel_for(j.parts, lnc_dw_part, &j);
}

/* ----- pointwise followed by depthwise, fused over rows ---------------------------- */

typedef struct {
    const lnc_conv *gp, *gd;
    const float *x, *wp, *bp, *wd, *bd;
    const lnc_epi *ep, *ed;
    float *y, *ring;
    long rows; /* ring rows per thread */
    int parts;
} lnc_pwdw_job;

/* Each part owns the weight panels [q0, q1) — channels [q0*NR, q1*NR) of the expanded
 * tensor — for every row: threads share no work and recompute nothing. */
static void lnc_pwdw_part(void *ctx, int part, int tid) {
    const lnc_pwdw_job *j = (const lnc_pwdw_job *)ctx;
    const lnc_conv *gp = j->gp, *gd = j->gd;
    const long W = gd->w, M = gp->m, R = j->rows;
    const long panels = (M + LNC_NR - 1) / LNC_NR;
    float *ring = j->ring + (long)tid * R * W * M;
    long q0, q1, c0, c1, row, cur_n = -1, next = 0;
    lnc_chunk(panels, j->parts, part, 1, &q0, &q1);
    c0 = q0 * LNC_NR;
    c1 = LNC_MIN(q1 * LNC_NR, M);
    if (c0 >= c1) return;
    for (row = 0; row < gd->n * gd->oh; row++) {
        const long n = row / gd->oh, oh = row % gd->oh;
        const float *xr[LNC_MAX_KH];
        long lo = oh * gd->sh - gd->pt, hi = lo + (gd->kh - 1) * gd->dh, ih;
        int ky;
        if (n != cur_n) { cur_n = n; next = 0; }
        if (lo < 0) lo = 0;
        if (hi > gd->h - 1) hi = gd->h - 1;
        if (next < lo) next = lo;
        if (hi >= next) {
            /* The window needs rows the ring does not hold yet: compute ahead every row the
             * ring can take (up to lo + R - 1), as few long GEMMs (one per run of ring
             * slots), so that narrow images still fill whole register tiles. */
            const long end = LNC_MIN(gd->h - 1, lo + R - 1);
            ih = next;
            while (ih <= end) {
                const long slot = ih % R, cnt = LNC_MIN(end - ih + 1, R - slot);
                const float *a = j->x + (n * gp->h + ih) * gp->w * gp->ldx;
                float *dst = ring + slot * W * M;
                long q;
                for (q = q0; q < q1; q++)
                    lnc_panel_rows(a, gp->ldx, cnt * W, gp->c, j->wp + q * gp->c * LNC_NR, j->bp,
                                   j->ep, NULL, q * LNC_NR, LNC_MIN(LNC_NR, M - q * LNC_NR), dst,
                                   M);
                ih += cnt;
            }
            next = end + 1;
        }
        for (ky = 0; ky < gd->kh && ky < LNC_MAX_KH; ky++) {
            const long r = oh * gd->sh - gd->pt + ky * gd->dh;
            xr[ky] = (r < 0 || r >= gd->h) ? NULL : ring + (r % R) * W * M;
        }
        lnc_dw_row(gd, j->ed, xr, j->wd, j->bd, j->y + row * gd->ow * gd->ldy,
                   j->ed->res ? j->ed->res + row * gd->ow * j->ed->ldr : NULL, c0, c1);
    }
}

long lnc_pwdw_ring_rows(long kh, long dh, long sh, long h, long w) {
    const long win = (kh - 1) * dh + 1, cap = h > win ? h : win;
    const long r = win + sh * ((48 + w - 1) / (w > 0 ? w : 1));
    return r < cap ? r : cap;
}

void lnc_conv_pw_dw(const lnc_conv *gp, const float *x, const float *wp, const float *bp,
                    const lnc_epi *ep, const lnc_conv *gd, const float *wd, const float *bd,
                    const lnc_epi *ed, float *y, float *ring) {
    lnc_pwdw_job j;
    const long panels = (gp->m + LNC_NR - 1) / LNC_NR;
    j.gp = gp; j.gd = gd; j.x = x; j.wp = wp; j.bp = bp; j.wd = wd; j.bd = bd;
    j.ep = ep; j.ed = ed; j.y = y; j.ring = ring;
    j.rows = lnc_pwdw_ring_rows(gd->kh, gd->dh, gd->sh, gd->h, gd->w);
    /* More parts than threads (each a group of channel panels) balance uneven cores. */
    j.parts = lnc_pool_threads() > 1 ? (int)LNC_MIN(2 * lnc_pool_threads(), panels) : 1;
    if (gd->n * gd->oh * gd->ow * gp->m * gp->c < 32768) j.parts = 1;
    lnc_parallel_for(j.parts, lnc_pwdw_part, &j);
}

/* ----- direct convolution (first layer, group conv, dilation) ----------------------- */

typedef struct {
    const lnc_conv *g;
    const long *xs;
    const float *x, *w, *bias;
    float *y, *tmp;
    const lnc_epi *e;
    long npix, K, panels, tstride, rb;
    int parts, by_rows;
} lnc_i2c_job;

/* Output rows a row-window block holds (see lnc_conv_direct). */
static long lnc_direct_rb(const lnc_conv *g) {
    long rb = (LNC_I2C_ROWS + g->ow - 1) / g->ow;
    return rb > g->oh ? g->oh : (rb < 1 ? 1 : rb);
}

/* Gather (dilated): receptive fields of LNC_I2C_ROWS pixels, rows ordered (kx, ky, c). */
static void lnc_i2c_part(void *ctx, int part, int tid) {
    const lnc_i2c_job *j = (const lnc_i2c_job *)ctx;
    const lnc_conv *g = j->g;
    const lnc_epi *e = j->e;
    const long *xs = j->xs;
    const long block = LNC_I2C_ROWS, K = j->K, cpg = g->c / g->group, mpg = g->m / g->group;
    float *a = j->tmp + (long)tid * j->tstride;
    long p0, p1, pb, p, grp, q;
    lnc_chunk(j->npix, j->parts, part, LNC_MR, &p0, &p1);
    for (pb = p0; pb < p1; pb += block) {
        long pe = LNC_MIN(pb + block, p1);
        for (grp = 0; grp < g->group; grp++) {
            /* Gather the receptive fields of pixels pb..pe: row (kx, ky, c). */
            for (p = pb; p < pe; p++) {
                long n = p / (g->oh * g->ow), rem = p % (g->oh * g->ow);
                long oh = rem / g->ow, ow = rem % g->ow, idx = 0, c;
                float *row = a + (p - pb) * K;
                int ky, kx;
                for (kx = 0; kx < g->kw; kx++) {
                    long iw = ow * g->sw - g->pl + kx * g->dw;
                    for (ky = 0; ky < g->kh; ky++) {
                        long ih = oh * g->sh - g->pt + ky * g->dh;
                        if (ih < 0 || ih >= g->h || iw < 0 || iw >= g->w) {
                            for (c = 0; c < cpg; c++) row[idx++] = 0.0f;
                        } else {
                            const float *xp = j->x + n * xs[0] + grp * cpg * xs[1] + ih * xs[2] + iw * xs[3];
                            if (xs[1] == 1)
                                for (c = 0; c < cpg; c++) row[idx++] = xp[c];
                            else
                                for (c = 0; c < cpg; c++) row[idx++] = xp[c * xs[1]];
                        }
                    }
                }
            }
            for (q = 0; q < j->panels; q++) {
                long ch0 = grp * mpg + q * LNC_NR, nch = LNC_MIN(LNC_NR, mpg - q * LNC_NR);
                const float *wq = j->w + (grp * j->panels + q) * K * LNC_NR;
                /* Bias, slope and channels are indexed from ch0 in the whole output. */
                lnc_panel_rows(a, K, pe - pb, K, wq, j->bias, e,
                               e->res ? e->res + pb * e->ldr : NULL, ch0, nch,
                               j->y + pb * g->ldy, g->ldy);
            }
        }
    }
}

/* Undilated columns (dw == 1): a block of up to `rb` output rows of one image. For each of
 * them the kh input rows it reads are copied into a zero-padded window laid out
 * [iw + pl][ky][c] (pl + w + pr columns), in which the receptive field of output column ow,
 * ordered (kx, ky, c) like the packed weights, is the contiguous run of K floats at
 * ow * sw * kh * cpg: the GEMM tile reads it in place (no per-pixel gathering). Parts are
 * row ranges, or panel ranges (every part then builds all windows) when rows are few. */
static void lnc_direct_rows_part(void *ctx, int part, int tid) {
    const lnc_i2c_job *j = (const lnc_i2c_job *)ctx;
    const lnc_conv *g = j->g;
    const lnc_epi *e = j->e;
    const long *xs = j->xs;
    const long K = j->K, cpg = g->c / g->group, mpg = g->m / g->group;
    const long wp = g->pl + g->w + g->pr, rowlen = wp * g->kh * cpg, colstep = g->sw * g->kh * cpg;
    float *buf = j->tmp + (long)tid * j->tstride;
    long r0 = 0, r1 = g->n * g->oh, q0 = 0, q1 = j->panels, rb0, grp, q;
    if (j->by_rows)
        lnc_chunk(g->n * g->oh, j->parts, part, 1, &r0, &r1);
    else
        lnc_chunk(j->panels, j->parts, part, 1, &q0, &q1);
    for (rb0 = r0; rb0 < r1;) {
        const long n = rb0 / g->oh, oh0 = rb0 % g->oh;
        const long nr = LNC_MIN(LNC_MIN(j->rb, r1 - rb0), g->oh - oh0), np = nr * g->ow;
        const long pix0 = rb0 * g->ow;
        for (grp = 0; grp < g->group; grp++) {
            const float *xg = j->x + n * xs[0] + grp * cpg * xs[1];
            long i, iwp, ky, c, p, r;
            for (i = 0; i < nr; i++) {
                float *dst = buf + i * rowlen;
                const long cs = g->kh * cpg; /* column stride of the window */
                for (ky = 0; ky < g->kh; ky++) {
                    const long ih = (oh0 + i) * g->sh - g->pt + ky * g->dh;
                    float *d0 = dst + ky * cpg;
                    if (ih < 0 || ih >= g->h) {
                        for (iwp = 0; iwp < wp; iwp++)
                            for (c = 0; c < cpg; c++) d0[iwp * cs + c] = 0.0f;
                        continue;
                    }
                    for (iwp = 0; iwp < g->pl; iwp++)
                        for (c = 0; c < cpg; c++) d0[iwp * cs + c] = 0.0f;
                    for (iwp = g->pl + g->w; iwp < wp; iwp++)
                        for (c = 0; c < cpg; c++) d0[iwp * cs + c] = 0.0f;
                    if (xs[1] == 1) {
                        /* Pixel-major: one run of cpg channels per column. */
                        for (iwp = 0; iwp < g->w; iwp++) {
                            const float *xp = xg + ih * xs[2] + iwp * xs[3];
                            float *d = d0 + (iwp + g->pl) * cs;
                            for (c = 0; c < cpg; c++) d[c] = xp[c];
                        }
                    } else if (cpg == 3 && xs[3] == 1) {
                        /* Planar RGB (NCHW input, the usual first layer). */
                        const float *x0 = xg + ih * xs[2], *x1 = x0 + xs[1], *x2 = x1 + xs[1];
                        float *d = d0 + g->pl * cs;
                        const long w = g->w;
                        for (iwp = 0; iwp < w; iwp++) {
                            d[iwp * cs] = x0[iwp];
                            d[iwp * cs + 1] = x1[iwp];
                            d[iwp * cs + 2] = x2[iwp];
                        }
                    } else {
                        /* Planar (NCHW input): one input row per channel. */
                        for (c = 0; c < cpg; c++) {
                            const float *xp = xg + c * xs[1] + ih * xs[2];
                            float *d = d0 + g->pl * cs + c;
                            const long s3 = xs[3], w = g->w;
                            for (iwp = 0; iwp < w; iwp++) d[iwp * cs] = xp[iwp * s3];
                        }
                    }
                }
            }
#if defined(__GNUC__)
            /* Input rows of the next block: short row streams that the hardware prefetcher
             * does not pick up in time (the input is usually not in L2). */
            if (rb0 + nr < r1 && (rb0 + nr) % g->oh != 0) {
                const long ihn = (oh0 + nr) * g->sh - g->pt;
                long ih, cc, o;
                for (ih = ihn < 0 ? 0 : ihn; ih < LNC_MIN(g->h, ihn + nr * g->sh + (g->kh - 1) * g->dh + 1); ih++)
                    for (cc = 0; cc < (xs[1] == 1 ? 1 : cpg); cc++) {
                        const char *src = (const char *)(xg + cc * xs[1] + ih * xs[2]);
                        const long bytes = (long)sizeof(float) * (xs[1] == 1 ? g->w * xs[3] : (g->w - 1) * xs[3] + 1);
                        for (o = 0; o < bytes; o += 64) __builtin_prefetch(src + o);
                    }
            }
#endif
            for (q = q0; q < q1; q++) {
                const long ch0 = grp * mpg + q * LNC_NR, nch = LNC_MIN(LNC_NR, mpg - q * LNC_NR);
                const float *wq = j->w + (grp * j->panels + q) * K * LNC_NR;
                long row = 0, col = 0; /* of pixel p in the block */
                for (p = 0; p < np; p += LNC_MR) {
                    const long tr = LNC_MIN(LNC_MR, np - p);
                    const float *xr[LNC_MR];
                    for (r = 0; r < tr; r++) {
                        xr[r] = buf + row * rowlen + col * colstep;
                        if (++col == g->ow) { col = 0; row++; }
                    }
                    lnc_tile(tr, K, xr, wq, j->bias, e,
                             e->res ? e->res + (pix0 + p) * e->ldr : NULL, ch0, nch,
                             j->y + (pix0 + p) * g->ldy, g->ldy);
                }
            }
        }
        rb0 += nr;
    }
}

void lnc_conv_direct(const lnc_conv *g, const long *xs, const float *x, const float *w,
                     const float *bias, float *y, const lnc_epi *e, float *tmp) {
    lnc_i2c_job j;
    const int t = lnc_pool_threads();
    const long cpg = g->c / g->group;
    long win;
    j.g = g; j.xs = xs; j.x = x; j.w = w; j.bias = bias; j.y = y; j.e = e; j.tmp = tmp;
    j.npix = g->n * g->oh * g->ow;
    j.K = g->kh * g->kw * cpg;
    j.panels = (g->m / g->group + LNC_NR - 1) / LNC_NR;
    /* Per-thread scratch (lnc sizes it the same way): the larger of LNC_I2C_ROWS gathered
     * receptive fields and `rb` row windows. */
    j.rb = lnc_direct_rb(g);
    win = j.rb * (g->pl + g->w + g->pr) * g->kh * cpg;
    j.tstride = LNC_I2C_ROWS * j.K > win ? LNC_I2C_ROWS * j.K : win;
    if (g->dw == 1) {
        const long rows = g->n * g->oh;
        /* Rows while every part still gets whole blocks (full register tiles), else panels. */
        j.by_rows = rows >= 4L * t * j.rb || j.panels < t;
        j.parts = t > 1 ? (int)(j.by_rows ? LNC_MIN(4L * t, rows) : LNC_MIN(2L * t, j.panels)) : 1;
        if (j.npix * g->m * j.K < 32768) j.parts = 1;
        lnc_parallel_for(j.parts, lnc_direct_rows_part, &j);
        return;
    }
    j.parts = t;
    if (j.npix * g->m * j.K < 32768 || j.npix < (long)LNC_MR * j.parts) j.parts = 1;
    lnc_parallel_for(j.parts, lnc_i2c_part, &j);
}

/* ----- pooling ----------------------------------------------------------------------- */

typedef struct {
    const lnc_conv *g;
    const float *x;
    float *y;
    int parts;
} lnc_pool_job;

/* Output rows of one part; channels in blocks of 8 (AVX2) and 64 (portable). NaN
 * propagates: any NaN in the window gives NaN. */
static void lnc_maxpool_part(void *ctx, int part, int tid) {
    const lnc_pool_job *j = (const lnc_pool_job *)ctx;
    const lnc_conv g = *j->g;
    const float *const x = j->x;
    float *const y = j->y;
    long r0, r1, row, ow, c;
    float acc[64];
    (void)tid;
    lnc_chunk(g.n * g.oh, j->parts, part, 1, &r0, &r1);
    for (row = r0; row < r1; row++) {
        const long n = row / g.oh, oh = row % g.oh;
        long ky0 = 0, ky1 = g.kh;
        while (ky0 < ky1 && oh * g.sh - g.pt + ky0 * g.dh < 0) ky0++;
        while (ky1 > ky0 && oh * g.sh - g.pt + (ky1 - 1) * g.dh >= g.h) ky1--;
        for (ow = 0; ow < g.ow; ow++) {
            float *yp = y + (row * g.ow + ow) * g.ldy;
            const long iw0 = ow * g.sw - g.pl;
            long kx0 = 0, kx1 = g.kw, cb = 0, ky, kx;
            const float *xw;
            while (kx0 < kx1 && iw0 + kx0 * g.dw < 0) kx0++;
            while (kx1 > kx0 && iw0 + (kx1 - 1) * g.dw >= g.w) kx1--;
            /* Window origin (valid taps only): tap (ky, kx) at xw + ky*rs + kx*cs. */
            xw = x + ((n * g.h + oh * g.sh - g.pt) * g.w + iw0) * g.ldx;
#if defined(LNC_AVX2)
            {
                const long rs = g.dh * g.w * g.ldx, cs = g.dw * g.ldx;
                for (; cb + 64 <= g.c; cb += 64) {
                    __m256 m[8], nn = _mm256_setzero_ps(), nn2 = nn;
                    int q;
                    for (q = 0; q < 8; q++) m[q] = _mm256_set1_ps(-INFINITY);
                    for (ky = ky0; ky < ky1; ky++)
                        for (kx = kx0; kx < kx1; kx++) {
                            const float *xp = xw + ky * rs + kx * cs + cb;
                            __m256 u0, u1, u2, u3;
                            /* NaN (or inf - inf) in any lane makes the sum NaN; then the
                             * block is redone lane by lane (exact NaN propagation). */
                            u0 = _mm256_loadu_ps(xp); u1 = _mm256_loadu_ps(xp + 8);
                            u2 = _mm256_loadu_ps(xp + 16); u3 = _mm256_loadu_ps(xp + 24);
                            m[0] = _mm256_max_ps(m[0], u0); m[1] = _mm256_max_ps(m[1], u1);
                            m[2] = _mm256_max_ps(m[2], u2); m[3] = _mm256_max_ps(m[3], u3);
                            u0 = _mm256_add_ps(_mm256_add_ps(u0, u1), _mm256_add_ps(u2, u3));
                            nn = _mm256_add_ps(nn, u0);
                            u0 = _mm256_loadu_ps(xp + 32); u1 = _mm256_loadu_ps(xp + 40);
                            u2 = _mm256_loadu_ps(xp + 48); u3 = _mm256_loadu_ps(xp + 56);
                            m[4] = _mm256_max_ps(m[4], u0); m[5] = _mm256_max_ps(m[5], u1);
                            m[6] = _mm256_max_ps(m[6], u2); m[7] = _mm256_max_ps(m[7], u3);
                            u0 = _mm256_add_ps(_mm256_add_ps(u0, u1), _mm256_add_ps(u2, u3));
                            nn2 = _mm256_add_ps(nn2, u0);
                        }
                    nn = _mm256_add_ps(nn, nn2);
                    if (_mm256_movemask_ps(_mm256_cmp_ps(nn, nn, _CMP_UNORD_Q))) break;
                    for (q = 0; q < 8; q++) _mm256_storeu_ps(yp + cb + 8 * q, m[q]);
                }
                for (; cb + 8 <= g.c; cb += 8) {
                    __m256 m0 = _mm256_set1_ps(-INFINITY), nn = _mm256_setzero_ps();
                    for (ky = ky0; ky < ky1; ky++)
                        for (kx = kx0; kx < kx1; kx++) {
                            const __m256 v = _mm256_loadu_ps(xw + ky * rs + kx * cs + cb);
                            m0 = _mm256_max_ps(m0, v);
                            nn = _mm256_or_ps(nn, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
                        }
                    if (_mm256_movemask_ps(nn)) break;
                    _mm256_storeu_ps(yp + cb, m0);
                }
            }
#endif
            for (; cb < g.c; cb += 64) {
                long nb = LNC_MIN(64, g.c - cb);
                for (c = 0; c < nb; c++) acc[c] = -INFINITY;
                for (ky = ky0; ky < ky1; ky++)
                    for (kx = kx0; kx < kx1; kx++) {
                        const float *xp = xw + (ky * g.dh * g.w + kx * g.dw) * g.ldx + cb;
                        for (c = 0; c < nb; c++) {
                            float v = xp[c];
                            acc[c] = (v > acc[c] || v != v) ? v : acc[c];
                        }
                    }
                for (c = 0; c < nb; c++) yp[cb + c] = acc[c];
            }
        }
    }
}

void lnc_maxpool(const lnc_conv *g, const float *x, float *y) {
    lnc_pool_job j;
    const int t = lnc_pool_threads();
    j.g = g; j.x = x; j.y = y;
    j.parts = t > 1 && g->n * g->oh * g->ow * g->c * g->kh * g->kw >= 65536
                  ? (int)LNC_MIN(2L * t, g->n * g->oh)
                  : 1;
    lnc_parallel_for(j.parts, lnc_maxpool_part, &j);
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

/* One contiguous row of lnc_unary_nd: y[i] = EXPR of V = x[i] (a case of its switch). */
#define LNC_UN_ROW(V, EXPR)                                                                \
    for (i = 0; i < n; i++) {                                                              \
        const float V = xp[i];                                                             \
        yp[i] = (EXPR);                                                                    \
    }                                                                                      \
    break;

void lnc_unary_nd(int act, float a, float b, int rank, const long *shape, const float *x,
                  const long *xs, float *y, const long *ys) {
    const long *st[2];
    long n = shape[rank - 1], sx = xs[rank - 1], sy = ys[rank - 1];
    st[0] = xs; st[1] = ys;
    LNC_ND_LOOP(rank, shape, 2, st, {
        const float *xp = x + off_[0];
        float *yp = y + off_[1];
        long i;
        /* Contiguous rows: one loop per activation (the switch hoisted, so the compiler
         * vectorises the cheap ones), each the same expression as lnc_act1. */
        if (sx == 1 && sy == 1) {
            switch (act) {
            case LNC_ACT_RELU: LNC_UN_ROW(v, v < 0.0f ? 0.0f : v)
            case LNC_ACT_CLIP: LNC_UN_ROW(v, v < a ? a : (v > b ? b : v))
            case LNC_ACT_HARDSIGMOID: LNC_UN_ROW(v, lnc_clamp01(a * v + b))
            case LNC_ACT_HARDSWISH: LNC_UN_ROW(v, v * lnc_clamp01((1.0f / 6.0f) * v + 0.5f))
            case LNC_ACT_LEAKYRELU: LNC_UN_ROW(v, v > 0.0f ? v : v * a)
            case LNC_ACT_NEG: LNC_UN_ROW(v, -v)
            default: LNC_UN_ROW(v, lnc_act1(act, a, b, v))
            }
        } else {
            for (i = 0; i < n; i++) yp[i * sy] = lnc_act1(act, a, b, xp[i * sx]);
        }
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

typedef struct {
    long npix, c, ldy;
    const float *const *bases;
    const long *lds, *which, *ch;
    float *y;
    int parts;
} lnc_cmap_job;

#define LNC_CMAP_MAXC 1024

static void lnc_channel_map_part(void *ctx, int part, int tid) {
    const lnc_cmap_job *j = (const lnc_cmap_job *)ctx;
    const long c = j->c;
    long p0, p1, p, k;
    (void)tid;
    lnc_chunk(j->npix, j->parts, part, 1, &p0, &p1);
#if defined(LNC_AVX2)
    if (c <= LNC_CMAP_MAXC) {
        /* Element offsets of every output channel from the lowest source (int32, advanced
         * by the source's pixel stride per pixel): eight channels per gather. */
        int32_t off[LNC_CMAP_MAXC + 8], ld[LNC_CMAP_MAXC + 8];
        const float *lo = j->bases[j->which[0]];
        int ok = 1;
        for (k = 0; k < c; k++)
            if ((uintptr_t)j->bases[j->which[k]] < (uintptr_t)lo) lo = j->bases[j->which[k]];
        for (k = 0; k < c && ok; k++) {
            const long w = j->which[k];
            const intptr_t d = (intptr_t)((uintptr_t)j->bases[w] - (uintptr_t)lo);
            const intptr_t e = d / (intptr_t)sizeof(float) + j->ch[k] + (intptr_t)p1 * j->lds[w];
            if (d % (intptr_t)sizeof(float) != 0 || e > 0x7fffffffL) ok = 0;
            off[k] = (int32_t)(d / (intptr_t)sizeof(float) + j->ch[k] + p0 * j->lds[w]);
            ld[k] = (int32_t)j->lds[w];
        }
        if (ok) {
            for (p = p0; p < p1; p++) {
                float *yp = j->y + p * j->ldy;
                for (k = 0; k + 8 <= c; k += 8) {
                    const __m256i o = _mm256_loadu_si256((const __m256i *)(off + k));
                    _mm256_storeu_ps(yp + k, _mm256_i32gather_ps(lo, o, 4));
                    _mm256_storeu_si256((__m256i *)(off + k),
                                        _mm256_add_epi32(o, _mm256_loadu_si256((const __m256i *)(ld + k))));
                }
                for (; k < c; k++) {
                    yp[k] = lo[off[k]];
                    off[k] += ld[k];
                }
            }
            return;
        }
    }
#endif
    if (c <= LNC_CMAP_MAXC) {
        /* One source pointer per output channel, advanced by its pixel stride. */
        const float *src[LNC_CMAP_MAXC];
        long ld[LNC_CMAP_MAXC];
        for (k = 0; k < c; k++) {
            const long w = j->which[k];
            src[k] = j->bases[w] + j->ch[k] + p0 * j->lds[w];
            ld[k] = j->lds[w];
        }
        for (p = p0; p < p1; p++) {
            float *yp = j->y + p * j->ldy;
            for (k = 0; k < c; k++) {
                yp[k] = *src[k];
                src[k] += ld[k];
            }
        }
        return;
    }
    for (p = p0; p < p1; p++) {
        float *yp = j->y + p * j->ldy;
        for (k = 0; k < c; k++) yp[k] = j->bases[j->which[k]][p * j->lds[j->which[k]] + j->ch[k]];
    }
}

void lnc_channel_map(long npix, long c, const float *const *bases, const long *lds,
                     const long *which, const long *ch, float *y, long ldy) {
    lnc_cmap_job j;
    const int t = lnc_pool_threads();
    j.npix = npix; j.c = c; j.ldy = ldy; j.bases = bases; j.lds = lds; j.which = which;
    j.ch = ch; j.y = y;
    j.parts = t > 1 && npix * c >= 65536 ? t : 1;
    if (c <= 0) return;
    lnc_parallel_for(j.parts, lnc_channel_map_part, &j);
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

typedef struct {
    long M, N, K, ars, acs, brs, crs, ccs;
    float alpha, beta;
    const float *a, *b, *c;
    float *y;
    int parts;
} lnc_gemm_job;

/* Rows of y, columns [n0, n1), with b rows contiguous (bcs == 1): eight rows of b per pass
 * over y (y stays in L1 while b streams through once). */
static void lnc_gemm_part(void *ctx, int part, int tid) {
    const lnc_gemm_job *j = (const lnc_gemm_job *)ctx;
    const long N = j->N, K = j->K, brs = j->brs, acs = j->acs;
    long n0, n1, i, k, n;
    (void)tid;
    lnc_chunk(N, j->parts, part, 16, &n0, &n1);
    for (i = 0; i < j->M; i++) {
        const float *ar = j->a + i * j->ars;
        float *yr = j->y + i * N;
        for (n = n0; n < n1; n++) yr[n] = 0.0f;
        for (k = 0; k + 8 <= K; k += 8) {
            const float *b0 = j->b + k * brs;
            const float *b1 = b0 + brs, *b2 = b1 + brs, *b3 = b2 + brs;
            const float *b4 = b3 + brs, *b5 = b4 + brs, *b6 = b5 + brs, *b7 = b6 + brs;
            const float a0 = ar[k * acs], a1 = ar[(k + 1) * acs], a2 = ar[(k + 2) * acs];
            const float a3 = ar[(k + 3) * acs], a4 = ar[(k + 4) * acs], a5 = ar[(k + 5) * acs];
            const float a6 = ar[(k + 6) * acs], a7 = ar[(k + 7) * acs];
            n = n0;
#if defined(LNC_AVX2)
            {
                const __m256 v0 = _mm256_set1_ps(a0), v1 = _mm256_set1_ps(a1);
                const __m256 v2 = _mm256_set1_ps(a2), v3 = _mm256_set1_ps(a3);
                const __m256 v4 = _mm256_set1_ps(a4), v5 = _mm256_set1_ps(a5);
                const __m256 v6 = _mm256_set1_ps(a6), v7 = _mm256_set1_ps(a7);
                for (; n + 8 <= n1; n += 8) {
                    __m256 s0 = _mm256_loadu_ps(yr + n), s1;
                    s0 = _mm256_fmadd_ps(v0, _mm256_loadu_ps(b0 + n), s0);
                    s1 = _mm256_mul_ps(v1, _mm256_loadu_ps(b1 + n));
                    s0 = _mm256_fmadd_ps(v2, _mm256_loadu_ps(b2 + n), s0);
                    s1 = _mm256_fmadd_ps(v3, _mm256_loadu_ps(b3 + n), s1);
                    s0 = _mm256_fmadd_ps(v4, _mm256_loadu_ps(b4 + n), s0);
                    s1 = _mm256_fmadd_ps(v5, _mm256_loadu_ps(b5 + n), s1);
                    s0 = _mm256_fmadd_ps(v6, _mm256_loadu_ps(b6 + n), s0);
                    s1 = _mm256_fmadd_ps(v7, _mm256_loadu_ps(b7 + n), s1);
                    _mm256_storeu_ps(yr + n, _mm256_add_ps(s0, s1));
                }
            }
#endif
            for (; n < n1; n++)
                yr[n] += (a0 * b0[n] + a1 * b1[n] + a2 * b2[n] + a3 * b3[n]) +
                         (a4 * b4[n] + a5 * b5[n] + a6 * b6[n] + a7 * b7[n]);
        }
        for (; k < K; k++) {
            const float av = ar[k * acs];
            const float *br = j->b + k * brs;
            for (n = n0; n < n1; n++) yr[n] += av * br[n];
        }
        for (n = n0; n < n1; n++) {
            float v = j->alpha * yr[n];
            if (j->c) v += j->beta * j->c[i * j->crs + n * j->ccs];
            yr[n] = v;
        }
    }
}

void lnc_gemm(long M, long N, long K, float alpha, const float *a, long ars, long acs,
              const float *b, long brs, long bcs, float beta, const float *c, long crs,
              long ccs, float *y) {
    long i, k, n;
    if (bcs == 1) {
        lnc_gemm_job j;
        const int t = lnc_pool_threads();
        j.M = M; j.N = N; j.K = K; j.ars = ars; j.acs = acs; j.brs = brs; j.crs = crs;
        j.ccs = ccs; j.alpha = alpha; j.beta = beta; j.a = a; j.b = b; j.c = c; j.y = y;
        j.parts = M * N * K >= 65536 && N >= 64L * t ? t : 1;
        lnc_parallel_for(j.parts, lnc_gemm_part, &j);
        return;
    }
    for (i = 0; i < M; i++) {
        float *yr = y + i * N;
        for (n = 0; n < N; n++) yr[n] = 0.0f;
        for (k = 0; k < K; k++) {
            const float av = a[i * ars + k * acs];
            const float *br = b + k * brs;
            for (n = 0; n < N; n++) yr[n] += av * br[n * bcs];
        }
        for (n = 0; n < N; n++) {
            float v = alpha * yr[n];
            if (c) v += beta * c[i * crs + n * ccs];
            yr[n] = v;
        }
    }
}
