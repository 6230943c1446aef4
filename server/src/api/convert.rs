//! Conversions between etcd's wire messages (`etcdserverpb`, `mvccpb`,
//! `authpb`) and the kernel's types. Requests go wire → kernel, responses
//! kernel → wire; unknown enum values on the wire take etcd's default
//! (the zero value), as Go's protobuf does.

use bytes::Bytes;
use keel_kernel::apply::{AlarmAction, AlarmMember, AlarmRequest, AlarmType};
use keel_kernel::auth::{Permission, PermissionType};
use keel_kernel::membership::Member;
use keel_kernel::mvcc::{
    self, Compare, CompareResult, CompareTarget, DeleteRangeRequest, EventType, KeyValue,
    PutRequest, RangeRequest, RequestOp, ResponseOp, SortOrder, SortTarget, TxnRequest,
};

use crate::proto::authpb;
use crate::proto::etcdserverpb as pb;
use crate::proto::mvccpb;

/// A range request (etcd `RangeRequest`) for the store.
pub fn range_request(req: &pb::RangeRequest) -> RangeRequest {
    use pb::range_request::{SortOrder as Order, SortTarget as Target};
    RangeRequest {
        key: req.key.to_vec(),
        range_end: req.range_end.to_vec(),
        limit: req.limit,
        revision: req.revision,
        sort_order: match req.sort_order() {
            Order::None => SortOrder::None,
            Order::Ascend => SortOrder::Ascend,
            Order::Descend => SortOrder::Descend,
        },
        sort_target: match req.sort_target() {
            Target::Key => SortTarget::Key,
            Target::Version => SortTarget::Version,
            Target::Create => SortTarget::Create,
            Target::Mod => SortTarget::Mod,
            Target::Value => SortTarget::Value,
        },
        serializable: req.serializable,
        keys_only: req.keys_only,
        count_only: req.count_only,
        min_mod_revision: req.min_mod_revision,
        max_mod_revision: req.max_mod_revision,
        min_create_revision: req.min_create_revision,
        max_create_revision: req.max_create_revision,
    }
}

/// A put request (etcd `PutRequest`) for the store.
pub fn put_request(req: &pb::PutRequest) -> PutRequest {
    PutRequest {
        key: req.key.to_vec(),
        value: req.value.to_vec(),
        lease: req.lease,
        prev_kv: req.prev_kv,
        ignore_value: req.ignore_value,
        ignore_lease: req.ignore_lease,
    }
}

/// A delete request (etcd `DeleteRangeRequest`) for the store.
pub fn delete_range_request(req: &pb::DeleteRangeRequest) -> DeleteRangeRequest {
    DeleteRangeRequest {
        key: req.key.to_vec(),
        range_end: req.range_end.to_vec(),
        prev_kv: req.prev_kv,
    }
}

/// A txn guard (etcd `Compare`). The operand comes from `target_union`; a
/// missing operand compares with 0 (or the empty value), as in etcd.
pub fn compare(req: &pb::Compare) -> Compare {
    use pb::compare::{CompareResult as Result, CompareTarget as Target, TargetUnion};
    let number = match &req.target_union {
        Some(
            TargetUnion::Version(n)
            | TargetUnion::CreateRevision(n)
            | TargetUnion::ModRevision(n)
            | TargetUnion::Lease(n),
        ) => *n,
        Some(TargetUnion::Value(_)) | None => 0,
    };
    let target = match req.target() {
        Target::Version => CompareTarget::Version(number),
        Target::Create => CompareTarget::Create(number),
        Target::Mod => CompareTarget::Mod(number),
        Target::Lease => CompareTarget::Lease(number),
        Target::Value => match &req.target_union {
            Some(TargetUnion::Value(value)) => CompareTarget::Value(value.to_vec()),
            _ => CompareTarget::Value(Vec::new()),
        },
    };
    Compare {
        result: match req.result() {
            Result::Equal => CompareResult::Equal,
            Result::Greater => CompareResult::Greater,
            Result::Less => CompareResult::Less,
            Result::NotEqual => CompareResult::NotEqual,
        },
        target,
        key: req.key.to_vec(),
        range_end: req.range_end.to_vec(),
    }
}

/// A txn operation (etcd `RequestOp`); `None` when the op is empty (etcd
/// ignores such ops).
pub fn request_op(op: &pb::RequestOp) -> Option<RequestOp> {
    use pb::request_op::Request;
    Some(match op.request.as_ref()? {
        Request::RequestRange(r) => RequestOp::Range(range_request(r)),
        Request::RequestPut(r) => RequestOp::Put(put_request(r)),
        Request::RequestDeleteRange(r) => RequestOp::DeleteRange(delete_range_request(r)),
        Request::RequestTxn(r) => RequestOp::Txn(txn_request(r)),
    })
}

/// A txn (etcd `TxnRequest`) for the store; empty ops are dropped.
pub fn txn_request(req: &pb::TxnRequest) -> TxnRequest {
    TxnRequest {
        compare: req.compare.iter().map(compare).collect(),
        success: req.success.iter().filter_map(request_op).collect(),
        failure: req.failure.iter().filter_map(request_op).collect(),
    }
}

/// A stored key-value on the wire (etcd `mvccpb.KeyValue`).
pub fn key_value(kv: KeyValue) -> mvccpb::KeyValue {
    mvccpb::KeyValue {
        key: kv.key,
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        value: kv.value,
        lease: kv.lease,
    }
}

/// A change event on the wire (etcd `mvccpb.Event`).
pub fn event(event: mvcc::Event) -> mvccpb::Event {
    let kind = match event.event_type {
        EventType::Put => mvccpb::event::EventType::Put,
        EventType::Delete => mvccpb::event::EventType::Delete,
    };
    mvccpb::Event {
        r#type: kind as i32,
        kv: Some(key_value(event.kv)),
        prev_kv: event.prev_kv.map(key_value),
    }
}

/// A header carrying only a revision (for responses nested in a txn, as
/// etcd leaves their cluster fields empty).
fn revision_header(revision: i64) -> Option<pb::ResponseHeader> {
    Some(pb::ResponseHeader {
        revision,
        ..pb::ResponseHeader::default()
    })
}

/// A range answer; `header` is the outer response header.
pub fn range_response(
    resp: mvcc::RangeResponse,
    header: Option<pb::ResponseHeader>,
) -> pb::RangeResponse {
    pb::RangeResponse {
        header,
        kvs: resp.kvs.into_iter().map(key_value).collect(),
        more: resp.more,
        count: resp.count,
    }
}

/// A put answer; `header` is the outer response header.
pub fn put_response(
    resp: mvcc::PutResponse,
    header: Option<pb::ResponseHeader>,
) -> pb::PutResponse {
    pb::PutResponse {
        header,
        prev_kv: resp.prev_kv.map(key_value),
    }
}

/// A delete answer; `header` is the outer response header.
pub fn delete_range_response(
    resp: mvcc::DeleteRangeResponse,
    header: Option<pb::ResponseHeader>,
) -> pb::DeleteRangeResponse {
    pb::DeleteRangeResponse {
        header,
        deleted: resp.deleted,
        prev_kvs: resp.prev_kvs.into_iter().map(key_value).collect(),
    }
}

/// A txn answer; `header` is the outer response header, nested responses
/// carry their own revision only.
pub fn txn_response(
    resp: mvcc::TxnResponse,
    header: Option<pb::ResponseHeader>,
) -> pb::TxnResponse {
    pb::TxnResponse {
        header,
        succeeded: resp.succeeded,
        responses: resp.responses.into_iter().map(response_op).collect(),
    }
}

fn response_op(op: ResponseOp) -> pb::ResponseOp {
    use pb::response_op::Response;
    let response = match op {
        ResponseOp::Range(r) => {
            let header = revision_header(r.revision);
            Response::ResponseRange(range_response(r, header))
        }
        ResponseOp::Put(r) => {
            let header = revision_header(r.revision);
            Response::ResponsePut(put_response(r, header))
        }
        ResponseOp::DeleteRange(r) => {
            let header = revision_header(r.revision);
            Response::ResponseDeleteRange(delete_range_response(r, header))
        }
        ResponseOp::Txn(r) => {
            let header = revision_header(r.revision);
            Response::ResponseTxn(txn_response(r, header))
        }
    };
    pb::ResponseOp {
        response: Some(response),
    }
}

/// A member on the wire (etcd `Member`).
pub fn member(member: &Member) -> pb::Member {
    pb::Member {
        id: member.id,
        name: member.name.clone(),
        peer_ur_ls: member.peer_urls.clone(),
        client_ur_ls: member.client_urls.clone(),
        is_learner: member.is_learner,
    }
}

/// An alarm request (etcd `AlarmRequest`) for the state machine.
pub fn alarm_request(req: &pb::AlarmRequest) -> AlarmRequest {
    use pb::alarm_request::AlarmAction as Action;
    AlarmRequest {
        action: match req.action() {
            Action::Get => AlarmAction::Get,
            Action::Activate => AlarmAction::Activate,
            Action::Deactivate => AlarmAction::Deactivate,
        },
        member_id: req.member_id,
        alarm: alarm_type(req.alarm()),
    }
}

fn alarm_type(alarm: pb::AlarmType) -> AlarmType {
    match alarm {
        pb::AlarmType::None => AlarmType::None,
        pb::AlarmType::Nospace => AlarmType::NoSpace,
        pb::AlarmType::Corrupt => AlarmType::Corrupt,
    }
}

/// A raised alarm on the wire (etcd `AlarmMember`).
pub fn alarm_member(alarm: AlarmMember) -> pb::AlarmMember {
    let kind = match alarm.alarm {
        AlarmType::None => pb::AlarmType::None,
        AlarmType::NoSpace => pb::AlarmType::Nospace,
        AlarmType::Corrupt => pb::AlarmType::Corrupt,
    };
    pb::AlarmMember {
        member_id: alarm.member_id,
        alarm: kind as i32,
    }
}

/// etcd's name of an alarm in `Status.errors` ("memberID:N alarm:NOSPACE ").
pub fn alarm_error(alarm: AlarmMember) -> String {
    let name = match alarm.alarm {
        AlarmType::None => "NONE",
        AlarmType::NoSpace => "NOSPACE",
        AlarmType::Corrupt => "CORRUPT",
    };
    format!("memberID:{} alarm:{name} ", alarm.member_id)
}

/// A permission (etcd `authpb.Permission`) for the auth store.
pub fn permission(perm: &authpb::Permission) -> Permission {
    use authpb::permission::Type;
    Permission {
        perm_type: match perm.perm_type() {
            Type::Read => PermissionType::Read,
            Type::Write => PermissionType::Write,
            Type::Readwrite => PermissionType::ReadWrite,
        },
        key: perm.key.to_vec(),
        range_end: perm.range_end.to_vec(),
    }
}

/// A permission on the wire (etcd `authpb.Permission`).
pub fn permission_to_wire(perm: Permission) -> authpb::Permission {
    use authpb::permission::Type;
    let kind = match perm.perm_type {
        PermissionType::Read => Type::Read,
        PermissionType::Write => Type::Write,
        PermissionType::ReadWrite => Type::Readwrite,
    };
    authpb::Permission {
        perm_type: kind as i32,
        key: Bytes::from(perm.key),
        range_end: Bytes::from(perm.range_end),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn range_request_keeps_every_field() {
        let wire = pb::RangeRequest {
            key: Bytes::from_static(b"a"),
            range_end: Bytes::from_static(b"z"),
            limit: 3,
            revision: 7,
            sort_order: pb::range_request::SortOrder::Descend as i32,
            sort_target: pb::range_request::SortTarget::Mod as i32,
            serializable: true,
            keys_only: true,
            count_only: false,
            min_mod_revision: 1,
            max_mod_revision: 2,
            min_create_revision: 3,
            max_create_revision: 4,
        };
        let req = range_request(&wire);
        assert_eq!(req.key, b"a");
        assert_eq!(req.range_end, b"z");
        assert_eq!((req.limit, req.revision), (3, 7));
        assert_eq!(req.sort_order, SortOrder::Descend);
        assert_eq!(req.sort_target, SortTarget::Mod);
        assert!(req.serializable && req.keys_only && !req.count_only);
        assert_eq!(
            (
                req.min_mod_revision,
                req.max_mod_revision,
                req.min_create_revision,
                req.max_create_revision
            ),
            (1, 2, 3, 4)
        );
    }

    #[test]
    fn unknown_enum_values_take_the_default() {
        let wire = pb::RangeRequest {
            sort_order: 99,
            sort_target: -1,
            ..pb::RangeRequest::default()
        };
        let req = range_request(&wire);
        assert_eq!(req.sort_order, SortOrder::None);
        assert_eq!(req.sort_target, SortTarget::Key);
    }

    #[test]
    fn compare_takes_its_operand_from_the_union() {
        use pb::compare::{CompareResult as R, CompareTarget as T, TargetUnion};
        let wire = pb::Compare {
            result: R::Greater as i32,
            target: T::Mod as i32,
            key: Bytes::from_static(b"k"),
            range_end: Bytes::new(),
            target_union: Some(TargetUnion::ModRevision(5)),
        };
        let cmp = compare(&wire);
        assert_eq!(cmp.result, CompareResult::Greater);
        assert_eq!(cmp.target, CompareTarget::Mod(5));
        let value = pb::Compare {
            target: T::Value as i32,
            target_union: Some(TargetUnion::Value(Bytes::from_static(b"v"))),
            ..wire.clone()
        };
        assert_eq!(compare(&value).target, CompareTarget::Value(b"v".to_vec()));
        let missing = pb::Compare {
            target: T::Version as i32,
            target_union: None,
            ..wire
        };
        assert_eq!(compare(&missing).target, CompareTarget::Version(0));
    }

    #[test]
    fn txn_drops_empty_ops_and_nests() {
        use pb::request_op::Request;
        let put = pb::RequestOp {
            request: Some(Request::RequestPut(pb::PutRequest {
                key: Bytes::from_static(b"k"),
                value: Bytes::from_static(b"v"),
                ..pb::PutRequest::default()
            })),
        };
        let nested = pb::RequestOp {
            request: Some(Request::RequestTxn(pb::TxnRequest {
                success: vec![put.clone()],
                ..pb::TxnRequest::default()
            })),
        };
        let wire = pb::TxnRequest {
            compare: Vec::new(),
            success: vec![put, pb::RequestOp { request: None }, nested],
            failure: Vec::new(),
        };
        let txn = txn_request(&wire);
        assert_eq!(txn.success.len(), 2);
        assert!(matches!(&txn.success[1], RequestOp::Txn(inner) if inner.success.len() == 1));
    }

    #[test]
    fn responses_carry_headers_and_events_their_type() {
        let kv = KeyValue {
            key: Bytes::from_static(b"k"),
            create_revision: 2,
            mod_revision: 3,
            version: 2,
            value: Bytes::from_static(b"v"),
            lease: 9,
        };
        let txn = mvcc::TxnResponse {
            revision: 3,
            succeeded: true,
            responses: vec![ResponseOp::Range(mvcc::RangeResponse {
                revision: 3,
                kvs: vec![kv.clone()],
                more: false,
                count: 1,
            })],
        };
        let outer = Some(pb::ResponseHeader {
            cluster_id: 1,
            member_id: 2,
            revision: 3,
            raft_term: 4,
        });
        let wire = txn_response(txn, outer);
        assert_eq!(wire.header, outer);
        let Some(pb::response_op::Response::ResponseRange(range)) = &wire.responses[0].response
        else {
            panic!("expected a range response");
        };
        assert_eq!(range.header.map(|h| h.revision), Some(3));
        assert_eq!(range.kvs[0].lease, 9);
        let deleted = event(mvcc::Event {
            event_type: EventType::Delete,
            kv: kv.clone(),
            prev_kv: Some(kv),
            sub_revision: 0,
        });
        assert_eq!(deleted.r#type, mvccpb::event::EventType::Delete as i32);
        assert!(deleted.prev_kv.is_some());
    }

    #[test]
    fn permissions_and_alarms_round_trip() {
        let perm = Permission {
            perm_type: PermissionType::ReadWrite,
            key: b"a".to_vec(),
            range_end: b"b".to_vec(),
        };
        assert_eq!(permission(&permission_to_wire(perm.clone())), perm);
        let raised = AlarmMember {
            member_id: 7,
            alarm: AlarmType::NoSpace,
        };
        let wire = alarm_member(raised);
        assert_eq!(wire.alarm, pb::AlarmType::Nospace as i32);
        assert_eq!(alarm_error(raised), "memberID:7 alarm:NOSPACE ");
        let req = alarm_request(&pb::AlarmRequest {
            action: pb::alarm_request::AlarmAction::Deactivate as i32,
            member_id: 7,
            alarm: pb::AlarmType::Nospace as i32,
        });
        assert_eq!(req.action, AlarmAction::Deactivate);
        assert_eq!(req.alarm, AlarmType::NoSpace);
    }
}
