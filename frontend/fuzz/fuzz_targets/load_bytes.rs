//! Fuzz target: `load_bytes` must return (Ok or a typed error) on any input, never panic
//! or allocate without bound. Also round-trips what it loads through the exporter.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = lnc_frontend::LoadOptions::default();
    if let Ok(g) = lnc_frontend::load_bytes(data, &opts) {
        if let Ok(bytes) = lnc_frontend::to_onnx_bytes(&g) {
            let _ = lnc_frontend::load_bytes(&bytes, &opts);
        }
    }
    let _ = lnc_frontend::tensor_from_proto_bytes(data);
});
