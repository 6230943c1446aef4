//! Tests over a real single member (node driver, Raft, WAL, loopback
//! gRPC) of who a request comes from and what it may do
//! (issue 28): tokens under `token` or `authorization` metadata, tokens
//! while auth is disabled, password changes, refused watches, logins of
//! no-password users, AuthStatus.

use tonic::Code;
use tonic::transport::Channel;

use super::node_tests::{RealNode, real_node};
use super::tests::{bytes, create_request, with_token};
use crate::proto::etcdserverpb as pb;

type AuthClient = pb::auth_client::AuthClient<Channel>;
type KvClient = pb::kv_client::KvClient<Channel>;

/// Auth and KV clients of a real single member (kept running while the
/// returned [`RealNode`] lives).
async fn clients() -> (AuthClient, KvClient, RealNode) {
    let (auth, kv, channel, node) = clients_and_channel().await;
    drop(channel);
    (auth, kv, node)
}

/// As [`clients`], with the channel for other services.
pub(super) async fn clients_and_channel() -> (AuthClient, KvClient, Channel, RealNode) {
    let (node, channel) = real_node().await;
    let auth = AuthClient::new(channel.clone());
    (auth, KvClient::new(channel.clone()), channel, node)
}

pub(super) async fn add_user(auth: &mut AuthClient, name: &str, password: &str) {
    let add = pb::AuthUserAddRequest {
        name: name.into(),
        password: password.into(),
        ..pb::AuthUserAddRequest::default()
    };
    auth.user_add(add).await.unwrap();
}

/// Users root (root role) and carol (no roles), auth enabled.
async fn root_and_carol(auth: &mut AuthClient) {
    add_user(auth, "root", "rootpw").await;
    add_user(auth, "carol", "carolpw").await;
    let grant = pb::AuthUserGrantRoleRequest {
        user: "root".into(),
        role: "root".into(),
    };
    auth.user_grant_role(grant).await.unwrap();
    auth.auth_enable(pb::AuthEnableRequest {}).await.unwrap();
}

pub(super) async fn login(auth: &mut AuthClient, name: &str, password: &str) -> String {
    let request = pb::AuthenticateRequest {
        name: name.into(),
        password: password.into(),
    };
    auth.authenticate(request).await.unwrap().into_inner().token
}

fn with_metadata<T>(message: T, key: &'static str, value: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(key, value.parse().unwrap());
    request
}

fn range(key: &str) -> pb::RangeRequest {
    pb::RangeRequest {
        key: bytes(key),
        ..pb::RangeRequest::default()
    }
}

fn change_password(name: &str, password: &str) -> pb::AuthUserChangePasswordRequest {
    pb::AuthUserChangePasswordRequest {
        name: name.into(),
        password: password.into(),
        ..pb::AuthUserChangePasswordRequest::default()
    }
}

/// Item 1: `etcdctl --user carol user passwd carol` is refused by etcd
/// (root role needed for every password change); the old password still
/// works afterwards.
#[tokio::test]
async fn a_user_without_root_cannot_change_its_own_password() {
    let (mut auth, _, _node) = clients().await;
    root_and_carol(&mut auth).await;
    let carol = login(&mut auth, "carol", "carolpw").await;
    let refused = auth
        .user_change_password(with_token(change_password("carol", "new"), &carol))
        .await
        .unwrap_err();
    assert_eq!(
        (refused.code(), refused.message()),
        (Code::PermissionDenied, "etcdserver: permission denied")
    );
    login(&mut auth, "carol", "carolpw").await;
    let root = login(&mut auth, "root", "rootpw").await;
    auth.user_change_password(with_token(change_password("carol", "new"), &root))
        .await
        .unwrap();
    login(&mut auth, "carol", "new").await;
}

/// Item 3: a token under `authorization` (what grpc-gateway forwards from
/// the HTTP header, with or without "Bearer ") names the caller as under
/// `token`; a bad one is refused the same way.
#[tokio::test]
async fn a_token_in_authorization_metadata_is_read() {
    let (mut auth, mut kv, _node) = clients().await;
    root_and_carol(&mut auth).await;
    let root = login(&mut auth, "root", "rootpw").await;
    let bearer = format!("Bearer {root}");
    for value in [root.as_str(), bearer.as_str()] {
        let request = with_metadata(range("k"), "authorization", value);
        kv.range(request).await.unwrap();
    }
    let carol = login(&mut auth, "carol", "carolpw").await;
    let request = with_metadata(range("k"), "authorization", &carol);
    let denied = kv.range(request).await.unwrap_err();
    assert_eq!(denied.message(), "etcdserver: permission denied");
    let request = with_metadata(range("k"), "authorization", "made.up");
    let bad = kv.range(request).await.unwrap_err();
    assert_eq!(
        (bad.code(), bad.message()),
        (Code::Unauthenticated, "etcdserver: invalid auth token")
    );
    let mut both = with_metadata(range("k"), "authorization", "made.up");
    both.metadata_mut()
        .insert(super::TOKEN_METADATA_KEY, root.parse().unwrap());
    kv.range(both).await.unwrap();
}

/// Item 2, decided the other way: while auth is disabled a request that
/// carries a token (stale or made up) is served, as by etcd 3.4.28+,
/// 3.5.10+ and 3.6 (etcd 3.4.23 answered "invalid auth token"; see
/// `docs/auth-compat.md`).
#[tokio::test]
async fn a_token_is_ignored_while_auth_is_disabled() {
    let (mut auth, mut kv, _node) = clients().await;
    root_and_carol(&mut auth).await;
    let root = login(&mut auth, "root", "rootpw").await;
    auth.auth_disable(with_token(pb::AuthDisableRequest {}, &root))
        .await
        .unwrap();
    for token in [root.as_str(), "made.up"] {
        kv.range(with_token(range("k"), token)).await.unwrap();
        let request = with_metadata(range("k"), "authorization", token);
        kv.range(request).await.unwrap();
    }
}

/// Opens a watch stream carrying `token` (if any) and sends one create
/// for `key`; returns the first response.
async fn refused_watch(channel: Channel, token: Option<&str>, key: &str) -> pb::WatchResponse {
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    let create = create_request(pb::WatchCreateRequest {
        key: bytes(key),
        ..pb::WatchCreateRequest::default()
    });
    sender.send(create).await.unwrap();
    let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(receiver));
    if let Some(token) = token {
        let value = token.parse().unwrap();
        request
            .metadata_mut()
            .insert(super::TOKEN_METADATA_KEY, value);
    }
    let mut client = pb::watch_client::WatchClient::new(channel);
    let mut responses = client.watch(request).await.unwrap().into_inner();
    let wait = std::time::Duration::from_secs(10);
    let response = tokio::time::timeout(wait, responses.message()).await;
    let response = response.unwrap().unwrap().unwrap();
    drop(sender);
    response
}

/// Item 5: a refused watch is created then canceled with Go's status text
/// as its reason; a bad token does not fail the stream.
#[tokio::test]
async fn refused_watches_carry_etcds_cancel_reasons() {
    let (mut auth, _, channel, _node) = clients_and_channel().await;
    root_and_carol(&mut auth).await;
    let carol = login(&mut auth, "carol", "carolpw").await;
    let cases = [
        (
            Some(carol.as_str()),
            "rpc error: code = PermissionDenied desc = etcdserver: permission denied",
        ),
        (
            Some("made.up"),
            "rpc error: code = Unauthenticated desc = etcdserver: invalid auth token",
        ),
        (
            None,
            "rpc error: code = InvalidArgument desc = etcdserver: user name is empty",
        ),
    ];
    for (token, reason) in cases {
        let response = refused_watch(channel.clone(), token, "k").await;
        assert!(response.created && response.canceled, "{token:?}");
        assert_eq!(response.watch_id, super::watch::INVALID_WATCH_ID);
        assert_eq!(response.cancel_reason, reason, "{token:?}");
    }
    let root = login(&mut auth, "root", "rootpw").await;
    let allowed = refused_watch(channel, Some(&root), "k").await;
    assert!(allowed.created && !allowed.canceled);
}

/// Item 7: a password login of a `--no-password` user gets etcd's own
/// (untranslated) error.
#[tokio::test]
async fn a_no_password_user_cannot_log_in_with_a_password() {
    let (mut auth, _, _node) = clients().await;
    let add = pb::AuthUserAddRequest {
        name: "np".into(),
        options: Some(crate::proto::authpb::UserAddOptions { no_password: true }),
        ..pb::AuthUserAddRequest::default()
    };
    auth.user_add(add).await.unwrap();
    root_and_carol(&mut auth).await;
    let request = pb::AuthenticateRequest {
        name: "np".into(),
        password: "x".into(),
    };
    let refused = auth.authenticate(request).await.unwrap_err();
    assert_eq!(
        (refused.code(), refused.message()),
        (
            Code::Unknown,
            "auth: authentication failed, password was given for no password user"
        )
    );
}

/// Item 8: AuthStatus answers root only while auth is enabled (etcd 3.5
/// applies it as an admin request), and anyone while it is disabled.
#[tokio::test]
async fn auth_status_needs_root_while_enabled() {
    let (mut auth, _, _node) = clients().await;
    auth.auth_status(pb::AuthStatusRequest {}).await.unwrap();
    root_and_carol(&mut auth).await;
    let carol = login(&mut auth, "carol", "carolpw").await;
    let refusals = [
        (
            Some(carol.as_str()),
            Code::PermissionDenied,
            "etcdserver: permission denied",
        ),
        (
            Some("made.up"),
            Code::Unauthenticated,
            "etcdserver: invalid auth token",
        ),
        (
            None,
            Code::InvalidArgument,
            "etcdserver: user name is empty",
        ),
    ];
    for (token, code, message) in refusals {
        let request = match token {
            Some(token) => with_token(pb::AuthStatusRequest {}, token),
            None => tonic::Request::new(pb::AuthStatusRequest {}),
        };
        let refused = auth.auth_status(request).await.unwrap_err();
        assert_eq!((refused.code(), refused.message()), (code, message));
    }
    let root = login(&mut auth, "root", "rootpw").await;
    let status = auth
        .auth_status(with_token(pb::AuthStatusRequest {}, &root))
        .await
        .unwrap()
        .into_inner();
    assert!(status.enabled);
}

/// Item 4: Status, MemberList, LeaseLeases and alarm listing are open to
/// every user but not to anonymous callers (etcd 3.6.9+ `requireAuthInfo`).
#[tokio::test]
async fn status_member_list_and_lease_list_need_a_user() {
    let (mut auth, _, channel, _node) = clients_and_channel().await;
    root_and_carol(&mut auth).await;
    let carol = login(&mut auth, "carol", "carolpw").await;
    let mut maintenance = pb::maintenance_client::MaintenanceClient::new(channel.clone());
    let mut cluster = pb::cluster_client::ClusterClient::new(channel.clone());
    let mut lease = pb::lease_client::LeaseClient::new(channel);
    let empty = (Code::InvalidArgument, "etcdserver: user name is empty");
    let status = maintenance.status(pb::StatusRequest {}).await.unwrap_err();
    assert_eq!((status.code(), status.message()), empty);
    let members = cluster
        .member_list(pb::MemberListRequest::default())
        .await
        .unwrap_err();
    assert_eq!((members.code(), members.message()), empty);
    let leases = lease
        .lease_leases(pb::LeaseLeasesRequest {})
        .await
        .unwrap_err();
    assert_eq!((leases.code(), leases.message()), empty);
    let alarms = maintenance
        .alarm(pb::AlarmRequest::default())
        .await
        .unwrap_err();
    assert_eq!((alarms.code(), alarms.message()), empty);
    maintenance
        .status(with_token(pb::StatusRequest {}, &carol))
        .await
        .unwrap();
    cluster
        .member_list(with_token(pb::MemberListRequest::default(), &carol))
        .await
        .unwrap();
    lease
        .lease_leases(with_token(pb::LeaseLeasesRequest {}, &carol))
        .await
        .unwrap();
    maintenance
        .alarm(with_token(pb::AlarmRequest::default(), &carol))
        .await
        .unwrap();
}
