//! Code generated from `server/proto/` by `build.rs` (prost messages, tonic
//! clients and servers). One module per protobuf package, named as the
//! package so generated cross-package paths (`super::mvccpb::KeyValue`) resolve.
//!
//! The etcd packages also get serde impls with grpc-gateway's JSON mapping
//! (`pbjson-build`, see `build.rs`) for the HTTP/JSON gateway.
//!
//! Under `cfg(madsim)` `tonic::include_proto!` includes madsim's simulated
//! services instead of the network ones; the message types are identical.

#![allow(missing_docs, clippy::all, clippy::pedantic, clippy::unwrap_used)]

/// etcd's storage types: `KeyValue`, `Event` (etcd `mvccpb`).
pub mod mvccpb {
    tonic::include_proto!("mvccpb");
    include!(concat!(env!("OUT_DIR"), "/mvccpb.serde.rs"));
}

/// etcd's auth types: `User`, `Role`, `Permission` (etcd `authpb`).
pub mod authpb {
    tonic::include_proto!("authpb");
    include!(concat!(env!("OUT_DIR"), "/authpb.serde.rs"));
}

/// etcd's v3 API: KV, Watch, Lease, Cluster, Maintenance, Auth (etcd `etcdserverpb`).
pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
    include!(concat!(env!("OUT_DIR"), "/etcdserverpb.serde.rs"));
}

/// etcd's lock service (etcd `v3lockpb`).
pub mod v3lockpb {
    tonic::include_proto!("v3lockpb");
    include!(concat!(env!("OUT_DIR"), "/v3lockpb.serde.rs"));
}

/// etcd's election service (etcd `v3electionpb`).
pub mod v3electionpb {
    tonic::include_proto!("v3electionpb");
    include!(concat!(env!("OUT_DIR"), "/v3electionpb.serde.rs"));
}

/// keel's member-to-member transport: Raft message batches and snapshot chunks.
pub mod keelpeerpb {
    tonic::include_proto!("keelpeerpb");
}
