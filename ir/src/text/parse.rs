//! The `.lnir` parser: recursive descent over the streaming lexer into a small syntax tree,
//! then a build step that resolves names, checks every node against [`crate::shape::infer`]
//! and finally runs the verifier. Errors carry `line:col`; no input makes it panic.

use super::attrs::{build_op, parse_f32, parse_i64, Attrs, Raw, RawAttr, RawVal, OP_NAMES};
use super::lex::{Kind, Lexer, PErr, PResult, Pos, Token};
use crate::dtype::{DType, Quant};
use crate::error::Result;
use crate::graph::{ConstId, Graph, NodeId, Value};
use crate::op::{Arity, Op};
use crate::tensor::Tensor;
use crate::types::{checked_numel, TensorType, MAX_ELEMENTS};
use std::collections::HashMap;

/// The only format version this parser reads.
const VERSION: i64 = 1;
/// Deepest nesting of attribute lists.
const MAX_LIST_DEPTH: usize = 4;

struct RefAst {
    name: String,
    port: usize,
    pos: Pos,
}

enum Rhs {
    Input,
    Const {
        id: u64,
        pos: Pos,
    },
    Op {
        name: String,
        pos: Pos,
        args: Vec<RefAst>,
        attrs: Vec<RawAttr>,
    },
}

struct NodeAst {
    name: String,
    pos: Pos,
    rhs: Rhs,
    types: Vec<(TensorType, Pos)>,
}

struct OutputAst {
    value: RefAst,
    name: Option<String>,
}

struct Parser<'a> {
    lx: Lexer<'a>,
    peeked: Option<Token<'a>>,
}

fn arity_text(a: Arity) -> String {
    match a {
        Arity::Exact(n) => format!("{n}"),
        Arity::Range(lo, hi) => format!("{lo} to {hi}"),
        Arity::AtLeast(n) => format!("at least {n}"),
    }
}

impl<'a> Parser<'a> {
    fn peek(&mut self) -> PResult<&Token<'a>> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lx.next_token()?);
        }
        Ok(self.peeked.as_ref().expect("just filled"))
    }

    fn next(&mut self) -> PResult<Token<'a>> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lx.next_token(),
        }
    }

    fn unexpected(t: &Token, what: &str) -> PErr {
        PErr::new(t.pos, format!("expected {what}, found {t}"))
    }

    fn is_punct(&mut self, c: char) -> PResult<bool> {
        Ok(self.peek()?.kind == Kind::Punct(c))
    }

    fn eat_punct(&mut self, c: char) -> PResult<bool> {
        let yes = self.is_punct(c)?;
        if yes {
            self.next()?;
        }
        Ok(yes)
    }

    fn expect_punct(&mut self, c: char) -> PResult<Pos> {
        let t = self.next()?;
        if t.kind == Kind::Punct(c) {
            Ok(t.pos)
        } else {
            Err(Self::unexpected(&t, &format!("'{c}'")))
        }
    }

    fn is_word(&mut self, w: &str) -> PResult<bool> {
        let t = self.peek()?;
        Ok(t.kind == Kind::Word && t.text == w)
    }

    fn expect_word(&mut self, w: &str) -> PResult<Pos> {
        let t = self.next()?;
        if t.kind == Kind::Word && t.text == w {
            Ok(t.pos)
        } else {
            Err(Self::unexpected(&t, &format!("'{w}'")))
        }
    }

    fn int(&mut self, what: &str) -> PResult<(i64, Pos)> {
        let t = self.next()?;
        if t.kind != Kind::Num {
            return Err(Self::unexpected(&t, what));
        }
        let v = parse_i64(t.kind, &t.text).map_err(|m| PErr::new(t.pos, m))?;
        Ok((v, t.pos))
    }

    /// A name: a quoted string or a bare word.
    fn name(&mut self, what: &str) -> PResult<String> {
        let t = self.next()?;
        match t.kind {
            Kind::Str | Kind::Word => Ok(t.text.into_owned()),
            _ => Err(Self::unexpected(&t, what)),
        }
    }

    // ----- file structure -------------------------------------------------------------

    fn file(&mut self) -> PResult<Graph> {
        self.expect_word("lnir")?;
        let (v, pos) = self.int("a version number")?;
        if v != VERSION {
            return Err(PErr::new(
                pos,
                format!("unsupported lnir version {v} (this lnc reads version {VERSION})"),
            ));
        }
        self.expect_word("graph")?;
        let gname = self.name("a graph name")?;
        self.expect_punct('{')?;
        let mut nodes = Vec::new();
        let mut outputs = Vec::new();
        let close = loop {
            let t = self.peek()?;
            match t.kind {
                Kind::Value => nodes.push(self.node()?),
                Kind::Word if t.text == "output" => {
                    self.next()?;
                    let value = self.value_ref()?;
                    let name = if self.is_word("as")? {
                        self.next()?;
                        Some(self.name("an output name")?)
                    } else {
                        None
                    };
                    outputs.push(OutputAst { value, name });
                }
                Kind::Punct('}') => break self.next()?.pos,
                _ => {
                    let t = self.next()?;
                    return Err(Self::unexpected(
                        &t,
                        "a node ('%name = ...'), 'output' or '}'",
                    ));
                }
            }
        };
        let mut consts = Vec::new();
        if self.is_word("consts")? {
            self.next()?;
            self.expect_punct('{')?;
            while !self.eat_punct('}')? {
                let t = self.next()?;
                if t.kind != Kind::At {
                    return Err(Self::unexpected(
                        &t,
                        "a constant ('@N : type = [...]') or '}'",
                    ));
                }
                let id: u64 = t.text.parse().unwrap_or(u64::MAX);
                if id != consts.len() as u64 {
                    return Err(PErr::new(
                        t.pos,
                        format!("expected constant @{}, found @{}", consts.len(), t.text),
                    ));
                }
                consts.push(self.const_def(&t.text)?);
            }
        }
        let t = self.next()?;
        if t.kind != Kind::Eof {
            return Err(Self::unexpected(&t, "end of input"));
        }
        build(gname, nodes, outputs, consts, close)
    }

    fn value_ref(&mut self) -> PResult<RefAst> {
        let t = self.next()?;
        if t.kind != Kind::Value {
            return Err(Self::unexpected(&t, "a value ('%name')"));
        }
        let mut port = 0;
        if self.eat_punct('#')? {
            let (p, ppos) = self.int("an output number")?;
            if !(0..=u16::MAX as i64).contains(&p) {
                return Err(PErr::new(
                    ppos,
                    format!("output number {p} is out of range"),
                ));
            }
            port = p as usize;
        }
        Ok(RefAst {
            name: t.text.into_owned(),
            port,
            pos: t.pos,
        })
    }

    fn node(&mut self) -> PResult<NodeAst> {
        let t = self.next()?;
        let (name, pos) = (t.text.into_owned(), t.pos);
        self.expect_punct('=')?;
        let op = self.next()?;
        if op.kind != Kind::Word {
            return Err(Self::unexpected(&op, "an op name"));
        }
        let rhs = match &*op.text {
            "input" => Rhs::Input,
            "const" => {
                let c = self.next()?;
                if c.kind != Kind::At {
                    return Err(Self::unexpected(&c, "a constant ('@N')"));
                }
                Rhs::Const {
                    id: c.text.parse().unwrap_or(u64::MAX),
                    pos: c.pos,
                }
            }
            opname => {
                let opname = opname.to_string();
                self.expect_punct('(')?;
                let mut args = Vec::new();
                if !self.eat_punct(')')? {
                    loop {
                        args.push(self.value_ref()?);
                        if self.eat_punct(')')? {
                            break;
                        }
                        self.expect_punct(',')?;
                    }
                }
                let mut attrs = Vec::new();
                if self.eat_punct('{')? {
                    while !self.eat_punct('}')? {
                        let k = self.next()?;
                        if k.kind != Kind::Word {
                            return Err(Self::unexpected(&k, "an attribute name"));
                        }
                        self.expect_punct('=')?;
                        let value = self.attr_value(0)?;
                        attrs.push(RawAttr {
                            key: k.text.into_owned(),
                            pos: k.pos,
                            value,
                        });
                        if !self.is_punct('}')? {
                            self.expect_punct(',')?;
                        }
                    }
                }
                Rhs::Op {
                    name: opname,
                    pos: op.pos,
                    args,
                    attrs,
                }
            }
        };
        self.expect_punct(':')?;
        let mut types = vec![self.ty(true)?];
        while self.eat_punct(',')? {
            types.push(self.ty(true)?);
        }
        Ok(NodeAst {
            name,
            pos,
            rhs,
            types,
        })
    }

    fn attr_value(&mut self, depth: usize) -> PResult<RawVal> {
        let t = self.next()?;
        let pos = t.pos;
        let raw = match t.kind {
            Kind::Num => Raw::Num(t.text.into_owned()),
            Kind::Word => Raw::Word(t.text.into_owned()),
            Kind::Punct('[') => {
                if depth >= MAX_LIST_DEPTH {
                    return Err(PErr::new(pos, "attribute lists are nested too deeply"));
                }
                let mut items = Vec::new();
                while !self.eat_punct(']')? {
                    items.push(self.attr_value(depth + 1)?);
                    if !self.is_punct(']')? {
                        self.expect_punct(',')?;
                    }
                }
                Raw::List(items)
            }
            _ => return Err(Self::unexpected(&t, "an attribute value")),
        };
        Ok(RawVal { raw, pos })
    }

    /// `dtype[d0,d1,...]`, with quantization parameters when `quant` is allowed.
    fn ty(&mut self, allow_quant: bool) -> PResult<(TensorType, Pos)> {
        let t = self.next()?;
        if t.kind != Kind::Word {
            return Err(Self::unexpected(&t, "a type (like 'f32[1,3,224,224]')"));
        }
        let pos = t.pos;
        let dtype: DType = t.text.parse().map_err(|m: String| PErr::new(pos, m))?;
        self.expect_punct('[')?;
        let mut shape = Vec::new();
        while !self.eat_punct(']')? {
            let (d, dpos) = self.int("a dimension")?;
            if !(0..=MAX_ELEMENTS as i64).contains(&d) {
                return Err(PErr::new(
                    dpos,
                    format!("dimension {d} is out of range 0..={MAX_ELEMENTS}"),
                ));
            }
            shape.push(d as usize);
            if !self.is_punct(']')? {
                self.expect_punct(',')?;
            }
        }
        let mut ty = TensorType::new(dtype, shape);
        if allow_quant && self.is_word("quant")? {
            self.next()?;
            ty.quant = Some(self.quant()?);
        }
        ty.check()
            .map_err(|m| PErr::new(pos, format!("invalid type {ty}: {m}")))?;
        Ok((ty, pos))
    }

    /// `(scale=[..], zero_point=[..][, axis=k])` after `quant`.
    fn quant(&mut self) -> PResult<Quant> {
        self.expect_punct('(')?;
        self.expect_word("scale")?;
        self.expect_punct('=')?;
        self.expect_punct('[')?;
        let mut scale = Vec::new();
        while !self.eat_punct(']')? {
            let t = self.next()?;
            scale.push(parse_f32(t.kind, &t.text).map_err(|m| PErr::new(t.pos, m))?);
            if !self.is_punct(']')? {
                self.expect_punct(',')?;
            }
        }
        self.expect_punct(',')?;
        self.expect_word("zero_point")?;
        self.expect_punct('=')?;
        self.expect_punct('[')?;
        let mut zero_point = Vec::new();
        while !self.eat_punct(']')? {
            zero_point.push(self.int("an integer")?.0);
            if !self.is_punct(']')? {
                self.expect_punct(',')?;
            }
        }
        let mut axis = None;
        if self.eat_punct(',')? {
            self.expect_word("axis")?;
            self.expect_punct('=')?;
            let (a, apos) = self.int("an axis")?;
            if !(0..=u16::MAX as i64).contains(&a) {
                return Err(PErr::new(apos, format!("axis {a} is out of range")));
            }
            axis = Some(a as usize);
        }
        self.expect_punct(')')?;
        Ok(Quant {
            scale,
            zero_point,
            axis,
        })
    }

    /// The rest of `@N : dtype[shape] = [values]` after `@N`.
    fn const_def(&mut self, id: &str) -> PResult<Tensor> {
        self.expect_punct(':')?;
        let (ty, tpos) = self.ty(false)?;
        self.expect_punct('=')?;
        if self.is_word("elided")? {
            let pos = self.next()?.pos;
            return Err(PErr::new(
                pos,
                format!("constant @{id} is elided (printed with elide_consts); its values are not in the text"),
            ));
        }
        let open = self.expect_punct('[')?;
        let n = checked_numel(&ty.shape).map_err(|m| PErr::new(tpos, m))?;
        let too_many = |pos| {
            PErr::new(
                pos,
                format!("constant @{id}: more than {n} values for {ty}"),
            )
        };
        let cap = n.min(1 << 16);
        let tensor = if ty.dtype.is_float() {
            let mut vals = Vec::with_capacity(cap);
            while !self.eat_punct(']')? {
                let t = self.next()?;
                if vals.len() == n {
                    return Err(too_many(t.pos));
                }
                vals.push(parse_f32(t.kind, &t.text).map_err(|m| PErr::new(t.pos, m))?);
                if !self.is_punct(']')? {
                    self.expect_punct(',')?;
                }
            }
            if vals.len() != n {
                return Err(PErr::new(
                    open,
                    format!("constant @{id}: {ty} needs {n} values, got {}", vals.len()),
                ));
            }
            Tensor::from_f32(&ty.shape, vals)
        } else {
            let mut vals = Vec::with_capacity(cap);
            while !self.eat_punct(']')? {
                let (v, vpos) = self.int("an integer")?;
                if vals.len() == n {
                    return Err(too_many(vpos));
                }
                if !ty.dtype.contains(v) {
                    return Err(PErr::new(
                        vpos,
                        format!("value {v} is out of range for {}", ty.dtype),
                    ));
                }
                vals.push(v);
                if !self.is_punct(']')? {
                    self.expect_punct(',')?;
                }
            }
            if vals.len() != n {
                return Err(PErr::new(
                    open,
                    format!("constant @{id}: {ty} needs {n} values, got {}", vals.len()),
                ));
            }
            Tensor::from_int(ty.dtype, &ty.shape, vals)
        };
        tensor.map_err(|m| PErr::new(tpos, m))
    }
}

fn node_err(n: &NodeAst, op: &str, pos: Pos, msg: impl std::fmt::Display) -> PErr {
    PErr::new(pos, format!("node '{}' ({op}): {msg}", n.name))
}

/// Resolve names, build nodes in text order (checking each against shape inference), add
/// outputs and verify.
fn build(
    gname: String,
    nodes: Vec<NodeAst>,
    outputs: Vec<OutputAst>,
    consts: Vec<Tensor>,
    close: Pos,
) -> PResult<Graph> {
    let mut g = Graph::new(gname);
    for t in consts {
        g.push_const(t);
    }
    // name -> (node, number of outputs)
    let mut env: HashMap<String, (NodeId, usize)> = HashMap::new();
    let resolve = |env: &HashMap<String, (NodeId, usize)>, r: &RefAst| -> PResult<Value> {
        let &(node, n) = env.get(&r.name).ok_or_else(|| {
            PErr::new(
                r.pos,
                format!(
                    "unknown value '%{}' (values must be defined before use)",
                    r.name
                ),
            )
        })?;
        if r.port >= n {
            return Err(PErr::new(
                r.pos,
                format!("'%{}' has {n} output(s), no output #{}", r.name, r.port),
            ));
        }
        Ok(Value {
            node,
            port: r.port as u16,
        })
    };
    for n in nodes {
        if env.contains_key(&n.name) {
            return Err(PErr::new(
                n.pos,
                format!("value '%{}' is defined twice", n.name),
            ));
        }
        let id = match &n.rhs {
            Rhs::Input => {
                let [(ty, _)] = &n.types[..] else {
                    return Err(node_err(
                        &n,
                        "input",
                        n.types[1].1,
                        "an input has exactly one type",
                    ));
                };
                g.add_input(&n.name, ty.clone())
                    .map_err(|e| PErr::new(n.pos, e.to_string()))?
                    .node
            }
            Rhs::Const { id, pos } => {
                let [(ty, tpos)] = &n.types[..] else {
                    return Err(node_err(
                        &n,
                        "const",
                        n.types[1].1,
                        "a constant has exactly one type",
                    ));
                };
                let Some(t) = g.consts().get(*id as usize) else {
                    return Err(node_err(
                        &n,
                        "const",
                        *pos,
                        format!("constant @{id} does not exist"),
                    ));
                };
                if t.dtype != ty.dtype || t.shape() != ty.shape.as_slice() {
                    return Err(node_err(
                        &n,
                        "const",
                        *tpos,
                        format!("type {ty} differs from constant @{id} : {}", t.ty()),
                    ));
                }
                let v = g
                    .add_const_node(&n.name, ConstId(*id as u32))
                    .map_err(|e| PErr::new(n.pos, e.to_string()))?;
                // Keep quantization parameters the constant's own type does not carry.
                g.node_mut(v.node).outputs = vec![ty.clone()];
                v.node
            }
            Rhs::Op {
                name: opname,
                pos,
                args,
                attrs,
            } => {
                if !OP_NAMES.contains(&opname.as_str()) {
                    return Err(PErr::new(*pos, format!("unknown op '{opname}'")));
                }
                let mut a = Attrs::new(opname, *pos, attrs.clone())?;
                let op: Op = build_op(opname, &mut a)?
                    .ok_or_else(|| PErr::new(*pos, format!("unknown op '{opname}'")))?;
                a.finish()?;
                if !op.arity().accepts(args.len()) {
                    return Err(node_err(
                        &n,
                        opname,
                        *pos,
                        format!(
                            "expects {} input(s), got {}",
                            arity_text(op.arity()),
                            args.len()
                        ),
                    ));
                }
                let ins: Vec<Value> = args
                    .iter()
                    .map(|r| resolve(&env, r))
                    .collect::<PResult<_>>()?;
                let in_tys: Vec<&TensorType> = ins.iter().map(|v| g.value_type(*v)).collect();
                let inferred =
                    crate::shape::infer(&op, &in_tys).map_err(|m| node_err(&n, opname, *pos, m))?;
                if inferred.len() != n.types.len() {
                    return Err(node_err(
                        &n,
                        opname,
                        n.types[0].1,
                        format!(
                            "declares {} output type(s), op produces {}",
                            n.types.len(),
                            inferred.len()
                        ),
                    ));
                }
                for (i, (inf, (decl, tpos))) in inferred.iter().zip(&n.types).enumerate() {
                    if inf.dtype != decl.dtype || inf.shape != decl.shape {
                        return Err(node_err(
                            &n,
                            opname,
                            *tpos,
                            format!("output {i} is declared {decl}, inferred {inf}"),
                        ));
                    }
                }
                let types = n.types.iter().map(|(t, _)| t.clone()).collect();
                g.add_node_typed(&n.name, op, &ins, types)
                    .map_err(|e| PErr::new(n.pos, e.to_string()))?
            }
        };
        env.insert(n.name.clone(), (id, n.types.len()));
    }
    if outputs.is_empty() {
        return Err(PErr::new(close, "graph has no outputs"));
    }
    for o in outputs {
        let v = resolve(&env, &o.value)?;
        let name = o.name.unwrap_or_else(|| o.value.name.clone());
        g.add_output(&name, v);
    }
    Ok(g)
}

/// Parse `.lnir` text into a verified graph.
pub(crate) fn parse(src: &str) -> Result<Graph> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let mut p = Parser {
        lx: Lexer::new(src),
        peeked: None,
    };
    let g = p.file()?;
    crate::verify::verify(&g)?;
    Ok(g)
}
