/* lnc CPU runtime: kernels called by the generated model.c.
 *
 * Layout conventions (see ARCHITECTURE.md, "ir::cpu::Plan"):
 * - 4-D activations produced by the conv-family kernels are "pixel-major" (NHWC with a
 *   pixel stride `ld` >= C): element (n, c, h, w) is at ((n*H + h)*W + w)*ld + c. A
 *   channel slice of a wider buffer (concat / split as views) is a pointer offset plus ld.
 * - Everything else is described by explicit element strides (n-d loops resolved by lnc).
 * The ISA is chosen by the compiler's predefined macros (__AVX2__, __AVX512F__,
 * __ARM_NEON, __ARM_FEATURE_DOTPROD); without them the code is portable C99.
 */
#ifndef LNC_KERNELS_H
#define LNC_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifndef LNC_THREADS
#define LNC_THREADS 1
#endif

/* Panel width of packed pointwise / GEMM weights (output channels per panel). */
#if defined(__AVX512F__)
#define LNC_NR 32
#else
#define LNC_NR 16
#endif

/* Activation codes of fused epilogues and elementwise kernels. */
enum {
    LNC_ACT_IDENTITY = 0,
    LNC_ACT_RELU = 1,
    LNC_ACT_CLIP = 2,        /* a = min, b = max */
    LNC_ACT_HARDSWISH = 3,
    LNC_ACT_HARDSIGMOID = 4, /* a = alpha, b = beta */
    LNC_ACT_SIGMOID = 5,
    LNC_ACT_SILU = 6,
    LNC_ACT_LEAKYRELU = 7,   /* a = alpha */
    LNC_ACT_PRELU = 8,       /* slope per channel */
    LNC_ACT_ELU = 9,         /* a = alpha */
    LNC_ACT_TANH = 10,
    LNC_ACT_EXP = 11,
    LNC_ACT_LOG = 12,
    LNC_ACT_SQRT = 13,
    LNC_ACT_NEG = 14,
    LNC_ACT_ABS = 15,
    LNC_ACT_FLOOR = 16,
    LNC_ACT_CEIL = 17,
    LNC_ACT_ROUND = 18,
    LNC_ACT_RECIPROCAL = 19,
    LNC_ACT_SIGN = 20,
    LNC_ACT_SOFTPLUS = 21,
    LNC_ACT_SOFTSIGN = 22
};

/* Binary codes. */
enum {
    LNC_BIN_ADD = 0,
    LNC_BIN_SUB = 1,
    LNC_BIN_MUL = 2,
    LNC_BIN_DIV = 3,
    LNC_BIN_MAX = 4,
    LNC_BIN_MIN = 5,
    LNC_BIN_POW = 6,
    LNC_BIN_PRELU = 7,  /* a < 0 ? a * b : a */
    LNC_BIN_AFFINE = 8  /* a * b + c (BatchNorm folded to scale and shift) */
};

/* A fused epilogue: bias (always), then residual / activation in `res_mode` order
 * (0: none, 1: act(acc + r), 2: act(acc) + r). `res` is pixel-major with stride `ldr`. */
typedef struct lnc_epi {
    int act;
    float a, b;
    const float *slope;
    const float *res;
    long ldr;
    int res_mode;
} lnc_epi;

/* Geometry of a 2-D convolution or pooling window on pixel-major tensors. */
typedef struct lnc_conv {
    long n, h, w, c, m, oh, ow;
    int kh, kw, sh, sw, pt, pl, pb, pr, dh, dw, group;
    long ldx, ldy;
} lnc_conv;

/* Thread pool: `lnc_pool_start` once (0 or 1 threads: none), `lnc_pool_stop` at exit. */
int lnc_pool_start(int threads);
void lnc_pool_stop(void);
int lnc_pool_threads(void);
/* Run fn(ctx, i, tid) for i in [0, n) on the pool (dynamically: parts go to whichever
 * thread is free); tid < lnc_pool_threads() identifies the executing thread. */
void lnc_parallel_for(int n, void (*fn)(void *ctx, int i, int tid), void *ctx);

/* Convolutions (pixel-major in and out). Weight packings:
 * pw: [ceil(M/NR)][C][NR]; dw: [kh*kw][C]; direct: see lnc_conv_direct. */
void lnc_conv_pw(const lnc_conv *g, const float *x, const float *w, const float *bias,
                 float *y, const lnc_epi *e);
void lnc_conv_dw(const lnc_conv *g, const float *x, const float *w, const float *bias,
                 float *y, const lnc_epi *e);
/* Direct convolution as an implicit GEMM over the weights packed like pointwise ones per
 * group: [group][panels][kh*kw*C/group][NR], rows ordered (kx, ky, c). Without column
 * dilation, blocks of rb = min(oh, ceil(LNC_I2C_ROWS / ow)) output rows copy the input
 * rows they read into zero-padded windows ([pl + w + pr][kh][C/group] per output row) in
 * which every receptive field is contiguous; with it, receptive fields of LNC_I2C_ROWS
 * pixels are gathered. `tmp`: per thread, the larger of LNC_I2C_ROWS * kh*kw*C/group and
 * rb * (pl + w + pr) * kh * C/group floats. `xs`: element strides of x (n, c, h, w): any
 * layout. */
#define LNC_I2C_ROWS 64
void lnc_conv_direct(const lnc_conv *g, const long *xs, const float *x, const float *w,
                     const float *bias, float *y, const lnc_epi *e, float *tmp);

/* Pointwise convolution (geometry gp, weights packed like lnc_conv_pw) whose output feeds
 * only a depthwise convolution (gd, gd->ldx == gp->m): rows of the pointwise result are
 * computed on demand into a ring of lnc_pwdw_ring_rows() rows per thread (`ring`:
 * threads * rows * W * M floats), so the expanded tensor never goes to memory. The ring
 * holds the depthwise window plus `sh` rows per ceil(48 / W) (whole register tiles on
 * narrow images), at most max(window, h) rows. */
long lnc_pwdw_ring_rows(long kh, long dh, long sh, long h, long w);
void lnc_conv_pw_dw(const lnc_conv *gp, const float *x, const float *wp, const float *bp,
                    const lnc_epi *ep, const lnc_conv *gd, const float *wd, const float *bd,
                    const lnc_epi *ed, float *y, float *ring);

/* Pooling (pixel-major in and out); `count_include_pad` for average pooling. */
void lnc_maxpool(const lnc_conv *g, const float *x, float *y);
void lnc_avgpool(const lnc_conv *g, int count_include_pad, const float *x, float *y);
/* Global pools: x pixel-major [n, hw pixels, ldx], y [n][c] contiguous. */
void lnc_global_pool(int is_max, long n, long hw, long c, long ldx, const float *x, float *y);

/* n-d strided loops (rank <= 6, shapes and strides resolved by lnc, dims coalesced). */
void lnc_copy_nd(int rank, const long *shape, const float *x, const long *xs, float *y,
                 const long *ys);
void lnc_unary_nd(int act, float a, float b, int rank, const long *shape, const float *x,
                  const long *xs, float *y, const long *ys);
void lnc_binary_nd(int op, int rank, const long *shape, const float *a, const long *as,
                   const float *b, const long *bs, const float *c, const long *cs, float *y,
                   const long *ys);
/* y[i] = x[off(i)] where off is the sum over axes of tab[axis][idx]; -1 entries give `fill`.
 * `tabs` holds the tables of every axis back to back; y is contiguous row-major. */
void lnc_gather_nd(int rank, const long *shape, const long *tabs, const float *x, float fill,
                   float *y);
/* Channel gather on pixel-major tensors: y[p][k] = bases[which[k]][p * lds[which[k]] + ch[k]]. */
void lnc_channel_map(long npix, long c, const float *const *bases, const long *lds,
                     const long *which, const long *ch, float *y, long ldy);
/* Reductions: out index over `orank` dims (x strides `os`), reduced over `irank` dims
 * (x strides `is`); y contiguous. kind: 0 mean, 1 sum, 2 max, 3 min. */
void lnc_reduce_nd(int kind, int orank, const long *oshape, const long *os, int irank,
                   const long *ishape, const long *is, const float *x, float *y);
/* Softmax over `d` with `inner` trailing elements, on contiguous data. */
void lnc_softmax(long outer, long d, long inner, int log, const float *x, float *y);
/* y[m][n] = alpha * sum_k a[m*ars + k*acs] * b[k*brs + n*bcs] + beta * c[m*crs + n*ccs]
 * (c may be NULL); y contiguous [M][N]. */
void lnc_gemm(long M, long N, long K, float alpha, const float *a, long ars, long acs,
              const float *b, long brs, long bcs, float beta, const float *c, long crs,
              long ccs, float *y);

#endif
