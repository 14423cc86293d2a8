//! The dataflow graph: nodes are operations, edges carry values from an output port to an
//! input slot. Weights live in a constant pool and are referenced by [`ConstId`].

use crate::error::{Error, Result};
use crate::op::Op;
use crate::tensor::Tensor;
use crate::types::TensorType;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

/// Identifies a node. Stable across removals; ordering follows creation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub NodeIndex<u32>);

impl NodeId {
    pub fn index(self) -> usize {
        self.0.index()
    }
}

/// Identifies a tensor in the constant pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConstId(pub u32);

/// One output of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Value {
    pub node: NodeId,
    pub port: u16,
}

/// A node: an op, a unique name (the ONNX node name where there was one) and the types of
/// its outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    pub op: Op,
    pub outputs: Vec<TensorType>,
}

/// Edge payload: source output port and destination input slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub port: u16,
    pub slot: u16,
}

/// A named graph output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphOutput {
    pub name: String,
    pub value: Value,
}

/// A static-shaped dataflow graph.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub name: String,
    g: StableDiGraph<Node, Edge>,
    inputs: Vec<NodeId>,
    outputs: Vec<GraphOutput>,
    consts: Vec<Tensor>,
    names: HashMap<String, NodeId>,
}

impl Graph {
    pub fn new(name: impl Into<String>) -> Self {
        Graph {
            name: name.into(),
            ..Default::default()
        }
    }

    // ----- construction -------------------------------------------------------------

    /// Make `base` unique among node names (appends `_1`, `_2`, ...).
    pub fn fresh_name(&self, base: &str) -> String {
        if !self.names.contains_key(base) {
            return base.to_string();
        }
        (1..)
            .map(|i| format!("{base}_{i}"))
            .find(|n| !self.names.contains_key(n))
            .expect("unbounded search")
    }

    fn insert(&mut self, name: &str, op: Op, outputs: Vec<TensorType>) -> NodeId {
        let name = self.fresh_name(name);
        let id = NodeId(self.g.add_node(Node {
            name: name.clone(),
            op,
            outputs,
        }));
        self.names.insert(name, id);
        id
    }

    /// Add a graph input of the given type.
    pub fn add_input(&mut self, name: &str, ty: TensorType) -> Result<Value> {
        ty.check().map_err(|m| Error::node(name, "input", m))?;
        let id = self.insert(name, Op::Input, vec![ty]);
        self.inputs.push(id);
        Ok(Value { node: id, port: 0 })
    }

    /// Add a tensor to the pool without a node.
    pub fn push_const(&mut self, t: Tensor) -> ConstId {
        self.consts.push(t);
        ConstId((self.consts.len() - 1) as u32)
    }

    /// Add a constant tensor to the pool and a node that produces it.
    pub fn add_const(&mut self, name: &str, t: Tensor) -> Value {
        let ty = t.ty();
        let cid = self.push_const(t);
        let id = self.insert(name, Op::Const(cid), vec![ty]);
        Value { node: id, port: 0 }
    }

    /// Add a node for an existing pool entry.
    pub fn add_const_node(&mut self, name: &str, cid: ConstId) -> Result<Value> {
        let ty = self
            .consts
            .get(cid.0 as usize)
            .ok_or_else(|| Error::node(name, "const", format!("no constant {}", cid.0)))?
            .ty();
        let id = self.insert(name, Op::Const(cid), vec![ty]);
        Ok(Value { node: id, port: 0 })
    }

    /// Add an op node; output types are inferred from the inputs. Errors name the node.
    pub fn add_node(&mut self, name: &str, op: Op, inputs: &[Value]) -> Result<NodeId> {
        let in_tys: Vec<&TensorType> = inputs
            .iter()
            .map(|v| self.try_value_type(*v))
            .collect::<Result<_>>()?;
        let outs =
            crate::shape::infer(&op, &in_tys).map_err(|m| Error::node(name, op.name(), m))?;
        self.add_node_typed(name, op, inputs, outs)
    }

    /// Add an op node with given output types (callers that already know them, e.g. the
    /// parser, which then verifies).
    pub fn add_node_typed(
        &mut self,
        name: &str,
        op: Op,
        inputs: &[Value],
        outputs: Vec<TensorType>,
    ) -> Result<NodeId> {
        for v in inputs {
            self.try_value_type(*v)?;
        }
        let id = self.insert(name, op, outputs);
        for (slot, v) in inputs.iter().enumerate() {
            self.g.add_edge(
                v.node.0,
                id.0,
                Edge {
                    port: v.port,
                    slot: slot as u16,
                },
            );
        }
        Ok(id)
    }

    /// Convenience: add a single-output node and return its value.
    pub fn add(&mut self, name: &str, op: Op, inputs: &[Value]) -> Result<Value> {
        Ok(Value {
            node: self.add_node(name, op, inputs)?,
            port: 0,
        })
    }

    pub fn add_output(&mut self, name: &str, value: Value) {
        self.outputs.push(GraphOutput {
            name: name.to_string(),
            value,
        });
    }

    pub fn set_outputs(&mut self, outputs: Vec<GraphOutput>) {
        self.outputs = outputs;
    }

    // ----- queries ------------------------------------------------------------------

    pub fn inputs(&self) -> &[NodeId] {
        &self.inputs
    }

    pub fn outputs(&self) -> &[GraphOutput] {
        &self.outputs
    }

    pub fn consts(&self) -> &[Tensor] {
        &self.consts
    }

    pub fn const_tensor(&self, id: ConstId) -> &Tensor {
        &self.consts[id.0 as usize]
    }

    pub fn contains(&self, id: NodeId) -> bool {
        self.g.contains_node(id.0)
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.g[id.0]
    }

    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.g[id.0]
    }

    pub fn node_by_name(&self, name: &str) -> Option<NodeId> {
        self.names.get(name).copied()
    }

    pub fn num_nodes(&self) -> usize {
        self.g.node_count()
    }

    /// All node ids in creation order.
    pub fn node_ids(&self) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = self.g.node_indices().map(NodeId).collect();
        v.sort();
        v
    }

    /// Type of a value; panics on a dangling value (use [`Graph::try_value_type`] on
    /// untrusted data).
    pub fn value_type(&self, v: Value) -> &TensorType {
        &self.g[v.node.0].outputs[v.port as usize]
    }

    pub fn try_value_type(&self, v: Value) -> Result<&TensorType> {
        self.g
            .node_weight(v.node.0)
            .and_then(|n| n.outputs.get(v.port as usize))
            .ok_or_else(|| Error::Graph(format!("dangling value {}:{}", v.node.index(), v.port)))
    }

    /// The constant a value is, if its producer is a `Const` node.
    pub fn const_value(&self, v: Value) -> Option<&Tensor> {
        match self.g.node_weight(v.node.0)?.op {
            Op::Const(cid) => self.consts.get(cid.0 as usize),
            _ => None,
        }
    }

    /// Inputs of a node ordered by slot.
    pub fn node_inputs(&self, id: NodeId) -> Vec<Value> {
        let mut e: Vec<(u16, Value)> = self
            .g
            .edges_directed(id.0, Direction::Incoming)
            .map(|e| {
                (
                    e.weight().slot,
                    Value {
                        node: NodeId(e.source()),
                        port: e.weight().port,
                    },
                )
            })
            .collect();
        e.sort_by_key(|(s, _)| *s);
        e.into_iter().map(|(_, v)| v).collect()
    }

    /// Slots of the edges into a node, sorted (for the verifier).
    pub(crate) fn input_slots(&self, id: NodeId) -> Vec<u16> {
        let mut s: Vec<u16> = self
            .g
            .edges_directed(id.0, Direction::Incoming)
            .map(|e| e.weight().slot)
            .collect();
        s.sort_unstable();
        s
    }

    /// Consumers of a value: `(node, slot)`, sorted.
    pub fn users(&self, v: Value) -> Vec<(NodeId, u16)> {
        let mut u: Vec<(NodeId, u16)> = self
            .g
            .edges_directed(v.node.0, Direction::Outgoing)
            .filter(|e| e.weight().port == v.port)
            .map(|e| (NodeId(e.target()), e.weight().slot))
            .collect();
        u.sort();
        u
    }

    /// Whether a value is a graph output.
    pub fn is_output(&self, v: Value) -> bool {
        self.outputs.iter().any(|o| o.value == v)
    }

    /// Nodes in a deterministic topological order (Kahn's algorithm, lowest id first).
    pub fn topo_order(&self) -> Result<Vec<NodeId>> {
        let mut indeg: HashMap<NodeIndex<u32>, usize> = HashMap::new();
        let mut ready = BTreeSet::new();
        for n in self.g.node_indices() {
            let d = self.g.edges_directed(n, Direction::Incoming).count();
            indeg.insert(n, d);
            if d == 0 {
                ready.insert(n);
            }
        }
        let mut order = Vec::with_capacity(indeg.len());
        while let Some(n) = ready.pop_first() {
            order.push(NodeId(n));
            for e in self.g.edges_directed(n, Direction::Outgoing) {
                let d = indeg.get_mut(&e.target()).expect("node in map");
                *d -= 1;
                if *d == 0 {
                    ready.insert(e.target());
                }
            }
        }
        if order.len() != self.g.node_count() {
            let mut stuck: Vec<&str> = self
                .g
                .node_indices()
                .filter(|n| indeg[n] > 0)
                .map(|n| self.g[n].name.as_str())
                .collect();
            stuck.sort_unstable();
            stuck.truncate(5);
            return Err(Error::Graph(format!(
                "cycle through node(s) {}",
                stuck.join(", ")
            )));
        }
        Ok(order)
    }

    // ----- mutation -----------------------------------------------------------------

    /// Redirect every use of `old` (edges and graph outputs) to `new`.
    pub fn replace_all_uses(&mut self, old: Value, new: Value) {
        let edges: Vec<_> = self
            .g
            .edges_directed(old.node.0, Direction::Outgoing)
            .filter(|e| e.weight().port == old.port)
            .map(|e| (e.id(), e.target(), e.weight().slot))
            .collect();
        for (eid, target, slot) in edges {
            self.g.remove_edge(eid);
            self.g.add_edge(
                new.node.0,
                target,
                Edge {
                    port: new.port,
                    slot,
                },
            );
        }
        for o in &mut self.outputs {
            if o.value == old {
                o.value = new;
            }
        }
    }

    /// Replace the input at `slot` of `node` by `v`.
    pub fn set_input(&mut self, node: NodeId, slot: u16, v: Value) {
        let old: Vec<_> = self
            .g
            .edges_directed(node.0, Direction::Incoming)
            .filter(|e| e.weight().slot == slot)
            .map(|e| e.id())
            .collect();
        for e in old {
            self.g.remove_edge(e);
        }
        self.g
            .add_edge(v.node.0, node.0, Edge { port: v.port, slot });
    }

    /// Remove a node and its edges (inputs list is updated; graph outputs are not).
    pub fn remove_node(&mut self, id: NodeId) {
        if let Some(n) = self.g.remove_node(id.0) {
            self.names.remove(&n.name);
        }
        self.inputs.retain(|&i| i != id);
    }

    /// Rename a node (the new name is made unique).
    pub fn rename(&mut self, id: NodeId, name: &str) -> String {
        let old = self.g[id.0].name.clone();
        self.names.remove(&old);
        let name = self.fresh_name(name);
        self.names.insert(name.clone(), id);
        self.g[id.0].name = name.clone();
        name
    }

    /// Remove every node that no graph output depends on (graph inputs are kept), then drop
    /// unreferenced pool entries. Returns the number of nodes removed.
    pub fn remove_dead(&mut self) -> usize {
        let mut live: BTreeSet<NodeIndex<u32>> = BTreeSet::new();
        let mut stack: Vec<NodeIndex<u32>> = self.outputs.iter().map(|o| o.value.node.0).collect();
        stack.extend(self.inputs.iter().map(|n| n.0));
        while let Some(n) = stack.pop() {
            if live.insert(n) {
                stack.extend(self.g.neighbors_directed(n, Direction::Incoming));
            }
        }
        let dead: Vec<NodeIndex<u32>> = self
            .g
            .node_indices()
            .filter(|n| !live.contains(n))
            .collect();
        for n in &dead {
            self.remove_node(NodeId(*n));
        }
        self.gc_consts();
        dead.len()
    }

    /// Drop pool entries no `Const` node refers to, renumbering the rest in order.
    pub fn gc_consts(&mut self) {
        let mut used: Vec<bool> = vec![false; self.consts.len()];
        for n in self.g.node_weights() {
            if let Op::Const(c) = n.op {
                used[c.0 as usize] = true;
            }
        }
        if used.iter().all(|&u| u) {
            return;
        }
        let mut remap = vec![u32::MAX; self.consts.len()];
        let mut kept = Vec::new();
        for (i, t) in std::mem::take(&mut self.consts).into_iter().enumerate() {
            if used[i] {
                remap[i] = kept.len() as u32;
                kept.push(t);
            }
        }
        self.consts = kept;
        for n in self.g.node_weights_mut() {
            if let Op::Const(c) = &mut n.op {
                c.0 = remap[c.0 as usize];
            }
        }
    }

    /// Total number of constant elements (parameters).
    pub fn num_params(&self) -> usize {
        self.consts.iter().map(|t| t.numel()).sum()
    }
}
