//! The Auth service (etcd `etcdserverpb.Auth`): enable/disable/status,
//! Authenticate, and user and role management.
//!
//! Passwords are hashed with bcrypt here, before proposing (etcd does the
//! same so that every member stores the same hash). A login checks the
//! password against the applied state first, then proposes the login so
//! every member learns the token (etcd simple tokens).

use keel_kernel::apply::{AuthRequest, Request, Response};
use keel_kernel::auth::{AuthError, AuthInfo, MemberCall, hash_password};
use rand::Rng;
use rand::distr::Alphanumeric;
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};

use super::header::{current, header};
use super::status::{apply_error, auth_error};
use super::{convert, propose, request_auth, unexpected};
use crate::proto::etcdserverpb as pb;
use crate::replica::Replica;

/// bcrypt cost of new password hashes (etcd `--bcrypt-cost` default).
pub const BCRYPT_COST: u32 = 10;

/// Length of the random part of a simple token (etcd: 16 letters).
const TOKEN_RANDOM_LEN: usize = 16;

/// The Auth service over a replica.
#[derive(Clone, Debug)]
pub struct AuthService<B> {
    replica: B,
}

/// A bcrypt hash of `password` with a fresh random salt.
///
/// Errors: bcrypt refused the input → Internal "etcdserver: failed to hash
/// password".
pub fn new_password_hash(password: &str) -> Result<String, Status> {
    new_password_hash_with_cost(password, BCRYPT_COST)
}

/// As [`new_password_hash`] at bcrypt `cost` (`--bcrypt-cost`).
///
/// Errors: as [`new_password_hash`].
pub fn new_password_hash_with_cost(password: &str, cost: u32) -> Result<String, Status> {
    let salt: [u8; 16] = rand::rng().random();
    hash_password(password, cost, salt).map_err(auth_error)
}

/// The hash to store for a user: none for a `no_password` user, the
/// client's own bcrypt hash if it sent one (etcd 3.5 clients may), else a
/// fresh hash of the password.
/// Fresh hashes use bcrypt `cost` (`--bcrypt-cost`).
fn password_hash_with_cost(
    password: &str,
    hashed_password: &str,
    no_password: bool,
    cost: u32,
) -> Result<Option<String>, Status> {
    if no_password {
        return Ok(None);
    }
    if !hashed_password.is_empty() {
        return Ok(Some(hashed_password.to_string()));
    }
    new_password_hash_with_cost(password, cost).map(Some)
}

impl<B: Replica> AuthService<B> {
    /// An Auth service over `replica`.
    pub fn new(replica: B) -> AuthService<B> {
        AuthService { replica }
    }

    /// Proposes an auth request for the caller of `request`; returns the
    /// answer and the response header.
    async fn run<T>(
        &self,
        request: &GrpcRequest<T>,
        auth_request: AuthRequest,
    ) -> Result<(Response, Option<pb::ResponseHeader>), Status> {
        let auth = request_auth(&self.replica, request)?;
        let (response, revision) =
            propose(&self.replica, Request::Auth(auth_request), auth).await?;
        Ok((response, header(&self.replica, revision)))
    }

    /// Like [`AuthService::run`] for requests whose answer is empty.
    async fn run_done<T>(
        &self,
        request: &GrpcRequest<T>,
        auth_request: AuthRequest,
    ) -> Result<Option<pb::ResponseHeader>, Status> {
        match self.run(request, auth_request).await? {
            (Response::Done, header) => Ok(header),
            (other, _) => Err(unexpected(&other)),
        }
    }
}

#[tonic::async_trait]
impl<B: Replica> pb::auth_server::Auth for AuthService<B> {
    async fn auth_enable(
        &self,
        request: GrpcRequest<pb::AuthEnableRequest>,
    ) -> Result<GrpcResponse<pb::AuthEnableResponse>, Status> {
        let header = self.run_done(&request, AuthRequest::Enable).await?;
        Ok(GrpcResponse::new(pb::AuthEnableResponse { header }))
    }

    async fn auth_disable(
        &self,
        request: GrpcRequest<pb::AuthDisableRequest>,
    ) -> Result<GrpcResponse<pb::AuthDisableResponse>, Status> {
        let header = self.run_done(&request, AuthRequest::Disable).await?;
        Ok(GrpcResponse::new(pb::AuthDisableResponse { header }))
    }

    /// Answers root only while auth is enabled (etcd 3.5/3.6 apply
    /// AuthStatus through `needAdminPermission`); a bad token is refused.
    async fn auth_status(
        &self,
        request: GrpcRequest<pb::AuthStatusRequest>,
    ) -> Result<GrpcResponse<pb::AuthStatusResponse>, Status> {
        let auth = request_auth(&self.replica, &request)?;
        let (enabled, auth_revision) = self
            .replica
            .with_state(|state| {
                state.authorize_call(&auth, MemberCall::AuthStatus)?;
                Ok((state.auth().is_enabled(), state.auth().revision()))
            })
            .map_err(|err| apply_error(&err))?;
        Ok(GrpcResponse::new(pb::AuthStatusResponse {
            header: current(&self.replica),
            enabled,
            auth_revision,
        }))
    }

    async fn authenticate(
        &self,
        request: GrpcRequest<pb::AuthenticateRequest>,
    ) -> Result<GrpcResponse<pb::AuthenticateResponse>, Status> {
        let req = request.into_inner();
        // bcrypt runs after the state is released, so a login never holds
        // up apply for the length of a password hash.
        let checked_revision = self
            .replica
            .with_state(|state| state.login_check(&req.name))
            .and_then(|check| check.verify(&req.password))
            .map_err(auth_error)?;
        let token_random: String = rand::rng()
            .sample_iter(Alphanumeric)
            .take(TOKEN_RANDOM_LEN)
            .map(char::from)
            .collect();
        let name = req.name.clone();
        let login = AuthRequest::Authenticate {
            name: req.name,
            checked_revision,
            token_random,
        };
        let answer = propose(&self.replica, Request::Auth(login), AuthInfo::default()).await?;
        match answer {
            (Response::Authenticate { token }, revision) => {
                // With JWT the applied login is answered with a signed
                // token instead (etcd `tokenJWT.assign`).
                let token = match self.replica.jwt() {
                    Some(jwt) => jwt.sign(&name, checked_revision).map_err(auth_error)?,
                    None => token,
                };
                Ok(GrpcResponse::new(pb::AuthenticateResponse {
                    header: header(&self.replica, revision),
                    token,
                }))
            }
            (other, _) => Err(unexpected(&other)),
        }
    }

    async fn user_add(
        &self,
        request: GrpcRequest<pb::AuthUserAddRequest>,
    ) -> Result<GrpcResponse<pb::AuthUserAddResponse>, Status> {
        let req = request.get_ref();
        if req.name.is_empty() {
            return Err(auth_error(AuthError::UserEmpty));
        }
        let no_password = req.options.as_ref().is_some_and(|o| o.no_password);
        let cost = self.replica.bcrypt_cost();
        let password_hash =
            password_hash_with_cost(&req.password, &req.hashed_password, no_password, cost)?;
        let add = AuthRequest::UserAdd {
            name: req.name.clone(),
            password_hash,
        };
        let header = self.run_done(&request, add).await?;
        Ok(GrpcResponse::new(pb::AuthUserAddResponse { header }))
    }

    async fn user_get(
        &self,
        request: GrpcRequest<pb::AuthUserGetRequest>,
    ) -> Result<GrpcResponse<pb::AuthUserGetResponse>, Status> {
        let name = request.get_ref().name.clone();
        match self.run(&request, AuthRequest::UserGet { name }).await? {
            (Response::UserGet { roles }, header) => {
                Ok(GrpcResponse::new(pb::AuthUserGetResponse { header, roles }))
            }
            (other, _) => Err(unexpected(&other)),
        }
    }

    async fn user_list(
        &self,
        request: GrpcRequest<pb::AuthUserListRequest>,
    ) -> Result<GrpcResponse<pb::AuthUserListResponse>, Status> {
        match self.run(&request, AuthRequest::UserList).await? {
            (Response::UserList(users), header) => {
                Ok(GrpcResponse::new(pb::AuthUserListResponse {
                    header,
                    users,
                }))
            }
            (other, _) => Err(unexpected(&other)),
        }
    }

    async fn user_delete(
        &self,
        request: GrpcRequest<pb::AuthUserDeleteRequest>,
    ) -> Result<GrpcResponse<pb::AuthUserDeleteResponse>, Status> {
        let name = request.get_ref().name.clone();
        let header = self
            .run_done(&request, AuthRequest::UserDelete { name })
            .await?;
        Ok(GrpcResponse::new(pb::AuthUserDeleteResponse { header }))
    }

    async fn user_change_password(
        &self,
        request: GrpcRequest<pb::AuthUserChangePasswordRequest>,
    ) -> Result<GrpcResponse<pb::AuthUserChangePasswordResponse>, Status> {
        let req = request.get_ref();
        let change = AuthRequest::UserChangePassword {
            name: req.name.clone(),
            password_hash: password_hash_with_cost(
                &req.password,
                &req.hashed_password,
                false,
                self.replica.bcrypt_cost(),
            )?,
        };
        let header = self.run_done(&request, change).await?;
        Ok(GrpcResponse::new(pb::AuthUserChangePasswordResponse {
            header,
        }))
    }

    async fn user_grant_role(
        &self,
        request: GrpcRequest<pb::AuthUserGrantRoleRequest>,
    ) -> Result<GrpcResponse<pb::AuthUserGrantRoleResponse>, Status> {
        let grant = AuthRequest::UserGrantRole {
            user: request.get_ref().user.clone(),
            role: request.get_ref().role.clone(),
        };
        let header = self.run_done(&request, grant).await?;
        Ok(GrpcResponse::new(pb::AuthUserGrantRoleResponse { header }))
    }

    async fn user_revoke_role(
        &self,
        request: GrpcRequest<pb::AuthUserRevokeRoleRequest>,
    ) -> Result<GrpcResponse<pb::AuthUserRevokeRoleResponse>, Status> {
        let revoke = AuthRequest::UserRevokeRole {
            user: request.get_ref().name.clone(),
            role: request.get_ref().role.clone(),
        };
        let header = self.run_done(&request, revoke).await?;
        Ok(GrpcResponse::new(pb::AuthUserRevokeRoleResponse { header }))
    }

    async fn role_add(
        &self,
        request: GrpcRequest<pb::AuthRoleAddRequest>,
    ) -> Result<GrpcResponse<pb::AuthRoleAddResponse>, Status> {
        let name = request.get_ref().name.clone();
        let header = self
            .run_done(&request, AuthRequest::RoleAdd { name })
            .await?;
        Ok(GrpcResponse::new(pb::AuthRoleAddResponse { header }))
    }

    async fn role_get(
        &self,
        request: GrpcRequest<pb::AuthRoleGetRequest>,
    ) -> Result<GrpcResponse<pb::AuthRoleGetResponse>, Status> {
        let name = request.get_ref().role.clone();
        match self.run(&request, AuthRequest::RoleGet { name }).await? {
            (Response::RoleGet(perms), header) => Ok(GrpcResponse::new(pb::AuthRoleGetResponse {
                header,
                perm: perms.into_iter().map(convert::permission_to_wire).collect(),
            })),
            (other, _) => Err(unexpected(&other)),
        }
    }

    async fn role_list(
        &self,
        request: GrpcRequest<pb::AuthRoleListRequest>,
    ) -> Result<GrpcResponse<pb::AuthRoleListResponse>, Status> {
        match self.run(&request, AuthRequest::RoleList).await? {
            (Response::RoleList(roles), header) => {
                Ok(GrpcResponse::new(pb::AuthRoleListResponse {
                    header,
                    roles,
                }))
            }
            (other, _) => Err(unexpected(&other)),
        }
    }

    async fn role_delete(
        &self,
        request: GrpcRequest<pb::AuthRoleDeleteRequest>,
    ) -> Result<GrpcResponse<pb::AuthRoleDeleteResponse>, Status> {
        let name = request.get_ref().role.clone();
        let header = self
            .run_done(&request, AuthRequest::RoleDelete { name })
            .await?;
        Ok(GrpcResponse::new(pb::AuthRoleDeleteResponse { header }))
    }

    async fn role_grant_permission(
        &self,
        request: GrpcRequest<pb::AuthRoleGrantPermissionRequest>,
    ) -> Result<GrpcResponse<pb::AuthRoleGrantPermissionResponse>, Status> {
        let Some(perm) = &request.get_ref().perm else {
            return Err(Status::invalid_argument("etcdserver: permission not given"));
        };
        let grant = AuthRequest::RoleGrantPermission {
            name: request.get_ref().name.clone(),
            permission: convert::permission(perm),
        };
        let header = self.run_done(&request, grant).await?;
        Ok(GrpcResponse::new(pb::AuthRoleGrantPermissionResponse {
            header,
        }))
    }

    async fn role_revoke_permission(
        &self,
        request: GrpcRequest<pb::AuthRoleRevokePermissionRequest>,
    ) -> Result<GrpcResponse<pb::AuthRoleRevokePermissionResponse>, Status> {
        let req = request.get_ref();
        let revoke = AuthRequest::RoleRevokePermission {
            name: req.role.clone(),
            key: req.key.to_vec(),
            range_end: req.range_end.to_vec(),
        };
        let header = self.run_done(&request, revoke).await?;
        Ok(GrpcResponse::new(pb::AuthRoleRevokePermissionResponse {
            header,
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn password_hash(pw: &str, hashed: &str, no_password: bool) -> Result<Option<String>, Status> {
        password_hash_with_cost(pw, hashed, no_password, BCRYPT_COST)
    }

    #[test]
    fn password_hash_choices() {
        assert_eq!(password_hash("pw", "", true).unwrap(), None);
        assert_eq!(
            password_hash("pw", "$2b$10$given", false).unwrap(),
            Some("$2b$10$given".to_string())
        );
        let fresh = password_hash("pw", "", false).unwrap().unwrap();
        assert!(fresh.starts_with("$2"));
        let again = password_hash("pw", "", false).unwrap().unwrap();
        assert_ne!(fresh, again, "each hash gets its own salt");
    }
}
