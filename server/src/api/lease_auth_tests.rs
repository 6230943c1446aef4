//! In-process tests of the lease requests' permissions (issue 28, etcd
//! 3.6.9+ `checkLeaseRenew` and `checkLeaseLeases`): a keep-alive needs
//! WRITE on its lease's keys, a lease listing READ on every lease's keys,
//! root passes both, anonymous callers neither.

use tonic::transport::Channel;
use tonic::{Code, Status};

use super::auth_tests::{add_user, clients_and_channel, login};
use super::node_tests::RealNode;
use super::tests::{bytes, with_token};
use crate::proto::authpb;
use crate::proto::etcdserverpb as pb;

type AuthClient = pb::auth_client::AuthClient<Channel>;
type LeaseClient = pb::lease_client::LeaseClient<Channel>;

/// The lease holding key "k".
const KEYED: i64 = 1;
/// A lease without keys.
const BARE: i64 = 2;

/// Gives `user` a role of its own name allowing `perm_type` on "k".
async fn grant_k(auth: &mut AuthClient, user: &str, perm_type: authpb::permission::Type) {
    auth.role_add(pb::AuthRoleAddRequest { name: user.into() })
        .await
        .unwrap();
    let perm = authpb::Permission {
        perm_type: perm_type as i32,
        key: bytes("k"),
        range_end: bytes(""),
    };
    let grant = pb::AuthRoleGrantPermissionRequest {
        name: user.into(),
        perm: Some(perm),
    };
    auth.role_grant_permission(grant).await.unwrap();
    let role = pb::AuthUserGrantRoleRequest {
        user: user.into(),
        role: user.into(),
    };
    auth.user_grant_role(role).await.unwrap();
}

/// On a real single member: users root, wendy (WRITE on "k"), rita (READ
/// on "k") and carol (no role); lease `KEYED` holding "k", lease `BARE`;
/// auth enabled. Returns the lease client, the tokens of root, wendy, rita
/// and carol, and the member.
async fn setup() -> (LeaseClient, [String; 4], RealNode) {
    let (mut auth, mut kv, channel, node) = clients_and_channel().await;
    let mut lease = LeaseClient::new(channel);
    for user in ["root", "wendy", "rita", "carol"] {
        add_user(&mut auth, user, "pw").await;
    }
    let root = pb::AuthUserGrantRoleRequest {
        user: "root".into(),
        role: "root".into(),
    };
    auth.user_grant_role(root).await.unwrap();
    grant_k(&mut auth, "wendy", authpb::permission::Type::Write).await;
    grant_k(&mut auth, "rita", authpb::permission::Type::Read).await;
    for id in [KEYED, BARE] {
        lease
            .lease_grant(pb::LeaseGrantRequest { ttl: 60, id })
            .await
            .unwrap();
    }
    let put = pb::PutRequest {
        key: bytes("k"),
        value: bytes("v"),
        lease: KEYED,
        ..pb::PutRequest::default()
    };
    kv.put(put).await.unwrap();
    auth.auth_enable(pb::AuthEnableRequest {}).await.unwrap();
    let mut tokens = Vec::new();
    for user in ["root", "wendy", "rita", "carol"] {
        tokens.push(login(&mut auth, user, "pw").await);
    }
    (lease, tokens.try_into().unwrap(), node)
}

/// The first answer of a keep-alive stream sending one renewal of `id`
/// (with `token`, if any): its TTL, or the status that ended the stream.
async fn keep_alive(lease: &mut LeaseClient, token: Option<&str>, id: i64) -> Result<i64, Status> {
    let requests = tokio_stream::iter(vec![pb::LeaseKeepAliveRequest { id }]);
    let mut request = tonic::Request::new(requests);
    if let Some(token) = token {
        let value = token.parse().unwrap();
        request
            .metadata_mut()
            .insert(super::TOKEN_METADATA_KEY, value);
    }
    let mut answers = lease.lease_keep_alive(request).await?.into_inner();
    let answer = answers.message().await?.unwrap();
    assert_eq!(answer.id, id);
    Ok(answer.ttl)
}

fn code_and_message(status: &Status) -> (Code, &str) {
    (status.code(), status.message())
}

#[tokio::test]
async fn keep_alive_needs_write_on_the_leases_keys() {
    let (mut lease, [root, wendy, rita, carol], _node) = setup().await;
    let denied = (Code::PermissionDenied, "etcdserver: permission denied");
    for token in [&root, &wendy] {
        assert_eq!(
            keep_alive(&mut lease, Some(token), KEYED).await.unwrap(),
            60
        );
    }
    for token in [&rita, &carol] {
        let refused = keep_alive(&mut lease, Some(token), KEYED)
            .await
            .unwrap_err();
        assert_eq!(code_and_message(&refused), denied);
        assert_eq!(keep_alive(&mut lease, Some(token), BARE).await.unwrap(), 60);
        assert_eq!(keep_alive(&mut lease, Some(token), 99).await.unwrap(), 0);
    }
    let empty = (Code::InvalidArgument, "etcdserver: user name is empty");
    for id in [KEYED, BARE, 99] {
        let anonymous = keep_alive(&mut lease, None, id).await.unwrap_err();
        assert_eq!(code_and_message(&anonymous), empty);
    }
    let bad = keep_alive(&mut lease, Some("made.up"), BARE)
        .await
        .unwrap_err();
    let invalid = (Code::Unauthenticated, "etcdserver: invalid auth token");
    assert_eq!(code_and_message(&bad), invalid);
}

#[tokio::test]
async fn listing_leases_needs_read_on_every_leases_keys() {
    let (mut lease, [root, wendy, rita, carol], _node) = setup().await;
    for token in [&root, &rita] {
        let listed = lease
            .lease_leases(with_token(pb::LeaseLeasesRequest {}, token))
            .await
            .unwrap()
            .into_inner();
        let ids: Vec<i64> = listed.leases.iter().map(|status| status.id).collect();
        assert_eq!(ids, vec![KEYED, BARE]);
    }
    let denied = (Code::PermissionDenied, "etcdserver: permission denied");
    for token in [&wendy, &carol] {
        let refused = lease
            .lease_leases(with_token(pb::LeaseLeasesRequest {}, token))
            .await
            .unwrap_err();
        assert_eq!(code_and_message(&refused), denied);
    }
    lease
        .lease_revoke(with_token(pb::LeaseRevokeRequest { id: KEYED }, &root))
        .await
        .unwrap();
    let listed = lease
        .lease_leases(with_token(pb::LeaseLeasesRequest {}, &carol))
        .await
        .unwrap();
    assert_eq!(
        listed.into_inner().leases,
        vec![pb::LeaseStatus { id: BARE }]
    );
}
