//! Generates Rust code for keel's protos (etcd v3 API and the peer transport).
//!
//! protoc comes from the `protoc-bin-vendored` crate, so building needs no
//! system protobuf compiler. `madsim-tonic-build` writes both the normal tonic
//! code and madsim's simulated variant (under `$OUT_DIR/sim/`);
//! `tonic::include_proto!` picks the one matching `cfg(madsim)`.

use std::path::PathBuf;

const PROTOS: [&str; 6] = [
    "proto/mvccpb/kv.proto",
    "proto/authpb/auth.proto",
    "proto/etcdserverpb/rpc.proto",
    "proto/v3lockpb/v3lock.proto",
    "proto/v3electionpb/v3election.proto",
    "proto/keelpeerpb/peer.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `--cfg madsim` selects the simulated tokio/tonic; declare it to rustc.
    println!("cargo::rustc-check-cfg=cfg(madsim)");
    let mut config = prost_build::Config::new();
    // Passed explicitly rather than through the PROTOC environment variable.
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    let includes = [PathBuf::from("proto"), protoc_bin_vendored::include_path()?];
    tonic_build::configure()
        .bytes(["."])
        .compile_protos_with_config(config, &PROTOS, &includes)?;
    Ok(())
}
