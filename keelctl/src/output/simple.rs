//! `--write-out=simple` (etcdctl/ctlv3/command/printer_simple.go).

use etcd_client::proto::{
    PbDeleteResponse, PbEvent, PbKeyValue, PbPutResponse, PbRangeResponse, PbTxnOpResponse,
    PbTxnResponse,
};

use super::go;

/// etcdctl's `printKV`: key then value on their own lines (`--hex`
/// escapes both; `value_only` leaves the key out).
pub fn kv(out: &mut String, hex: bool, value_only: bool, kv: &PbKeyValue) {
    let text = |b: &[u8]| {
        if hex {
            go::hex_escaped(b)
        } else {
            String::from_utf8_lossy(b).into_owned()
        }
    };
    if !value_only {
        out.push_str(&text(&kv.key));
        out.push('\n');
    }
    out.push_str(&text(&kv.value));
    out.push('\n');
}

/// `get`: every pair.
pub fn range(out: &mut String, hex: bool, value_only: bool, r: &PbRangeResponse) {
    for pair in &r.kvs {
        kv(out, hex, value_only, pair);
    }
}

/// `put`: `OK`, then the previous pair if asked for.
pub fn put(out: &mut String, hex: bool, value_only: bool, r: &PbPutResponse) {
    out.push_str("OK\n");
    if let Some(prev) = &r.prev_kv {
        kv(out, hex, value_only, prev);
    }
}

/// `del`: the number deleted, then the deleted pairs if asked for.
pub fn delete(out: &mut String, hex: bool, value_only: bool, r: &PbDeleteResponse) {
    out.push_str(&format!("{}\n", r.deleted));
    for prev in &r.prev_kvs {
        kv(out, hex, value_only, prev);
    }
}

/// `txn`: `SUCCESS`/`FAILURE`, then each response after an empty line.
pub fn txn(out: &mut String, hex: bool, r: &PbTxnResponse) {
    out.push_str(if r.succeeded {
        "SUCCESS\n"
    } else {
        "FAILURE\n"
    });
    for op in &r.responses {
        out.push('\n');
        match &op.response {
            Some(PbTxnOpResponse::ResponseRange(r)) => range(out, hex, false, r),
            Some(PbTxnOpResponse::ResponsePut(r)) => put(out, hex, false, r),
            Some(PbTxnOpResponse::ResponseDeleteRange(r)) => delete(out, hex, false, r),
            _ => out.push_str(&format!("unexpected response {op:?}\n")),
        }
    }
}

/// The name of an event type, as mvccpb prints it.
pub fn event_type(event: &PbEvent) -> &'static str {
    if event.r#type == 1 { "DELETE" } else { "PUT" }
}

/// `watch`: per event its type, the previous pair if any, the pair.
pub fn events(out: &mut String, hex: bool, events: &[PbEvent]) {
    for event in events {
        out.push_str(event_type(event));
        out.push('\n');
        if let Some(prev) = &event.prev_kv {
            kv(out, hex, false, prev);
        }
        kv(
            out,
            hex,
            false,
            event.kv.as_ref().unwrap_or(&PbKeyValue::default()),
        );
    }
}
