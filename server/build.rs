//! Generates Rust code for keel's protos (etcd v3 API and the peer transport).
//!
//! protoc comes from the `protoc-bin-vendored` crate, so building needs no
//! system protobuf compiler. `madsim-tonic-build` writes both the normal tonic
//! code and madsim's simulated variant (under `$OUT_DIR/sim/`);
//! `tonic::include_proto!` picks the one matching `cfg(madsim)`.
//!
//! `pbjson-build` then writes serde impls for the etcd packages
//! (`$OUT_DIR/<package>.serde.rs`) with grpc-gateway's JSON mapping as etcd
//! 3.4 uses it (`runtime.JSONPb{OrigName: true}`): proto field names,
//! 64-bit integers as strings, bytes as base64, enums by name, defaults
//! omitted, unknown fields ignored.

use std::path::PathBuf;

const PROTOS: [&str; 6] = [
    "proto/mvccpb/kv.proto",
    "proto/authpb/auth.proto",
    "proto/etcdserverpb/rpc.proto",
    "proto/v3lockpb/v3lock.proto",
    "proto/v3electionpb/v3election.proto",
    "proto/keelpeerpb/peer.proto",
];

/// Packages the HTTP/JSON gateway speaks (not the peer protocol).
const JSON_PACKAGES: [&str; 5] = [
    ".mvccpb",
    ".authpb",
    ".etcdserverpb",
    ".v3lockpb",
    ".v3electionpb",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `--cfg madsim` selects the simulated tokio/tonic; declare it to rustc.
    println!("cargo::rustc-check-cfg=cfg(madsim)");
    let descriptors = PathBuf::from(std::env::var("OUT_DIR")?).join("etcd_descriptors.bin");
    let mut config = prost_build::Config::new();
    config.file_descriptor_set_path(&descriptors);
    // Passed explicitly rather than through the PROTOC environment variable.
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    let includes = [PathBuf::from("proto"), protoc_bin_vendored::include_path()?];
    tonic_build::configure()
        .bytes(["."])
        .compile_protos_with_config(config, &PROTOS, &includes)?;
    pbjson_build::Builder::new()
        .register_descriptors(&std::fs::read(&descriptors)?)?
        .preserve_proto_field_names()
        .ignore_unknown_fields()
        .build(&JSON_PACKAGES)?;
    Ok(())
}
