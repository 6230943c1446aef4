//! What a learner serves: etcd answers only Maintenance.Status and
//! serializable Range on a learner and refuses every other call and every
//! stream with "etcdserver: rpc not supported for learner" (etcd v3.4/v3.5
//! `api/v3rpc/interceptor.go` `isRPCSupportedForLearner`,
//! `rpctypes.ErrGPRCNotSupportedForLearner`, code Unavailable, so clients
//! try another member).

use tonic::Status;

use crate::replica::Replica;

/// etcd's message for a call a learner does not serve.
pub const NOT_SUPPORTED_FOR_LEARNER: &str = "etcdserver: rpc not supported for learner";

/// Refuses the call when this member is a learner.
///
/// Errors: Unavailable "etcdserver: rpc not supported for learner".
pub fn refuse_on_learner<B: Replica>(replica: &B) -> Result<(), Status> {
    match replica.is_learner() {
        true => Err(Status::unavailable(NOT_SUPPORTED_FOR_LEARNER)),
        false => Ok(()),
    }
}
