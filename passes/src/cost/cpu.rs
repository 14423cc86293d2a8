//! The CPU cost model, in abstract cycles of one core.
//!
//! - compute: one cycle per multiply-accumulate (depthwise MACs cost twice: they are memory
//!   bound and vectorise worse than a GEMM);
//! - activation traffic: one cycle per byte of non-constant input read and output written;
//!   fused ops read and write only their outer tensors, the intermediate stays in cache;
//! - launch: [`LAUNCH`] cycles per kernel (loop nest set-up, threading, a pass over memory);
//! - views (identity, reshape, channel split / slice / concat, concat-like channel maps) cost
//!   1: the backend aliases buffers; a channel map that interleaves channels is a gather
//!   (its bytes, plus a launch);
//! - integer products without a CPU kernel (QLinearMatMul, MatMulInteger, ConvInteger) cost one
//!   more launch, so that the `quant` rules' lowering of them wins.

use super::{is_view, macs, NodeCost, NodeInfo};
use lnc_ir::Op;

/// Cycles charged per kernel launch.
pub const LAUNCH: u64 = 2_000;

/// The CPU model.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuModel;

/// egg cost function for the CPU target.
pub type CpuCost<'a> = super::Dag<'a, CpuModel>;

impl NodeCost for CpuModel {
    fn own(&self, info: &NodeInfo) -> u64 {
        if is_view(info) {
            return match info.op {
                Op::ChannelMap { .. } => 2,
                _ => 1,
            };
        }
        let (dw, other) = macs(info);
        let traffic = info.activation_bytes_in().saturating_add(info.bytes_out());
        let copy = match &info.op {
            // Data movement: read and write every byte once more than a view.
            Op::Transpose { .. } | Op::ChannelShuffle { .. } | Op::ChannelMap { .. } => {
                info.bytes_out()
            }
            _ => 0,
        };
        // No CPU kernel: the backend runs QLinearMatMul only as the 1x1 `qlinear_conv` the
        // quant rules make of it; this keeps extraction from preferring the unlowered form.
        let unsupported = match &info.op {
            Op::QLinearMatMul | Op::MatMulInteger | Op::ConvInteger(_) => LAUNCH,
            _ => 0,
        };
        LAUNCH
            .saturating_add(unsupported)
            .saturating_add(dw.saturating_mul(2))
            .saturating_add(other)
            .saturating_add(traffic)
            .saturating_add(copy)
    }
}
