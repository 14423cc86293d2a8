//! Resampling: `Resize`, `Upsample`.
//!
//! - `Upsample` (7: `scales` attribute; 9: constant `scales` input; deprecated at 10):
//!   `mode` nearest (asymmetric coordinates, floor) or linear (asymmetric).
//! - `Resize` (10: inputs `X, scales`; asymmetric coordinates, nearest rounds down when
//!   upsampling and up when downsampling, as ONNX Runtime does; 11, 13, 18, 19: inputs
//!   `X, [roi], [scales], [sizes]`): `scales` or `sizes` must be constant (sizes are turned
//!   into scales whose floor product gives exactly the size); `mode` nearest or linear
//!   (cubic is rejected); `coordinate_transformation_mode` half_pixel, pytorch_half_pixel,
//!   align_corners, asymmetric (tf_crop_and_resize, tf_half_pixel_for_nn and
//!   half_pixel_symmetric are rejected); `nearest_mode`; `axes` (18+);
//!   `keep_aspect_ratio_policy` (18+, only stretch); `antialias` (18+, only 0 when
//!   downsampling with linear); `exclude_outside` only 0 for linear; `cubic_coeff_a` and
//!   `extrapolation_value` do not apply to the supported modes. `roi` is only used by
//!   tf_crop_and_resize and is ignored.

use super::{norm_axes, Importer, Node};
use crate::Result;
use lnc_ir::{CoordTransform, NearestMode, Op, Resize, ResizeMode, Value};

fn mode_of(n: &Node) -> Result<ResizeMode> {
    match n.string_or("mode", "nearest")?.as_str() {
        "nearest" => Ok(ResizeMode::Nearest),
        "linear" | "bilinear" => Ok(ResizeMode::Linear),
        other => Err(n.err(format!("mode '{other}' is not supported"))),
    }
}

/// Check and convert a scale list for `rank` axes.
fn check_scales(n: &Node, scales: Vec<f32>, rank: usize) -> Result<Vec<f32>> {
    if scales.len() != rank {
        return Err(n.err(format!(
            "{} scales for an input of rank {rank}",
            scales.len()
        )));
    }
    if scales.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
        return Err(n.err(format!("scales {scales:?} must be positive")));
    }
    Ok(scales)
}

/// A scale `s` (close to `size / input`) with `floor(input * s) == size`, as the IR's
/// output-shape rule computes it.
fn scale_for_size(n: &Node, input: usize, size: usize) -> Result<f32> {
    if input == 0 || size == 0 {
        return Err(n.err(format!("cannot resize a dimension of {input} to {size}")));
    }
    let mut s = size as f32 / input as f32;
    for _ in 0..8 {
        let out = (input as f64 * s as f64).floor();
        if out == size as f64 {
            return Ok(s);
        }
        s = if out < size as f64 {
            next_up(s)
        } else {
            next_down(s)
        };
    }
    Err(n.err(format!("no f32 scale maps size {input} to {size}")))
}

fn next_up(s: f32) -> f32 {
    f32::from_bits(s.to_bits() + 1)
}

fn next_down(s: f32) -> f32 {
    f32::from_bits(s.to_bits() - 1)
}

pub(crate) fn upsample(imp: &mut Importer, n: &Node) -> Result<Value> {
    let x = imp.input(n, 0)?;
    let rank = imp.rank(x)?;
    let mode = mode_of(n)?;
    let scales = if n.opset < 9 {
        n.floats("scales")?
            .ok_or_else(|| n.err("attribute 'scales' is required"))?
    } else {
        imp.const_floats(n, 1, "scales")?
            .ok_or_else(|| n.err("input 'scales' is required"))?
    };
    let scales = check_scales(n, scales, rank)?;
    if scales.iter().any(|&s| s < 1.0) {
        return Err(n.err(format!("Upsample scales {scales:?} must be >= 1")));
    }
    let r = Resize {
        mode,
        coord: CoordTransform::Asymmetric,
        nearest: NearestMode::Floor,
        scales,
    };
    imp.emit1(n, "", Op::Resize(r), &[x])
}

pub(crate) fn resize(imp: &mut Importer, n: &Node) -> Result<Value> {
    let x = imp.input(n, 0)?;
    let xs = imp.shape(x)?;
    let rank = xs.len();
    let mode = mode_of(n)?;
    if n.opset < 11 {
        let scales = imp
            .const_floats(n, 1, "scales")?
            .ok_or_else(|| n.err("input 'scales' is required"))?;
        let scales = check_scales(n, scales, rank)?;
        let up = scales.iter().all(|&s| s >= 1.0);
        let down = scales.iter().all(|&s| s <= 1.0);
        let nearest = match (mode, up, down) {
            (ResizeMode::Linear, _, _) | (_, true, _) => NearestMode::Floor,
            (_, false, true) => NearestMode::Ceil,
            _ => {
                return Err(n.err(
                    "nearest Resize-10 that upsamples some axes and downsamples others is \
                     not supported",
                ))
            }
        };
        let r = Resize {
            mode,
            coord: CoordTransform::Asymmetric,
            nearest,
            scales,
        };
        return imp.emit1(n, "", Op::Resize(r), &[x]);
    }
    let coord = match n
        .string_or("coordinate_transformation_mode", "half_pixel")?
        .as_str()
    {
        "half_pixel" => CoordTransform::HalfPixel,
        "pytorch_half_pixel" => CoordTransform::PytorchHalfPixel,
        "align_corners" => CoordTransform::AlignCorners,
        "asymmetric" => CoordTransform::Asymmetric,
        other => {
            return Err(n.err(format!(
                "coordinate_transformation_mode '{other}' is not supported"
            )))
        }
    };
    let nearest = match n.string_or("nearest_mode", "round_prefer_floor")?.as_str() {
        "round_prefer_floor" => NearestMode::RoundPreferFloor,
        "round_prefer_ceil" => NearestMode::RoundPreferCeil,
        "floor" => NearestMode::Floor,
        "ceil" => NearestMode::Ceil,
        other => return Err(n.err(format!("nearest_mode '{other}' is not supported"))),
    };
    n.ignore(&["cubic_coeff_a", "extrapolation_value"]);
    if n.flag("exclude_outside", false)? && mode != ResizeMode::Nearest {
        return Err(n.err("exclude_outside=1 is not supported"));
    }
    let policy = n.string_or("keep_aspect_ratio_policy", "stretch")?;
    let axes = match n.ints("axes")? {
        Some(a) if !a.is_empty() => norm_axes(n, &a, rank)?,
        _ => (0..rank).collect(),
    };
    let scales_in = imp.const_floats(n, 2, "scales")?.filter(|s| !s.is_empty());
    let sizes_in = imp.const_ints(n, 3, "sizes")?.filter(|s| !s.is_empty());
    let mut scales = vec![1.0f32; rank];
    match (scales_in, sizes_in) {
        (Some(s), None) => {
            if s.len() != axes.len() {
                return Err(n.err(format!("{} scales for {} axes", s.len(), axes.len())));
            }
            for (&a, &v) in axes.iter().zip(&s) {
                scales[a] = v;
            }
        }
        (None, Some(sizes)) => {
            if policy != "stretch" {
                return Err(n.err(format!(
                    "keep_aspect_ratio_policy '{policy}' is not supported"
                )));
            }
            if sizes.len() != axes.len() {
                return Err(n.err(format!("{} sizes for {} axes", sizes.len(), axes.len())));
            }
            for (&a, &v) in axes.iter().zip(&sizes) {
                let v = usize::try_from(v)
                    .map_err(|_| n.err(format!("sizes {sizes:?} must be non-negative")))?;
                scales[a] = scale_for_size(n, xs[a], v)?;
            }
        }
        (Some(_), Some(_)) => return Err(n.err("only one of scales and sizes may be given")),
        (None, None) => return Err(n.err("one of scales and sizes must be given")),
    }
    let scales = check_scales(n, scales, rank)?;
    if n.flag("antialias", false)? && mode != ResizeMode::Nearest && scales.iter().any(|&s| s < 1.0)
    {
        return Err(n.err("antialias=1 when downsampling is not supported"));
    }
    let r = Resize {
        mode,
        coord,
        nearest,
        scales,
    };
    imp.emit1(n, "", Op::Resize(r), &[x])
}
