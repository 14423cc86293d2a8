//! Graph ⇄ e-graph.
//!
//! [`to_egraph`] adds every node of an [`ir::Graph`](Graph) that the outputs depend on as an
//! e-node ([`super::lang`]); constants become `Const(id)` leaves and their tensors move to
//! the analysis' [`ConstPool`] (weights never enter the e-graph). Node names, creation
//! order and quantized output types are kept in the class facts.
//!
//! [`rebuild`] turns a choice of one e-node per e-class (the extraction) back into a graph:
//! graph inputs first (all of them, in order), then a depth-first post-order from the
//! outputs (in output order, children in input order). Constants are copied from the pool
//! as they are reached, so the new pool holds exactly the used entries. [`canonicalize`]
//! orders and re-pools an ordinary graph the same way, which defines the canonical form in
//! which bridging in and out with no rewrite is the identity.

use super::analysis::{node_op, ConstPool, LnirAnalysis, Origin, EG};
use super::lang::{has_attr, padded_arity, tag, Attr, Lnir};
use crate::{Error, Result};
use egg::{Id, Language};
use lnc_ir::{Graph, NodeId, Op, Value};
use std::collections::{HashMap, HashSet};

/// A graph in an e-graph: the root class of every graph output.
pub struct Bridged {
    pub egraph: EG,
    /// One class per graph output, in order.
    pub roots: Vec<Id>,
    pub output_names: Vec<String>,
    pub graph_name: String,
}

fn internal(msg: impl Into<String>) -> Error {
    Error::Bridge(msg.into())
}

/// Add an op with its inputs (already e-classes) as an e-node: the attribute leaf when the
/// op has attributes, the inputs, absent leaves up to the op's largest arity.
pub fn add_op(eg: &mut EG, op: &Op, inputs: &[Id]) -> Id {
    let n = op_node(eg, op, inputs);
    eg.add(n)
}

/// The e-node of an op (adding its attribute and absent leaves), without adding the node.
pub fn op_node(eg: &mut EG, op: &Op, inputs: &[Id]) -> Lnir {
    let mut ch = Vec::with_capacity(inputs.len() + 2);
    if has_attr(op) {
        ch.push(eg.add(Lnir::Attr(Attr::new(op.clone()))));
    }
    ch.extend_from_slice(inputs);
    let n = padded_arity(op, inputs.len());
    if inputs.len() < n {
        let absent = eg.add(Lnir::Absent);
        ch.resize(ch.len() + n - inputs.len(), absent);
    }
    Lnir::Op(tag(op), ch)
}

/// Whether an op's class is a tuple read through projections.
pub fn is_tuple(op: &Op) -> bool {
    matches!(op, Op::Split { .. })
}

/// Build the e-graph of a graph.
pub fn to_egraph(g: &Graph) -> Result<Bridged> {
    let order = g.topo_order().map_err(|e| internal(e.to_string()))?;
    // The pool: every entry, named after the first const node using it.
    let mut names: Vec<Option<String>> = vec![None; g.consts().len()];
    for &id in &order {
        if let Op::Const(c) = g.node(id).op {
            if let Some(n) = names.get_mut(c.0 as usize) {
                n.get_or_insert_with(|| g.node(id).name.clone());
            }
        }
    }
    let names = names
        .into_iter()
        .enumerate()
        .map(|(i, n)| n.unwrap_or_else(|| format!("const{i}")))
        .collect();
    let pool = ConstPool::new(g.consts().to_vec(), names);
    let inputs = g
        .inputs()
        .iter()
        .map(|&i| (g.node(i).name.clone(), g.node(i).outputs[0].clone()))
        .collect();
    let mut eg = EG::new(LnirAnalysis::new(pool, inputs));
    let input_index: HashMap<NodeId, u32> = g
        .inputs()
        .iter()
        .enumerate()
        .map(|(k, &i)| (i, k as u32))
        .collect();
    let mut vals: HashMap<Value, Id> = HashMap::new();
    for (pos, &id) in order.iter().enumerate() {
        let node = g.node(id);
        let v0 = Value { node: id, port: 0 };
        let origin = |suffix: Option<u16>| Origin {
            order: pos as u32 + 1,
            name: match suffix {
                None => node.name.as_str().into(),
                Some(k) => format!("{}.{k}", node.name).into(),
            },
        };
        let class = match &node.op {
            Op::Input => {
                let k = *input_index.get(&id).ok_or_else(|| {
                    internal(format!("input node '{}' is not a graph input", node.name))
                })?;
                eg.add(Lnir::Input(k))
            }
            Op::Const(c) => eg.add(Lnir::Const(c.0)),
            op => {
                let ins: Vec<Id> = g
                    .node_inputs(id)
                    .iter()
                    .map(|v| {
                        vals.get(v)
                            .copied()
                            .ok_or_else(|| internal(format!("input of '{}' missing", node.name)))
                    })
                    .collect::<Result<_>>()?;
                let c = add_op(&mut eg, op, &ins);
                let data = &mut eg[c].data;
                if data.types.len() != node.outputs.len() {
                    return Err(internal(format!(
                        "'{}': inferred types differ from the graph",
                        node.name
                    )));
                }
                data.types = node.outputs.clone();
                let o = origin(None);
                if data.origin.as_ref().is_none_or(|x| o < *x) {
                    data.origin = Some(o);
                }
                c
            }
        };
        if is_tuple(&node.op) {
            for k in 0..node.outputs.len() as u16 {
                let p = eg.add(Lnir::Proj(k, [class]));
                let o = origin(Some(k));
                let data = &mut eg[p].data;
                if data.origin.as_ref().is_none_or(|x| o < *x) {
                    data.origin = Some(o);
                }
                vals.insert(Value { node: id, port: k }, p);
            }
        } else {
            vals.insert(v0, class);
        }
    }
    eg.rebuild();
    if !eg.analysis.conflicts.is_empty() {
        return Err(Error::Unsound(eg.analysis.conflicts.clone()));
    }
    let roots = g
        .outputs()
        .iter()
        .map(|o| {
            vals.get(&o.value)
                .copied()
                .ok_or_else(|| internal(format!("output '{}' missing", o.name)))
        })
        .collect::<Result<Vec<Id>>>()?;
    eg.analysis.roots = roots.clone();
    Ok(Bridged {
        egraph: eg,
        roots,
        output_names: g.outputs().iter().map(|o| o.name.clone()).collect(),
        graph_name: g.name.clone(),
    })
}

/// What a class became in the rebuilt graph.
#[derive(Debug, Clone, Copy)]
enum Emitted {
    Value(Value),
    Tuple(NodeId),
    Leaf,
}

/// A node of the rebuilt graph and the e-node it came from.
#[derive(Debug, Clone)]
pub struct Provenance {
    pub node: NodeId,
    pub class: Id,
    pub enode: Lnir,
}

/// Rebuild a graph from one chosen e-node per class (`choose` gets canonical ids).
pub fn rebuild<'a>(
    eg: &'a EG,
    roots: &[Id],
    output_names: &[String],
    graph_name: &str,
    choose: impl Fn(Id) -> &'a Lnir,
) -> Result<(Graph, Vec<Provenance>)> {
    let mut g = Graph::new(graph_name);
    let mut inputs = Vec::new();
    for (name, ty) in &eg.analysis.inputs {
        inputs.push(
            g.add_input(name, ty.clone())
                .map_err(|e| internal(e.to_string()))?,
        );
    }
    let mut memo: HashMap<Id, Emitted> = HashMap::new();
    let mut open: HashSet<Id> = HashSet::new();
    let mut prov = Vec::new();
    for &root in roots {
        let mut stack = vec![(eg.find(root), false)];
        while let Some((c, expanded)) = stack.pop() {
            if memo.contains_key(&c) {
                continue;
            }
            let n = choose(c);
            if !expanded {
                if !open.insert(c) {
                    return Err(internal("the extracted graph has a cycle"));
                }
                stack.push((c, true));
                for &ch in n.children().iter().rev() {
                    let ch = eg.find(ch);
                    if !memo.contains_key(&ch) {
                        if open.contains(&ch) {
                            return Err(internal("the extracted graph has a cycle"));
                        }
                        stack.push((ch, false));
                    }
                }
                continue;
            }
            open.remove(&c);
            let e = emit(eg, &mut g, &inputs, &memo, c, n, &mut prov)?;
            memo.insert(c, e);
        }
    }
    for (name, &root) in output_names.iter().zip(roots) {
        match memo.get(&eg.find(root)) {
            Some(Emitted::Value(v)) => g.add_output(name, *v),
            _ => return Err(internal(format!("output '{name}' is not a value"))),
        }
    }
    Ok((g, prov))
}

fn emit(
    eg: &EG,
    g: &mut Graph,
    inputs: &[Value],
    memo: &HashMap<Id, Emitted>,
    c: Id,
    n: &Lnir,
    prov: &mut Vec<Provenance>,
) -> Result<Emitted> {
    let value = |id: Id| match memo.get(&eg.find(id)) {
        Some(Emitted::Value(v)) => Ok(*v),
        _ => Err(internal("an input of an extracted node is not a value")),
    };
    Ok(match n {
        Lnir::Attr(_) | Lnir::Absent => Emitted::Leaf,
        Lnir::Input(k) => Emitted::Value(
            *inputs
                .get(*k as usize)
                .ok_or_else(|| internal(format!("no graph input {k}")))?,
        ),
        Lnir::Const(k) => {
            let pool = &eg.analysis.pool;
            let t = pool
                .get(*k)
                .ok_or_else(|| internal(format!("no constant @{k}")))?;
            Emitted::Value(g.add_const(pool.name(*k), t.clone()))
        }
        Lnir::Proj(k, [t]) => match memo.get(&eg.find(*t)) {
            Some(Emitted::Tuple(node)) => Emitted::Value(Value {
                node: *node,
                port: *k,
            }),
            _ => return Err(internal("a projection of a non-tuple")),
        },
        Lnir::Op(t, _) => {
            let (op, ins) =
                node_op(eg, n).ok_or_else(|| internal(format!("'{t}' without attributes")))?;
            let vals: Vec<Value> = ins.iter().map(|&i| value(i)).collect::<Result<_>>()?;
            let data = &eg[c].data;
            let name = data
                .origin
                .as_ref()
                .map_or_else(|| t.to_string(), |o| o.name.to_string());
            let id = g
                .add_node(&name, op.clone(), &vals)
                .map_err(|e| internal(format!("rebuilding: {e}")))?;
            // Keep quantization parameters (not inferred) from the class facts.
            let node = g.node_mut(id);
            if node.outputs.len() == data.types.len() {
                for (o, t) in node.outputs.iter_mut().zip(&data.types) {
                    if o.dtype == t.dtype && o.shape == t.shape {
                        o.quant = t.quant.clone();
                    } else {
                        return Err(internal(format!(
                            "'{name}': type {o} differs from its class's {t}"
                        )));
                    }
                }
            }
            prov.push(Provenance {
                node: id,
                class: c,
                enode: n.clone(),
            });
            if is_tuple(&op) {
                Emitted::Tuple(id)
            } else {
                Emitted::Value(Value { node: id, port: 0 })
            }
        }
    })
}

/// The canonical form of a graph: inputs first, then a depth-first post-order from the
/// outputs, constants re-pooled in the order they are reached; nodes no output depends on
/// are dropped, and so are duplicates (a node with the same op and inputs as an earlier
/// one, a const node of an already used pool entry), as in the e-graph. Names (of the
/// nodes kept), ops and types are unchanged.
pub fn canonicalize(g: &Graph) -> Result<Graph> {
    let mut out = Graph::new(&g.name);
    let mut map: HashMap<NodeId, NodeId> = HashMap::new();
    let mut pool_map: HashMap<u32, lnc_ir::ConstId> = HashMap::new();
    for &i in g.inputs() {
        let n = g.node(i);
        let v = out
            .add_input(&n.name, n.outputs[0].clone())
            .map_err(|e| internal(e.to_string()))?;
        map.insert(i, v.node);
    }
    let mut open: HashSet<NodeId> = HashSet::new();
    let mut seen_ops: HashMap<(String, Vec<Value>), NodeId> = HashMap::new();
    let mut seen_consts: HashMap<u32, NodeId> = HashMap::new();
    for o in g.outputs() {
        let mut stack = vec![(o.value.node, false)];
        while let Some((id, expanded)) = stack.pop() {
            if map.contains_key(&id) {
                continue;
            }
            let ins = g.node_inputs(id);
            if !expanded {
                if !open.insert(id) {
                    return Err(internal("the graph has a cycle"));
                }
                stack.push((id, true));
                for v in ins.iter().rev() {
                    if !map.contains_key(&v.node) {
                        stack.push((v.node, false));
                    }
                }
                continue;
            }
            open.remove(&id);
            let n = g.node(id);
            let new = match &n.op {
                Op::Const(c) => match seen_consts.get(&c.0) {
                    Some(&id) => id,
                    None => {
                        let cid = match pool_map.get(&c.0) {
                            Some(&cid) => cid,
                            None => {
                                let cid = out.push_const(g.const_tensor(*c).clone());
                                pool_map.insert(c.0, cid);
                                cid
                            }
                        };
                        let id = out
                            .add_const_node(&n.name, cid)
                            .map_err(|e| internal(e.to_string()))?
                            .node;
                        seen_consts.insert(c.0, id);
                        id
                    }
                },
                op => {
                    let vals: Vec<Value> = ins
                        .iter()
                        .map(|v| Value {
                            node: map[&v.node],
                            port: v.port,
                        })
                        .collect();
                    let key = (format!("{op:?}"), vals.clone());
                    match seen_ops.get(&key) {
                        Some(&id) => id,
                        None => {
                            let id = out
                                .add_node_typed(&n.name, op.clone(), &vals, n.outputs.clone())
                                .map_err(|e| internal(e.to_string()))?;
                            seen_ops.insert(key, id);
                            id
                        }
                    }
                }
            };
            map.insert(id, new);
        }
    }
    for o in g.outputs() {
        out.add_output(
            &o.name,
            Value {
                node: map[&o.value.node],
                port: o.value.port,
            },
        );
    }
    Ok(out)
}
