//! ONNX `Resize` (modes nearest and linear), computed as the ONNX reference
//! implementation (`onnx/reference/ops/op_resize.py`) does.
//!
//! Each axis is resampled separately, in axis order, skipping axes whose scale is 1 and
//! whose size is unchanged. For output index `y` the source coordinate is, with
//! `scale` the op's f32 scale as f64 and `out_f = scale * in` (a float, not the integer
//! output size):
//! - half_pixel: `(y + 0.5) / scale - 0.5`
//! - pytorch_half_pixel: as half_pixel, but `-0.5` when `out_f == 1`
//! - align_corners: `y * (in - 1) / (out_f - 1)`, or 0 when `out_f == 1`
//! - asymmetric: `y / scale`
//!
//! The two neighbours are `floor(x)` and `floor(x) + 1` (`x - 1` and `x` when `x` is an
//! integer, with ratio 1), clamped to the axis (edge padding). Linear interpolation is
//! `(1 - ratio) * lo + ratio * hi` in f64 per axis, rounded to f32 at the end. Nearest
//! picks `hi` when the ratio is an integer, otherwise by `nearest_mode`:
//! round_prefer_floor `ratio <= 0.5 -> lo`, round_prefer_ceil `ratio < 0.5 -> lo`,
//! floor `lo`, ceil `hi`. Nearest selects values exactly (also for integer tensors).

use super::{f32s, gather_axes, ints, make, make_f32, Buf, R};
use crate::op::{CoordTransform, NearestMode, Resize, ResizeMode};
use crate::tensor::{Data, Tensor};
use crate::types::TensorType;

/// One output coordinate: clamped neighbour indices and the weight of `hi`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    lo: usize,
    hi: usize,
    ratio: f64,
}

/// Source coordinates of every output index along one axis.
fn axis_samples(coord: CoordTransform, scale: f64, n_in: usize, n_out: usize) -> Vec<Sample> {
    let out_f = scale * n_in as f64;
    let last = n_in as i64 - 1;
    (0..n_out)
        .map(|j| {
            let y = j as f64;
            let x = match coord {
                CoordTransform::HalfPixel => (y + 0.5) / scale - 0.5,
                CoordTransform::PytorchHalfPixel => {
                    if out_f == 1.0 {
                        -0.5
                    } else {
                        (y + 0.5) / scale - 0.5
                    }
                }
                CoordTransform::AlignCorners => {
                    if out_f == 1.0 {
                        0.0
                    } else {
                        y * (n_in as f64 - 1.0) / (out_f - 1.0)
                    }
                }
                CoordTransform::Asymmetric => y / scale,
            };
            let fl = x.floor();
            let ratio = if x == fl { 1.0 } else { x - fl };
            // Neighbour window as the reference finds it (in edge-padded coordinates).
            let xp = x + 1.0;
            let p = xp.floor();
            let start = if xp - p == 0.0 { p - 1.0 } else { p } as i64 - 1;
            let clamp = |i: i64| i.clamp(0, last.max(0)) as usize;
            Sample {
                lo: clamp(start),
                hi: clamp(start + 1),
                ratio,
            }
        })
        .collect()
}

fn nearest_pick(s: &Sample, mode: NearestMode) -> usize {
    if s.ratio.fract() == 0.0 {
        return s.hi;
    }
    let take_lo = match mode {
        NearestMode::RoundPreferFloor => s.ratio <= 0.5,
        NearestMode::RoundPreferCeil => s.ratio < 0.5,
        NearestMode::Floor => true,
        NearestMode::Ceil => false,
    };
    if take_lo {
        s.lo
    } else {
        s.hi
    }
}

/// Resample `data` (shape `shape`) along `axis` with linear weights.
fn linear_axis(data: &[f64], shape: &[usize], axis: usize, samples: &[Sample]) -> Vec<f64> {
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let n_in = shape[axis];
    let mut y = Vec::with_capacity(outer * samples.len() * inner);
    for o in 0..outer {
        for s in samples {
            let (w0, w1) = (1.0 - s.ratio, s.ratio);
            let r0 = &data[(o * n_in + s.lo) * inner..(o * n_in + s.lo + 1) * inner];
            let r1 = &data[(o * n_in + s.hi) * inner..(o * n_in + s.hi + 1) * inner];
            y.extend(r0.iter().zip(r1).map(|(&a, &b)| w0 * a + w1 * b));
        }
    }
    y
}

/// ONNX `Resize` with the op's scales and the output size of `out`.
pub(crate) fn resize(r: &Resize, x: &Tensor, out: &TensorType) -> R<Tensor> {
    let shape = x.shape();
    let rank = shape.len();
    if r.scales.len() != rank || out.rank() != rank {
        return Err(format!("{} scales for rank {rank}", r.scales.len()));
    }
    // Axes to resample, with their samples.
    let mut plan: Vec<Option<Vec<Sample>>> = Vec::with_capacity(rank);
    for (a, ((&n_in, &n_out), &s)) in shape.iter().zip(&out.shape).zip(&r.scales).enumerate() {
        let s = s as f64;
        if !(s.is_finite() && s > 0.0) {
            return Err(format!("scale {s} must be positive"));
        }
        if (s - 1.0).abs() <= 1e-9 * s.max(1.0) && n_in == n_out {
            plan.push(None);
        } else if n_in == 0 && n_out > 0 {
            return Err(format!("cannot resize an empty axis {a} to {n_out}"));
        } else {
            plan.push(Some(axis_samples(r.coord, s, n_in, n_out)));
        }
    }
    match r.mode {
        ResizeMode::Nearest => {
            let maps: Vec<Vec<Option<usize>>> = plan
                .iter()
                .zip(shape)
                .map(|(p, &d)| match p {
                    None => (0..d).map(Some).collect(),
                    Some(s) => s.iter().map(|s| Some(nearest_pick(s, r.nearest))).collect(),
                })
                .collect();
            let buf = match &x.data {
                Data::F32(_) => Buf::F32(gather_axes(&f32s(x)?, shape, &maps, 0.0)?),
                Data::Int(_) => Buf::Int(gather_axes(&ints(x)?, shape, &maps, 0)?),
            };
            make(out, buf)
        }
        ResizeMode::Linear => {
            let mut cur: Vec<f64> = f32s(x)?.iter().map(|&v| v as f64).collect();
            let mut cur_shape = shape.to_vec();
            for (a, p) in plan.iter().enumerate() {
                if let Some(samples) = p {
                    cur = linear_axis(&cur, &cur_shape, a, samples);
                    cur_shape[a] = samples.len();
                }
            }
            make_f32(out, cur.into_iter().map(|v| v as f32).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_coordinate_takes_the_upper_neighbour_with_ratio_one() {
        // asymmetric, scale 2: y = 2 -> x = 1.0 exactly.
        let s = axis_samples(CoordTransform::Asymmetric, 2.0, 4, 8);
        assert_eq!(
            s[2],
            Sample {
                lo: 0,
                hi: 1,
                ratio: 1.0
            }
        );
        assert_eq!(
            s[3],
            Sample {
                lo: 1,
                hi: 2,
                ratio: 0.5
            }
        );
    }

    #[test]
    fn half_pixel_clamps_at_the_border() {
        let s = axis_samples(CoordTransform::HalfPixel, 2.0, 2, 4);
        // y = 0 -> x = -0.25: floor -1 (clamped 0), ratio 0.75.
        assert_eq!(
            s[0],
            Sample {
                lo: 0,
                hi: 0,
                ratio: 0.75
            }
        );
        // y = 3 -> x = 1.25: lo 1, hi 2 clamped to 1.
        assert_eq!(
            s[3],
            Sample {
                lo: 1,
                hi: 1,
                ratio: 0.25
            }
        );
    }
}
