//! `constant-fold`: evaluate every node whose inputs are all constants with the reference
//! interpreter and replace it by the result. Quantization ops are kept (their constant
//! operands are what the backends consume).

use crate::{Pass, PassContext, PassOutcome, Result};
use lnc_ir::{Error, Graph, Op, Value};

pub struct ConstantFold;

fn foldable(op: &Op) -> bool {
    !matches!(
        op,
        Op::Input
            | Op::Const(_)
            | Op::QuantizeLinear { .. }
            | Op::DequantizeLinear { .. }
            | Op::Quant { .. }
            | Op::BipolarQuant
            | Op::Trunc { .. }
    )
}

impl Pass for ConstantFold {
    fn name(&self) -> &'static str {
        "constant-fold"
    }
    fn description(&self) -> &'static str {
        "evaluate nodes whose inputs are all constant (reference interpreter)"
    }
    fn run(&self, g: &mut Graph, _: &PassContext) -> Result<PassOutcome> {
        let mut folded = 0;
        for id in g.topo_order()? {
            let node = g.node(id);
            if !foldable(&node.op) {
                continue;
            }
            let ins = g.node_inputs(id);
            let consts: Option<Vec<&lnc_ir::Tensor>> =
                ins.iter().map(|v| g.const_value(*v)).collect();
            let Some(consts) = consts else { continue };
            let results = lnc_ir::interp::eval_op(&node.op, &consts, &node.outputs)
                .map_err(|m| Error::node(&node.name, node.op.name(), m))?;
            let name = node.name.clone();
            for (port, t) in results.into_iter().enumerate() {
                let c = g.add_const(&format!("{name}.folded"), t);
                g.replace_all_uses(
                    Value {
                        node: id,
                        port: port as u16,
                    },
                    c,
                );
            }
            g.remove_node(id);
            folded += 1;
        }
        g.remove_dead();
        Ok(PassOutcome::summary(format!("folded {folded} node(s)")))
    }
}
