//! Compiles the vendored `proto/onnx.proto` into Rust (prost) in `OUT_DIR`, with `protox`
//! (pure Rust, no system `protoc`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    let fds = protox::compile(["onnx.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
