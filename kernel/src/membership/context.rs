//! The state machine's payload in a conf change's `context`.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{Member, MembershipError};

/// What a conf-change entry carries besides the Raft change (etcd
/// `membership.ConfigChangeContext`): the attributes of each member being
/// added, and whether an `AddNode` promotes an existing learner.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfChangeContext {
    /// The members being added (matched to changes by id); may be empty
    /// for removals and promotions.
    pub members: Vec<Member>,
    /// True when `AddNode` promotes a learner to voter.
    pub is_promote: bool,
}

impl ConfChangeContext {
    /// Encodes the context (postcard) for `ConfChange::context`.
    pub fn encode(&self) -> Bytes {
        Bytes::from(postcard::to_stdvec(self).unwrap_or_default())
    }

    /// Decodes a context written by [`ConfChangeContext::encode`]; empty
    /// bytes give the default (no members, not a promotion).
    ///
    /// Errors: undecodable or trailing bytes →
    /// [`MembershipError::InvalidContext`].
    pub fn decode(data: &[u8]) -> Result<ConfChangeContext, MembershipError> {
        if data.is_empty() {
            return Ok(ConfChangeContext::default());
        }
        match postcard::take_from_bytes(data) {
            Ok((context, [])) => Ok(context),
            _ => Err(MembershipError::InvalidContext),
        }
    }

    /// The member with `id` in this context.
    pub fn member(&self, id: u64) -> Option<&Member> {
        self.members.iter().find(|member| member.id == id)
    }
}
