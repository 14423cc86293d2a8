//! Bad input: every malformed or unsupported model is a typed error that names the node,
//! tensor or value and the reason — never a panic, never an unbounded allocation. The
//! messages are also snapshot-tested (`snapshots/errors__messages.snap`).

mod common;

use common::{bytes, load};
use lnc_frontend::{load_bytes, tensor_from_proto_bytes, Error, LoadOptions};

fn node_err(stem: &str) -> (String, String, String) {
    match load(stem) {
        Err(Error::Node { node, op, msg }) => (node, op, msg),
        other => panic!("{stem}: expected a node error, got {other:?}"),
    }
}

fn tensor_err(stem: &str) -> (String, String) {
    match load(stem) {
        Err(Error::Tensor { name, msg }) => (name, msg),
        other => panic!("{stem}: expected a tensor error, got {other:?}"),
    }
}

fn value_err(stem: &str) -> (String, String) {
    match load(stem) {
        Err(Error::Value { name, msg }) => (name, msg),
        other => panic!("{stem}: expected a value error, got {other:?}"),
    }
}

#[test]
fn truncated_file() {
    let b = bytes("misc_ops");
    let err = load_bytes(&b[..b.len() / 2], &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Malformed(_)), "{err}");
}

#[test]
fn every_truncation_and_byte_flip_is_an_error_or_a_graph_never_a_panic() {
    for stem in ["misc_ops", "qdq_conv", "shufflenet_split"] {
        let b = bytes(stem);
        for len in 0..b.len() {
            let _ = load_bytes(&b[..len], &LoadOptions::default());
        }
        for i in 0..b.len() {
            let mut m = b.clone();
            m[i] ^= 0xff;
            let _ = load_bytes(&m, &LoadOptions::default());
        }
    }
}

#[test]
fn random_bytes() {
    let mut s: u64 = 0x9e3779b97f4a7c15;
    for len in [1usize, 7, 64, 1000, 4096] {
        let data: Vec<u8> = (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                s as u8
            })
            .collect();
        assert!(
            load_bytes(&data, &LoadOptions::default()).is_err(),
            "len {len}"
        );
        let _ = tensor_from_proto_bytes(&data);
    }
}

#[test]
fn absurd_dims_without_data() {
    let (name, msg) = tensor_err("bad_absurd_dims");
    assert_eq!(name, "huge");
    assert!(msg.contains("exceeds the limit"), "{msg}");
}

#[test]
fn dims_claiming_data_that_is_not_there() {
    let (name, msg) = tensor_err("bad_missing_data");
    assert_eq!(name, "big");
    assert!(msg.contains("float_data has 0"), "{msg}");
}

#[test]
fn raw_data_length_disagrees_with_dims() {
    let (name, msg) = tensor_err("bad_raw_len");
    assert_eq!(name, "w");
    assert!(
        msg.contains("raw_data has 12 byte(s)") && msg.contains("need 16"),
        "{msg}"
    );
}

#[test]
fn negative_dims() {
    let (name, msg) = tensor_err("bad_negative_dims");
    assert_eq!(name, "neg");
    assert!(msg.contains("negative dimension -2"), "{msg}");
}

#[test]
fn external_data() {
    let (name, msg) = tensor_err("bad_external_data");
    assert_eq!(name, "ext");
    assert!(msg.contains("external data"), "{msg}");
}

#[test]
fn float16_initializer() {
    let (name, msg) = tensor_err("bad_f16_initializer");
    assert_eq!(name, "half");
    assert!(msg.contains("FLOAT16"), "{msg}");
}

#[test]
fn cycle() {
    match load("bad_cycle") {
        Err(Error::Graph(msg)) => {
            assert!(
                msg.contains("cyc_a") && msg.contains("cyc_b") && !msg.contains("out"),
                "{msg}"
            )
        }
        other => panic!("expected a graph error, got {other:?}"),
    }
}

#[test]
fn dangling_input() {
    let (node, op, msg) = node_err("bad_dangling");
    assert_eq!((node.as_str(), op.as_str()), ("reads_ghost", "Add"));
    assert!(msg.contains("'ghost'"), "{msg}");
}

#[test]
fn duplicate_output() {
    let (node, _, msg) = node_err("bad_duplicate_output");
    assert_eq!(node, "second");
    assert!(msg.contains("'y'") && msg.contains("'first'"), "{msg}");
}

#[test]
fn missing_graph_output() {
    let (name, msg) = value_err("bad_missing_output");
    assert_eq!(name, "nowhere");
    assert!(msg.contains("not produced"), "{msg}");
}

#[test]
fn unsupported_op() {
    let (node, op, msg) = node_err("bad_unsupported_op");
    assert_eq!((node.as_str(), op.as_str()), ("lpnorm", "LpNormalization"));
    assert!(msg.contains("not supported"), "{msg}");
}

#[test]
fn unnamed_node_is_named_by_op_and_index() {
    let (node, op, _) = node_err("bad_unnamed_node");
    assert_eq!((node.as_str(), op.as_str()), ("Erf_1", "Erf"));
}

#[test]
fn pool_storage_order() {
    let (node, _, msg) = node_err("bad_storage_order");
    assert_eq!(node, "pool_so");
    assert!(msg.contains("storage_order"), "{msg}");
}

#[test]
fn maxpool_indices_used() {
    let (node, _, msg) = node_err("bad_maxpool_indices");
    assert_eq!(node, "pool_idx");
    assert!(msg.contains("Indices"), "{msg}");
}

#[test]
fn dropout_mask_used() {
    let (node, _, msg) = node_err("bad_dropout_mask");
    assert_eq!(node, "drop");
    assert!(msg.contains("mask"), "{msg}");
}

#[test]
fn cast_to_float16() {
    let (node, _, msg) = node_err("bad_cast_f16");
    assert_eq!(node, "to_half");
    assert!(msg.contains("FLOAT16"), "{msg}");
}

#[test]
fn conv_3d() {
    let (node, _, msg) = node_err("bad_conv3d");
    assert_eq!(node, "conv3d");
    assert!(msg.contains("3-D"), "{msg}");
}

#[test]
fn non_constant_reshape_shape() {
    let (node, _, msg) = node_err("bad_dynamic_reshape");
    assert_eq!(node, "dyn_reshape");
    assert!(msg.contains("must be a constant"), "{msg}");
}

#[test]
fn symbolic_non_batch_dim() {
    let (name, msg) = value_err("bad_symbolic_dim");
    assert_eq!(name, "x");
    assert!(msg.contains("'width'"), "{msg}");
}

#[test]
fn opset_out_of_range() {
    assert!(matches!(load("bad_opset5"), Err(Error::Unsupported(m)) if m.contains("opset 5")));
}

#[test]
fn unknown_domain() {
    let (node, _, msg) = node_err("bad_domain");
    assert_eq!(node, "ms_relu");
    assert!(msg.contains("com.microsoft"), "{msg}");
}

#[test]
fn resize_cubic() {
    let (node, _, msg) = node_err("bad_resize_cubic");
    assert_eq!(node, "cubic");
    assert!(msg.contains("cubic"), "{msg}");
}

#[test]
fn tensor_pb_garbage() {
    assert!(matches!(
        tensor_from_proto_bytes(&[0xff, 0xff, 0xff]),
        Err(Error::Malformed(_))
    ));
}

#[test]
fn messages() {
    let mut stems: Vec<String> = std::fs::read_dir(common::fixture(""))
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            let stem = p.file_stem()?.to_str()?.to_string();
            (stem.starts_with("bad_") && p.extension()? == "onnx").then_some(stem)
        })
        .collect();
    stems.sort();
    let text: String = stems
        .iter()
        .map(|s| match load(s) {
            Ok(_) => format!("{s}: loaded\n"),
            Err(e) => format!("{s}: {e}\n"),
        })
        .collect();
    insta::assert_snapshot!(text);
}
