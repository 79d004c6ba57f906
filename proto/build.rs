//! Compiles `sigil/v1/*.proto` with protox (no system `protoc`) and generates the
//! messages and, with the `grpc` feature, the tonic client and server code; also writes the
//! file descriptor set for gRPC reflection.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "sigil/v1/common.proto",
        "sigil/v1/jobs.proto",
        "sigil/v1/attestation.proto",
        "sigil/v1/provider.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["."])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    // `compile_fds` does not write `file_descriptor_set_path`; reflection needs the set.
    std::fs::write(out.join("sigil_v1_descriptor.bin"), fds.encode_to_vec())?;
    let grpc = std::env::var_os("CARGO_FEATURE_GRPC").is_some();
    tonic_prost_build::configure()
        // Undecodable requests are INVALID_ARGUMENT, not prost's INTERNAL (see `codec`).
        .codec_path("crate::codec::SigilCodec")
        .build_client(grpc)
        .build_server(grpc)
        .compile_fds(fds)?;
    Ok(())
}
