//! Model files: the protobuf reader and the contract's metadata validation
//! (everything Grown checks before ONNX Runtime sees the bytes).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    grown::grow::model::fuzz_metadata(data);
});
