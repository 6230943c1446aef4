//! The protobuf messages etcd stores in its buckets, declared by hand with
//! prost's derive (field numbers from etcd 3.4's `mvccpb/kv.proto`,
//! `lease/leasepb/lease.proto` and `auth/authpb/auth.proto`).

/// `mvccpb.KeyValue`: a version of a key in the `key` bucket.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    /// The key.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// Revision of the key's creation in its generation.
    #[prost(int64, tag = "2")]
    pub create_revision: i64,
    /// Revision of this change.
    #[prost(int64, tag = "3")]
    pub mod_revision: i64,
    /// Version within the generation.
    #[prost(int64, tag = "4")]
    pub version: i64,
    /// The value.
    #[prost(bytes = "vec", tag = "5")]
    pub value: Vec<u8>,
    /// Attached lease id (0: none).
    #[prost(int64, tag = "6")]
    pub lease: i64,
}

/// `leasepb.Lease`: a lease in the `lease` bucket.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Lease {
    /// Lease id.
    #[prost(int64, tag = "1")]
    pub id: i64,
    /// Granted TTL in seconds.
    #[prost(int64, tag = "2")]
    pub ttl: i64,
    /// Checkpointed remaining TTL in seconds (0: none).
    #[prost(int64, tag = "3")]
    pub remaining_ttl: i64,
}

/// `authpb.UserAddOptions`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct UserAddOptions {
    /// The user has no password (etcd 3.5).
    #[prost(bool, tag = "1")]
    pub no_password: bool,
}

/// `authpb.User`: a user in the `authUsers` bucket.
#[derive(Clone, PartialEq, prost::Message)]
pub struct User {
    /// Name.
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
    /// bcrypt hash of the password (empty: none).
    #[prost(bytes = "vec", tag = "2")]
    pub password: Vec<u8>,
    /// Granted roles.
    #[prost(string, repeated, tag = "3")]
    pub roles: Vec<String>,
    /// Options (etcd 3.5).
    #[prost(message, optional, tag = "4")]
    pub options: Option<UserAddOptions>,
}

/// `authpb.Permission`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Permission {
    /// `READ` = 0, `WRITE` = 1, `READWRITE` = 2.
    #[prost(int32, tag = "1")]
    pub perm_type: i32,
    /// First key.
    #[prost(bytes = "vec", tag = "2")]
    pub key: Vec<u8>,
    /// End of the range.
    #[prost(bytes = "vec", tag = "3")]
    pub range_end: Vec<u8>,
}

/// `authpb.Role`: a role in the `authRoles` bucket.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Role {
    /// Name.
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
    /// Permissions.
    #[prost(message, repeated, tag = "2")]
    pub key_permission: Vec<Permission>,
}

/// `etcdserverpb.AlarmMember`: a raised alarm, the key of an entry in the
/// `alarm` bucket (whose value is empty).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AlarmMember {
    /// The member that raised it.
    #[prost(uint64, tag = "1")]
    pub member_id: u64,
    /// `NONE` = 0, `NOSPACE` = 1, `CORRUPT` = 2.
    #[prost(int32, tag = "2")]
    pub alarm: i32,
}
