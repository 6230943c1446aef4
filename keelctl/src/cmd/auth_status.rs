//! `auth status` (etcdctl 3.5's command; etcdctl/ctlv3/command/
//! auth_command.go at v3.5.9): calls `Auth.AuthStatus` and prints
//! `Authentication Status: <bool>` and `AuthRevision: <n>` (simple) or the
//! response as JSON (json); fields and table are etcdctl 3.5's
//! `... not supported as output format` (exit 4).
//!
//! etcd-client 0.21 has no method for the RPC, so the request goes through
//! tonic on keelctl's own channel ([`crate::client::channel`]) with the
//! messages of etcd's rpc.proto written out here.

use etcd_client::proto::PbResponseHeader;
use http::uri::PathAndQuery;
use serde_json::Value;
use tonic::metadata::MetadataValue;

use crate::cli::GlobalArgs;
use crate::client::{channel, connect};
use crate::error::CtlError;
use crate::output::json::{self, Object};
use crate::output::{Format, Printer, emit};

/// `etcdserverpb.AuthStatusRequest`: no fields.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthStatusRequest {}

/// `etcdserverpb.AuthStatusResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthStatusResponse {
    /// The response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<PbResponseHeader>,
    /// Whether authentication is enabled.
    #[prost(bool, tag = "2")]
    pub enabled: bool,
    /// The revision of the auth store.
    #[prost(uint64, tag = "3")]
    pub auth_revision: u64,
}

/// The RPC's gRPC path.
const AUTH_STATUS_PATH: &str = "/etcdserverpb.Auth/AuthStatus";

/// Runs `auth status`.
///
/// # Errors
/// Arguments (exit 128), an unsupported format (exit 4), connection
/// errors (exit 2), the server's refusal (exit 1).
pub async fn run(global: &GlobalArgs, args: &[String]) -> Result<(), CtlError> {
    if !args.is_empty() {
        return Err(CtlError::bad_args(
            "auth status command does not accept any arguments",
        ));
    }
    let printer = super::printer(global)?;
    let ctl = connect(global).await?;
    let token = match &ctl.credentials {
        Some((user, password)) => {
            let mut auth = ctl.client.auth_client();
            let response = ctl
                .call(auth.authenticate(user.clone(), password.clone()))
                .await?;
            Some(response.0.token)
        }
        None => None,
    };
    let channel = channel::connect(global).await?;
    let response = crate::client::with_timeout(ctl.command_timeout, call(channel, token)).await?;
    print(printer, &response)
}

async fn call(
    channel: tonic::transport::Channel,
    token: Option<String>,
) -> Result<AuthStatusResponse, etcd_client::Error> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut request = tonic::Request::new(AuthStatusRequest {});
    if let Some(token) = token {
        let value = MetadataValue::try_from(token.as_str())
            .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
        request.metadata_mut().insert("token", value);
    }
    let codec = tonic_prost::ProstCodec::<AuthStatusRequest, AuthStatusResponse>::default();
    let path = PathAndQuery::from_static(AUTH_STATUS_PATH);
    let response = grpc.unary(request, path, codec).await?;
    Ok(response.into_inner())
}

/// The text etcdctl 3.5 prints for `response` in `printer`'s format.
///
/// # Errors
/// fields and table: `... not supported as output format` (exit 4).
pub fn text(printer: Printer, response: &AuthStatusResponse) -> Result<String, CtlError> {
    match printer.format {
        Format::Simple => Ok(format!(
            "Authentication Status: {}\nAuthRevision: {}\n",
            response.enabled, response.auth_revision
        )),
        Format::Json => Ok(json::line(&json_value(response))),
        Format::Fields | Format::Table => Err(printer.format.unsupported()),
    }
}

fn print(printer: Printer, response: &AuthStatusResponse) -> Result<(), CtlError> {
    emit(&text(printer, response)?);
    Ok(())
}

/// `pb.AuthStatusResponse` as `encoding/json` prints it (every field
/// `omitempty`; `authRevision` is the field's json tag).
fn json_value(response: &AuthStatusResponse) -> Value {
    Object::new()
        .object("header", json::header(response.header.as_ref()))
        .flag("enabled", response.enabled)
        .uint("authRevision", response.auth_revision)
        .value()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn printer(format: Format) -> Printer {
        Printer {
            format,
            hex: false,
            value_only: false,
        }
    }

    fn response(enabled: bool, auth_revision: u64) -> AuthStatusResponse {
        AuthStatusResponse {
            header: Some(PbResponseHeader {
                cluster_id: 14841639068965178418,
                member_id: 10276657743932975437,
                revision: 1,
                raft_term: 2,
            }),
            enabled,
            auth_revision,
        }
    }

    #[test]
    fn simple_is_etcdctl_35s_two_lines() {
        let text = text(printer(Format::Simple), &response(true, 3));
        assert_eq!(
            text,
            Ok("Authentication Status: true\nAuthRevision: 3\n".to_owned())
        );
    }

    #[test]
    fn json_leaves_out_zero_fields() {
        let on = text(printer(Format::Json), &response(true, 3));
        assert_eq!(
            on,
            Ok("{\"header\":{\"cluster_id\":14841639068965178418,\"member_id\":10276657743932975437,\"revision\":1,\"raft_term\":2},\"enabled\":true,\"authRevision\":3}\n".to_owned())
        );
        let off = text(printer(Format::Json), &response(false, 0));
        assert_eq!(
            off,
            Ok("{\"header\":{\"cluster_id\":14841639068965178418,\"member_id\":10276657743932975437,\"revision\":1,\"raft_term\":2}}\n".to_owned())
        );
    }

    #[test]
    fn fields_and_table_are_unsupported() {
        for format in [Format::Fields, Format::Table] {
            let error = text(printer(format), &response(true, 1));
            assert_eq!(
                error,
                Err(CtlError::bad_feature(format!(
                    "{} not supported as output format",
                    format.name()
                )))
            );
        }
    }
}
