//! `--write-out=fields`: `"Name" : value` lines
//! (etcdctl/ctlv3/command/printer_fields.go).

use etcd_client::proto::{
    PbDeleteResponse, PbKeyValue, PbPutResponse, PbRangeResponse, PbResponseHeader,
    PbTxnOpResponse, PbTxnResponse, PbWatchResponse,
};

use super::go::quote;
use super::simple::event_type;

/// A key-value pair, each field prefixed with `prefix` (`Prev` or ``).
pub fn kv(out: &mut String, prefix: &str, kv: &PbKeyValue) {
    out.push_str(&format!("\"{prefix}Key\" : {}\n", quote(&kv.key)));
    out.push_str(&format!(
        "\"{prefix}CreateRevision\" : {}\n",
        kv.create_revision
    ));
    out.push_str(&format!("\"{prefix}ModRevision\" : {}\n", kv.mod_revision));
    out.push_str(&format!("\"{prefix}Version\" : {}\n", kv.version));
    out.push_str(&format!("\"{prefix}Value\" : {}\n", quote(&kv.value)));
    out.push_str(&format!("\"{prefix}Lease\" : {}\n", kv.lease));
}

/// The response header (zeros when the response has none).
pub fn header(out: &mut String, h: Option<&PbResponseHeader>) {
    let h = h.cloned().unwrap_or_default();
    out.push_str(&format!("\"ClusterID\" : {}\n", h.cluster_id));
    out.push_str(&format!("\"MemberID\" : {}\n", h.member_id));
    out.push_str(&format!("\"Revision\" : {}\n", h.revision));
    out.push_str(&format!("\"RaftTerm\" : {}\n", h.raft_term));
}

/// `get`.
pub fn range(out: &mut String, r: &PbRangeResponse) {
    header(out, r.header.as_ref());
    for pair in &r.kvs {
        kv(out, "", pair);
    }
    out.push_str(&format!("\"More\" : {}\n", r.more));
    out.push_str(&format!("\"Count\" : {}\n", r.count));
}

/// `put`.
pub fn put(out: &mut String, r: &PbPutResponse) {
    header(out, r.header.as_ref());
    if let Some(prev) = &r.prev_kv {
        kv(out, "Prev", prev);
    }
}

/// `del`.
pub fn delete(out: &mut String, r: &PbDeleteResponse) {
    header(out, r.header.as_ref());
    out.push_str(&format!("\"Deleted\" : {}\n", r.deleted));
    for prev in &r.prev_kvs {
        kv(out, "Prev", prev);
    }
}

/// `txn`.
pub fn txn(out: &mut String, r: &PbTxnResponse) {
    header(out, r.header.as_ref());
    out.push_str(&format!("\"Succeeded\" : {}\n", r.succeeded));
    for op in &r.responses {
        match &op.response {
            Some(PbTxnOpResponse::ResponseRange(r)) => range(out, r),
            Some(PbTxnOpResponse::ResponsePut(r)) => put(out, r),
            Some(PbTxnOpResponse::ResponseDeleteRange(r)) => delete(out, r),
            other => out.push_str(&format!(
                "\"Unknown\" : {}\n",
                quote(format!("{other:?}").as_bytes())
            )),
        }
    }
}

/// One watch response.
pub fn watch(out: &mut String, r: &PbWatchResponse) {
    header(out, r.header.as_ref());
    for event in &r.events {
        out.push_str(&format!("\"Type\" : {}\n", event_type(event)));
        if let Some(prev) = &event.prev_kv {
            kv(out, "Prev", prev);
        }
        kv(out, "", event.kv.as_ref().unwrap_or(&PbKeyValue::default()));
    }
}
