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
 *   GEMM (pointwise and gathered convolutions): [group][panel][K2/2][LNC_QNR] uint32, each
 *     word a pair of int16 (k even in the low half, k odd in the high half), K = (ky, kx, c)
 *     per group padded with zeros to K2 (even); channels of a panel padded with zeros;
 *   depthwise: [ceil(kh*kw/2)][C] uint32, pairs of int16 over taps (t even low, t odd
 *     high, a missing last tap 0); channels of full blocks of 16 in the order
 *     [0-3, 8-11, 4-7, 12-15], the rest in order (lnc_dwpos in lnc_qkernels.c).
 * bias / mult: GEMM [group][panel][LNC_QNR] (zero padded), depthwise [C] in the depthwise
 * channel order, followed (depthwise only) by [C] int32 bias - x_zp * sum_t w_t used for
 * interior pixels of 3x3 kernels, which read x without subtracting x_zp.
 * Depthwise kernels have at most 64 taps.
 */
#ifndef LNC_QKERNELS_H
#define LNC_QKERNELS_H

#include "lnc_kernels.h"

#include <stdint.h>

#define LNC_QMR 6
#define LNC_QNR 16
#define LNC_QROWS 66

typedef struct lnc_qparams {
    int x_zp, y_zp;
    int x_signed, y_signed;
    const int32_t *bias;
    const float *mult;
} lnc_qparams;

/* Convolution as a GEMM over packed int16 activation tiles: tiles of LNC_QROWS output
 * pixels are gathered (receptive fields, `x - x_zp`, zeros for padding) into `tmp`
 * (threads * LNC_QROWS * K2 uint16) and multiplied by the packed weights with a
 * LNC_QMR x LNC_QNR register tile. `xs`: element strides of x (n, c, h, w), any layout. */
void lnc_qconv_gemm(const lnc_conv *g, const long *xs, const uint8_t *x, const uint32_t *w,
                    const lnc_qparams *q, uint8_t *y, uint16_t *tmp);
/* Depthwise convolution (group == C == M), pixel-major in and out. */
void lnc_qconv_dw(const lnc_conv *g, const uint8_t *x, const uint32_t *w, const lnc_qparams *q,
                  uint8_t *y);

/* Max pooling of u8 (sgn 0) or i8 (sgn 1) pixel-major maps, the geometry of lnc_maxpool
 * (taps outside the input are skipped; exact: integers compare exactly). */
void lnc_qmaxpool(const lnc_conv *g, int sgn, const uint8_t *x, uint8_t *y);

/* lnc_channel_map on bytes: output channel j of pixel p is channel ch[j] of source which[j]. */
void lnc_qchannel_map(long npix, long c, const uint8_t *const *bases, const long *lds,
                      const long *which, const long *ch, uint8_t *y, long ldy);

/* n-d strided loops (see lnc_copy_nd). */
void lnc_quantize_nd(float scale, int zp, int y_signed, int rank, const long *shape,
                     const float *x, const long *xs, uint8_t *y, const long *ys);
void lnc_dequantize_nd(float scale, int zp, int x_signed, int rank, const long *shape,
                       const uint8_t *x, const long *xs, float *y, const long *ys);
void lnc_copy_nd_u8(int rank, const long *shape, const uint8_t *x, const long *xs, uint8_t *y,
                    const long *ys);

#endif
