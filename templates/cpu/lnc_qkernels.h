/* lnc CPU runtime: integer (quantized) kernels called by the generated model.c.
 *
 * Every kernel is bit-exact with lnc's reference interpreter (ONNX Runtime's definitions
 * without its saturating shortcuts):
 *   QLinearConv: acc = wrap_i32(sum (x - x_zp) * (w - w_zp[m])) + bias[m];
 *                y = saturate(round_half_even((float)acc * mult[m]) + y_zp)
 *   QuantizeLinear:   y = saturate(round_half_even(x / scale) + zp), NaN -> zp
 *   DequantizeLinear: y = (float)(x - zp) * scale
 * Rounding is the FPU's round-to-nearest-even (the default mode; do not change it).
 * Integer tensors are bytes (u8 or i8, `*_signed` says which), pixel-major like the float
 * ones. Weights are packed by lnc (`w - w_zp` already subtracted):
 *   GEMM (pointwise, gathered and windowed convolutions): the words start with one offset
 *     (in words, from the start) per [group][panel]. A group of weights is LNC_QNR words,
 *     word j holding the int8 weights of channel j for 4 consecutive activation bytes of a
 *     row (byte t: the weight of byte t; zeros past K and past the panel's channels). A
 *     row is the receptive field of a pixel: gathered, K = (ky, kx, c) per conv group, group
 *     g at byte 4g; windowed (lnc_qconv_gemm_win), the bytes of an image from the field's
 *     first pixel on. A panel is a count NP, NP pair chunks [oa, ob, group a, group b], a
 *     count NS and NS single chunks [o, group]; o is the byte offset of the group's
 *     activations in the row. Its weights are the sum over all chunks (a group may be split
 *     into several parts, all-zero parts are left out). lnc proves on the constant weights that
 *     AVX2's saturating `vpmaddubsw` is exact: every pair of weights (k 2i, 2i+1 of a
 *     channel) of a part, and the four weights of a lane of a pair chunk together, satisfy
 *     255 * max(sum of positive weights, -sum of negative weights) <= 32767 for u8
 *     activations (a pair chunk is widened by one `vpmaddwd`).
 *     Activations enter as u = x ^ 0x80 for i8 (x + 128), u = x for u8; bias[m] already
 *     holds - (x_zp + 128*signed) * csum[m], csum[m] = sum_k (w - w_zp[m]);
 *   depthwise: [ceil(kh*kw/2)][C] uint32, pairs of int16 over taps (t even low, t odd
 *     high, a missing last tap 0); channels of full blocks of 16 in the order
 *     [0-3, 8-11, 4-7, 12-15], the rest in order (lnc_dwpos in lnc_qkernels.c).
 * bias / mult / csum: GEMM [group][panel][LNC_QNR] (zero padded); depthwise bias and
 * mult [C] in the depthwise channel order, followed (depthwise only) by [C] int32
 * bias - x_zp * sum_t w_t used for interior pixels of 3x3 kernels, which read x without
 * subtracting x_zp; csum is NULL for depthwise.
 * Depthwise kernels have at most 64 taps.
 */
#ifndef LNC_QKERNELS_H
#define LNC_QKERNELS_H

#include "lnc_kernels.h"

#include <stdint.h>

#define LNC_QMR 6
#define LNC_QNR 16
#define LNC_QROWS 66
/* Pixels per block of rows read in place (no gather buffer): a multiple of LNC_QMR. */
#define LNC_QDROWS 264

typedef struct lnc_qparams {
    int x_zp, y_zp;
    int x_signed, y_signed;
    const int32_t *bias;
    const float *mult;
    const int32_t *csum;
} lnc_qparams;

/* Whether lnc_qconv_gemm reads pointwise rows in place (u8, K a multiple of 4) instead
 * of gathering them into `tmp` (lnc's plan allocates `tmp` exactly when this is 0). */
#define LNC_QGEMM_DIRECT(pw, x_signed, K) ((pw) && !(x_signed) && (K) % 4 == 0)

/* Convolution as a GEMM: tiles of LNC_QROWS output pixels, each row the receptive field
 * as 4*ceil(K/4) bytes (pointwise u8 rows in place, otherwise gathered into `tmp`,
 * threads * LNC_QROWS * 4*ceil(K/4) bytes), times the packed weights with a
 * LNC_QMR x LNC_QNR register tile of 4-byte dot products (AVX2 vpmaddubsw, VNNI vpdpbusd,
 * NEON sdot, or portable C). `xs`: element strides of x (n, c, h, w), any layout. */
void lnc_qconv_gemm(const lnc_conv *g, const long *xs, const uint8_t *x, const uint32_t *w,
                    const lnc_qparams *q, uint8_t *y, uint8_t *tmp);
/* The same GEMM (group 1) without gathering: the row of output pixel (n, oh, ow) is read in
 * place from an image at byte n*is[0] + oh*sh*is[2] + ow*sw*is[3], the packed weights
 * holding each group's byte offset from there (the runs of a receptive field padded to
 * whole groups, lnc emits the offsets for this image). `img` NULL: the image is x itself
 * (u8, pixel-major, is = xs; lnc only does this when no group reads past a run). Else x
 * (any layout) is first copied into `img`, pixel-major and padded: (h + pt + pb) rows of
 * (w + pl + pr) pixels of c bytes, x_zp outside x, i8 flipped to u8 (x ^ 0x80), + 4 bytes. */
void lnc_qconv_gemm_win(const lnc_conv *g, const long *xs, const uint8_t *x, const uint32_t *w,
                        const lnc_qparams *q, uint8_t *y, uint8_t *img);
/* Depthwise convolution (group == C == M), pixel-major in and out. */
void lnc_qconv_dw(const lnc_conv *g, const uint8_t *x, const uint32_t *w, const lnc_qparams *q,
                  uint8_t *y);

/* Global average pooling of a pixel-major u8 (sgn 0) / i8 (sgn 1) map, each byte
 * dequantized ((float)(x - zp) * scale) and summed in lnc_global_pool's order. */
void lnc_qglobal_avgpool(long n, long hw, long c, long ldx, int sgn, float scale, int zp,
                         const uint8_t *x, float *y);

/* Max pooling of u8 (sgn 0) or i8 (sgn 1) pixel-major maps, the geometry of lnc_maxpool
 * (taps outside the input are skipped; exact: integers compare exactly). */
void lnc_qmaxpool(const lnc_conv *g, int sgn, const uint8_t *x, uint8_t *y);

/* lnc_channel_map on bytes: output channel j of pixel p is channel ch[j] of source which[j].
 * With SSSE3 / NEON and nwin > 0, a byte-shuffle program does it 16 bytes at a time: window
 * k loads the 16 bytes at channel win[3k + 2] of source win[3k + 1], shuffles them by
 * mask[16k ..] (0x80: zero) and ORs them into output bytes [win[3k], win[3k] + 16); the
 * windows of one block are consecutive (the emitter's quant::shuffle_program). */
void lnc_qchannel_map(long npix, long c, const uint8_t *const *bases, const long *lds,
                      const long *which, const long *ch, uint8_t *y, long ldy, long nwin,
                      const long *win, const uint8_t *mask);

/* n-d strided loops (see lnc_copy_nd). */
void lnc_quantize_nd(float scale, int zp, int y_signed, int rank, const long *shape,
                     const float *x, const long *xs, uint8_t *y, const long *ys);
void lnc_dequantize_nd(float scale, int zp, int x_signed, int rank, const long *shape,
                       const uint8_t *x, const long *xs, float *y, const long *ys);
/* y = table[byte of x] over the n-d nest (element strides): an elementwise chain from one
 * quantized tensor to a QuantizeLinear, tabulated on its 256 byte values by lnc. */
void lnc_qlut_nd(const uint8_t *table, int rank, const long *shape, const uint8_t *x,
                 const long *xs, uint8_t *y, const long *ys);
void lnc_copy_nd_u8(int rank, const long *shape, const uint8_t *x, const long *xs, uint8_t *y,
                    const long *ys);

/* Residual add (mul: product) of two quantized tensors (a QDQ graph's DequantizeLinear x2,
 * f32 Add / Mul, QuantizeLinear), each element as those compute it:
 *   y = saturate(round_half_even(((float)(a - a_zp) * a_scale + (float)(b - b_zp) * b_scale)
 *                                / y_scale) + y_zp) ('*' for '+' with mul), NaN -> y_zp;
 * an operand's strides may be 0 (broadcast). */
typedef struct lnc_qadd_params {
    float a_scale, b_scale, y_scale;
    int a_zp, b_zp, y_zp;
    int a_signed, b_signed, y_signed;
    int mul; /* the product instead of the sum */
} lnc_qadd_params;
void lnc_qadd_nd(const lnc_qadd_params *p, int rank, const long *shape, const uint8_t *a,
                 const long *as, const uint8_t *b, const long *bs, uint8_t *y, const long *ys);

#endif
