//! The cluster's invariants, checked whole (for tests and the simulator).
//!
//! * No member has id 0, and each is stored under its own id (so ids are
//!   unique).
//! * No removed id is a member again.
//! * Every member has peer URLs, none empty, and no peer URL belongs to
//!   two members.
//!
//! A member is a learner or a voter by one flag ([`super::Member`]'s
//! `is_learner`), so no member can be both.

use std::collections::BTreeMap;

use crate::invariant::{InvariantViolation, ensure};

use super::Cluster;

const STRUCTURE: &str = "cluster";

impl Cluster {
    /// Checks every rule listed in this module. O(members × peer URLs).
    ///
    /// Errors: the first rule broken, as an [`InvariantViolation`].
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        let mut url_owner: BTreeMap<&str, u64> = BTreeMap::new();
        for (id, member) in &self.members {
            ensure(*id != 0 && member.id == *id, STRUCTURE, || {
                format!("member {} stored under id {id}", member.id)
            })?;
            ensure(!self.removed.contains(id), STRUCTURE, || {
                format!("removed id {id} is a member")
            })?;
            let bad_urls =
                member.peer_urls.is_empty() || member.peer_urls.iter().any(String::is_empty);
            ensure(!bad_urls, STRUCTURE, || {
                format!("member {id} has peer URLs {:?}", member.peer_urls)
            })?;
            for url in &member.peer_urls {
                let owner = *url_owner.entry(url).or_insert(*id);
                ensure(owner == *id, STRUCTURE, || {
                    format!("peer URL {url} used by members {owner} and {id}")
                })?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::Member;
    use super::*;

    fn cluster() -> Cluster {
        let url = |u: &str| vec![u.to_string()];
        let cluster = Cluster::bootstrap(vec![
            Member::new("a", &url("http://a:2380"), "t", None, false),
            Member::new("b", &url("http://b:2380"), "t", None, false),
        ])
        .unwrap();
        assert_eq!(cluster.check_invariants(), Ok(()));
        cluster
    }

    #[test]
    fn a_shared_peer_url_is_reported() {
        let mut c = cluster();
        let ids: Vec<u64> = c.members.keys().copied().collect();
        let url = c.members[&ids[0]].peer_urls[0].clone();
        c.members.get_mut(&ids[1]).unwrap().peer_urls = vec![url.clone()];
        let err = c.check_invariants().err().map(|e| e.detail);
        let want = format!("peer URL {url} used by members {} and {}", ids[0], ids[1]);
        assert_eq!(err, Some(want));
    }

    #[test]
    fn a_removed_member_or_a_misfiled_id_is_reported() {
        let mut c = cluster();
        let id = *c.members.keys().next().unwrap();
        c.removed.insert(id);
        assert!(c.check_invariants().is_err(), "removed id still a member");

        let mut c = cluster();
        let mut member = c.members.remove(&id).unwrap();
        member.id = 0;
        c.members.insert(0, member);
        assert!(c.check_invariants().is_err(), "id 0");
    }

    #[test]
    fn a_member_without_peer_urls_is_reported() {
        let mut c = cluster();
        let id = *c.members.keys().next().unwrap();
        c.members.get_mut(&id).unwrap().peer_urls.clear();
        assert!(c.check_invariants().is_err());
    }
}
