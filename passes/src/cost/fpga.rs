//! The FPGA cost model: resources of a streaming dataflow accelerator (one module per
//! layer), in LUT equivalents.
//!
//! - every non-view op is a module: [`MODULE_LUTS`] of control and stream interfaces (a
//!   quarter of that without multipliers), plus a FIFO on its output ([`FIFO_DEPTH`] beats of
//!   one pixel's channels, in BRAM bits);
//! - compute: DSPs to reach a frame in [`FRAME_CYCLES`] cycles (`MACs / FRAME_CYCLES`,
//!   [`DSP_LUTS`] each), weights in on-chip BRAM, a line buffer of `(k-1)` rows for a KxK
//!   window; [`BITS_PER_LUT`] BRAM bits cost one LUT;
//! - a `dw_pw` block runs both halves on one datapath: its initiation interval is the sum
//!   of the halves' instead of their maximum, charged as [`II_LUTS`] per cycle of the
//!   shorter half (on the FPGA separate, pipelined modules are usually better);
//! - a channel shuffle / interleaving channel map is a re-indexing buffer of one frame;
//!   views (reshape, identity, channel split / slice / concat-like maps) are wiring.
//!
//! The absolute numbers are a model, not a synthesis report; they rank alternatives.

use super::{bytes, is_view, macs, map_is_concat_like, NodeCost, NodeInfo};
use lnc_ir::Op;

/// LUTs of one module's control and stream interfaces.
pub const MODULE_LUTS: u64 = 400;
/// LUT equivalents of one DSP slice.
pub const DSP_LUTS: u64 = 100;
/// BRAM bits per LUT equivalent.
pub const BITS_PER_LUT: u64 = 64;
/// Target cycles per frame (sets the parallelism, hence the DSPs).
pub const FRAME_CYCLES: u64 = 50_000;
/// Depth of an inter-module FIFO, in beats.
pub const FIFO_DEPTH: u64 = 2;
/// LUT equivalents per cycle of lost overlap in a fused dw-pw module.
pub const II_LUTS: u64 = 8;
/// MACs per cycle of one module (its default folding).
pub const MACS_PER_CYCLE: u64 = 16;

/// The FPGA model.
#[derive(Debug, Clone, Copy, Default)]
pub struct FpgaModel;

/// egg cost function for the FPGA target.
pub type FpgaCost<'a> = super::Dag<'a, FpgaModel>;

impl NodeCost for FpgaModel {
    fn own(&self, info: &NodeInfo) -> u64 {
        if is_view(info) {
            return match info.op {
                Op::ChannelMap { .. } => 2,
                _ => 1,
            };
        }
        let out = info.outs.first();
        let pixel_bits = out.map_or(0, |t| {
            let c = t.shape.get(1).copied().unwrap_or(1) as u64;
            c.saturating_mul(t.dtype.bits() as u64)
        });
        let mut bits = FIFO_DEPTH.saturating_mul(pixel_bits);
        let (dw, other) = macs(info);
        let total_macs = dw.saturating_add(other);
        // A module without multipliers (activation, pooling, add) is a quarter of the control.
        let mut luts = if total_macs > 0 {
            MODULE_LUTS
        } else {
            MODULE_LUTS / 4
        };
        luts = luts.saturating_add(total_macs.saturating_mul(DSP_LUTS) / FRAME_CYCLES);
        bits = bits.saturating_add(info.const_elems().saturating_mul(32));
        let x = info.ins.first();
        let line_buffer = |k: usize| {
            x.map_or(0, |t| {
                let w = t.shape.get(3).copied().unwrap_or(1) as u64;
                let c = t.shape.get(1).copied().unwrap_or(1) as u64;
                (k.saturating_sub(1) as u64)
                    .saturating_mul(w)
                    .saturating_mul(c)
                    .saturating_mul(32)
            })
        };
        match &info.op {
            Op::Conv(c) | Op::FusedConv { conv: c, .. } => {
                bits = bits.saturating_add(line_buffer(c.kernel[0]))
            }
            Op::DwPw { dw: c, .. } => {
                bits = bits.saturating_add(line_buffer(c.kernel[0]));
                let lost = (dw.min(other) / MACS_PER_CYCLE).saturating_mul(II_LUTS);
                luts = luts.saturating_add(lost);
            }
            Op::Transpose { .. } | Op::ChannelShuffle { .. } => {
                bits = bits.saturating_add(out.map_or(0, |t| bytes(t).saturating_mul(8)));
            }
            Op::ChannelMap { map } if !map_is_concat_like(map) => {
                bits = bits.saturating_add(out.map_or(0, |t| bytes(t).saturating_mul(8)));
            }
            _ => {}
        }
        luts.saturating_add(bits / BITS_PER_LUT)
    }
}
