//! `--auth-token jwt,...` against real etcd 3.4 and keel, compared, with an
//! RSA key pair made by `openssl` at test time: etcdctl's `--user` flow
//! works; the token a login returns is a JWT with etcd's claims
//! (`username`, `revision`, `exp`) verifiable with the public key; a token
//! signed by another key is refused with "etcdserver: invalid auth token";
//! `--bcrypt-cost` and `--auth-token-ttl` are accepted.
#![cfg(not(madsim))]
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::path::Path;
use std::process::Command;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use keel_server::proto::etcdserverpb as pb;
use pb::auth_client::AuthClient;
use pb::kv_client::KvClient;
use support::cluster::{Cluster, Flavor};
use tonic::transport::Channel;

/// Writes an RSA private key and its public key under `dir` as
/// `<name>.key` and `<name>.pub` (PEM), with openssl.
fn rsa_pair(dir: &Path, name: &str) -> (String, String) {
    let key = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    let (key, public) = (key.to_str().unwrap(), public.to_str().unwrap());
    run(&["genrsa", "-out", key, "2048"]);
    run(&["rsa", "-in", key, "-pubout", "-out", public]);
    (key.to_owned(), public.to_owned())
}

fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("token", token.parse().unwrap());
    request
}

fn range(key: &str) -> pb::RangeRequest {
    pb::RangeRequest {
        key: key.as_bytes().to_vec().into(),
        ..pb::RangeRequest::default()
    }
}

/// The claim names of `token` (not verified), sorted.
fn claim_names(token: &str) -> Vec<String> {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.insecure_disable_signature_validation();
    let data = jsonwebtoken::decode::<serde_json::Value>(
        token,
        &DecodingKey::from_secret(b""),
        &validation,
    )
    .unwrap();
    let mut names: Vec<String> = data.claims.as_object().unwrap().keys().cloned().collect();
    names.sort();
    names
}

/// A token for root signed with the key at `key_path`.
fn forged(key_path: &str) -> String {
    let pem = std::fs::read(key_path).unwrap();
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let claims = serde_json::json!({"username": "root", "revision": 2, "exp": exp});
    let key = EncodingKey::from_rsa_pem(&pem).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key).unwrap()
}

fn outcome<T>(result: Result<tonic::Response<T>, tonic::Status>) -> String {
    match result {
        Ok(_) => "ok".to_owned(),
        Err(status) => format!("{:?} {}", status.code(), status.message()),
    }
}

async fn session(flavor: Flavor, dir: &Path) -> Vec<String> {
    let (key, public) = rsa_pair(dir, &format!("{}-signer", flavor.name()));
    let (other_key, _) = rsa_pair(dir, &format!("{}-other", flavor.name()));
    let spec =
        format!("--auth-token=jwt,pub-key={public},priv-key={key},sign-method=RS256,ttl=10m");
    let args = [spec.as_str(), "--bcrypt-cost=4", "--auth-token-ttl=60"];
    let cluster = Cluster::start_with(flavor, 1, &args).unwrap();
    let ctl = cluster.etcdctl();
    let mut seen = Vec::new();
    let commands: [&[&str]; 6] = [
        &["user", "add", "root", "--new-user-password=pw"],
        &["auth", "enable"],
        &["--user", "root:pw", "put", "k", "v"],
        &["--user", "root:pw", "get", "k"],
        &["get", "k"],
        &["--user", "root:bad", "get", "k"],
    ];
    for args in commands {
        let out = ctl.run(args).unwrap();
        let err: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| !l.starts_with("{\"level\""))
            .collect();
        seen.push(format!("{args:?}: {}{}", out.stdout, err.join("\n")));
    }
    let channel = Channel::from_shared(cluster.members()[0].client_url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let login = pb::AuthenticateRequest {
        name: "root".to_owned(),
        password: "pw".to_owned(),
    };
    let token = AuthClient::new(channel.clone())
        .authenticate(login)
        .await
        .unwrap()
        .into_inner()
        .token;
    seen.push(format!("claims: {:?}", claim_names(&token)));
    let mut kv = KvClient::new(channel);
    seen.push(format!(
        "own token: {}",
        outcome(kv.range(with_token(range("k"), &token)).await)
    ));
    let other = forged(&other_key);
    seen.push(format!(
        "other key: {}",
        outcome(kv.range(with_token(range("k"), &other)).await)
    ));
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_tokens_as_in_etcd() {
    if !support::require_etcd("jwt_tokens_as_in_etcd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let etcd = session(Flavor::Etcd, dir.path()).await;
    eprintln!("etcd:\n{}", etcd.join("\n"));
    assert!(
        etcd.last().unwrap().contains("invalid auth token"),
        "{etcd:?}"
    );
    let keel = session(Flavor::Keel, dir.path()).await;
    assert_eq!(keel, etcd);
}
