//! `--write-out=json`: the response as Go's `encoding/json` prints
//! etcdctl 3.4's response structs: protobuf field names from the gogo
//! `json` tags, zero values left out (`omitempty`), int64 and uint64 as
//! numbers, bytes as standard base64. Client-side wrappers (watch, lease)
//! keep their Go field names. Source: etcdctl/ctlv3/command/printer_json.go
//! and the etcd 3.4 clientv3 / etcdserverpb types.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use etcd_client::proto::{
    PbDeleteResponse, PbKeyValue, PbMember, PbPutResponse, PbRangeResponse, PbResponseHeader,
    PbTxnOpResponse, PbTxnResponse,
};
use serde_json::{Map, Value};

/// A JSON object under construction that leaves out zero values, as Go's
/// `omitempty` does.
#[derive(Default)]
pub struct Object(Map<String, Value>);

impl Object {
    /// An empty object.
    pub fn new() -> Object {
        Object::default()
    }

    /// Adds `name` unless `value` is zero.
    pub fn int(mut self, name: &str, value: i64) -> Object {
        if value != 0 {
            self.0.insert(name.to_owned(), Value::from(value));
        }
        self
    }

    /// Adds `name` unless `value` is zero.
    pub fn uint(mut self, name: &str, value: u64) -> Object {
        if value != 0 {
            self.0.insert(name.to_owned(), Value::from(value));
        }
        self
    }

    /// Adds `name` unless `value` is false.
    pub fn flag(mut self, name: &str, value: bool) -> Object {
        if value {
            self.0.insert(name.to_owned(), Value::Bool(true));
        }
        self
    }

    /// Adds `name` as base64 unless `value` is empty.
    pub fn bytes(mut self, name: &str, value: &[u8]) -> Object {
        if !value.is_empty() {
            self.0
                .insert(name.to_owned(), Value::from(STANDARD.encode(value)));
        }
        self
    }

    /// Adds `name` unless `value` is empty.
    pub fn text(mut self, name: &str, value: &str) -> Object {
        if !value.is_empty() {
            self.0.insert(name.to_owned(), Value::from(value));
        }
        self
    }

    /// Adds `name` unless `value` is `None`.
    pub fn object(mut self, name: &str, value: Option<Value>) -> Object {
        if let Some(value) = value {
            self.0.insert(name.to_owned(), value);
        }
        self
    }

    /// Adds `name` unless `items` is empty.
    pub fn list(mut self, name: &str, items: Vec<Value>) -> Object {
        if !items.is_empty() {
            self.0.insert(name.to_owned(), Value::Array(items));
        }
        self
    }

    /// Adds `name` whatever its value (a field without `omitempty`).
    pub fn always(mut self, name: &str, value: Value) -> Object {
        self.0.insert(name.to_owned(), value);
        self
    }

    /// The finished object.
    pub fn value(self) -> Value {
        Value::Object(self.0)
    }
}

/// One line: the value printed compactly, as `json.Marshal` does.
pub fn line(value: &Value) -> String {
    format!("{value}\n")
}

/// The fields of a response header.
pub fn header_fields(header: Option<&PbResponseHeader>) -> Object {
    let Some(h) = header else {
        return Object::new();
    };
    Object::new()
        .uint("cluster_id", h.cluster_id)
        .uint("member_id", h.member_id)
        .int("revision", h.revision)
        .uint("raft_term", h.raft_term)
}

/// `"header"` as a nested object (left out when the response has none).
pub fn header(header: Option<&PbResponseHeader>) -> Option<Value> {
    header.map(|h| header_fields(Some(h)).value())
}

/// A key-value pair (`mvccpb.KeyValue`).
pub fn kv(kv: &PbKeyValue) -> Value {
    Object::new()
        .bytes("key", &kv.key)
        .int("create_revision", kv.create_revision)
        .int("mod_revision", kv.mod_revision)
        .int("version", kv.version)
        .bytes("value", &kv.value)
        .int("lease", kv.lease)
        .value()
}

/// `RangeResponse`.
pub fn range(r: &PbRangeResponse) -> Value {
    Object::new()
        .object("header", header(r.header.as_ref()))
        .list("kvs", r.kvs.iter().map(kv).collect())
        .flag("more", r.more)
        .int("count", r.count)
        .value()
}

/// `PutResponse`.
pub fn put(r: &PbPutResponse) -> Value {
    Object::new()
        .object("header", header(r.header.as_ref()))
        .object("prev_kv", r.prev_kv.as_ref().map(kv))
        .value()
}

/// `DeleteRangeResponse`.
pub fn delete(r: &PbDeleteResponse) -> Value {
    Object::new()
        .object("header", header(r.header.as_ref()))
        .int("deleted", r.deleted)
        .list("prev_kvs", r.prev_kvs.iter().map(kv).collect())
        .value()
}

/// `TxnResponse`: each response is `{"Response":{"ResponsePut":{...}}}`
/// (gogo's oneof wrapper structs have no json tags).
pub fn txn(r: &PbTxnResponse) -> Value {
    let responses = r
        .responses
        .iter()
        .map(|op| {
            let inner = match &op.response {
                Some(PbTxnOpResponse::ResponseRange(r)) => {
                    Object::new().always("ResponseRange", range(r)).value()
                }
                Some(PbTxnOpResponse::ResponsePut(r)) => {
                    Object::new().always("ResponsePut", put(r)).value()
                }
                Some(PbTxnOpResponse::ResponseDeleteRange(r)) => Object::new()
                    .always("ResponseDeleteRange", delete(r))
                    .value(),
                Some(PbTxnOpResponse::ResponseTxn(r)) => {
                    Object::new().always("ResponseTxn", txn(r)).value()
                }
                None => Value::Null,
            };
            Object::new().always("Response", inner).value()
        })
        .collect();
    Object::new()
        .object("header", header(r.header.as_ref()))
        .flag("succeeded", r.succeeded)
        .list("responses", responses)
        .value()
}

/// A cluster member (`etcdserverpb.Member`, camel-case json tags).
pub fn member(m: &PbMember) -> Value {
    let strings = |v: &[String]| v.iter().map(|s| Value::from(s.as_str())).collect();
    Object::new()
        .uint("ID", m.id)
        .text("name", &m.name)
        .list("peerURLs", strings(&m.peer_ur_ls))
        .list("clientURLs", strings(&m.client_ur_ls))
        .flag("isLearner", m.is_learner)
        .value()
}

/// A list of members.
pub fn members(members: &[PbMember]) -> Vec<Value> {
    members.iter().map(member).collect()
}
