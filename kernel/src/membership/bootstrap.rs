//! Bootstrapping from etcd's `--initial-cluster` flag
//! (`name1=url1,name1=url2,name2=url3`; etcd `types.NewURLsMap` and
//! `membership.NewClusterFromURLsMap`), so the same flags give the same
//! member and cluster ids as etcd.

use std::collections::BTreeMap;

use super::{Cluster, ConfChangeContext, Member, MembershipError};
use crate::raft::{ConfChange, ConfChangeSingle, ConfChangeType, Entry, EntryType};

/// Most members an `--initial-cluster` value may name.
pub const INITIAL_CLUSTER_MEMBERS_MAX: usize = 1024;

/// Parses an `--initial-cluster` value into each member's peer URLs (a name
/// may repeat, once per URL).
///
/// Errors: an entry without `=`, an empty name or URL, a URL without
/// `scheme://`, or more than [`INITIAL_CLUSTER_MEMBERS_MAX`] members →
/// [`MembershipError::BadUrls`].
pub fn parse_initial_cluster(spec: &str) -> Result<BTreeMap<String, Vec<String>>, MembershipError> {
    let mut members: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in spec
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
    {
        let (name, url) = entry.split_once('=').ok_or(MembershipError::BadUrls)?;
        let (name, url) = (name.trim(), url.trim());
        if name.is_empty() || !url.contains("://") || url.ends_with("://") {
            return Err(MembershipError::BadUrls);
        }
        members
            .entry(name.to_string())
            .or_default()
            .push(url.to_string());
        if members.len() > INITIAL_CLUSTER_MEMBERS_MAX {
            return Err(MembershipError::BadUrls);
        }
    }
    if members.is_empty() {
        return Err(MembershipError::BadUrls);
    }
    Ok(members)
}

impl Cluster {
    /// The cluster an etcd started with `--initial-cluster=spec` and
    /// `--initial-cluster-token=cluster_token` would form: member ids from
    /// each member's peer URLs and the token, cluster id from the ids.
    ///
    /// Errors: see [`parse_initial_cluster`] and [`Cluster::bootstrap`].
    pub fn from_initial_cluster(
        spec: &str,
        cluster_token: &str,
    ) -> Result<Cluster, MembershipError> {
        let members = parse_initial_cluster(spec)?
            .into_iter()
            .map(|(name, urls)| Member::new(&name, &urls, cluster_token, None, false))
            .collect();
        Cluster::bootstrap(members)
    }
}

/// The log a new cluster starts with, as etcd writes it at bootstrap and at
/// `snapshot restore`: one `AddNode` conf-change entry per member (in the
/// order given, normally ascending id), term 1, indexes from 1, each
/// carrying the member's attributes in its context. Every initial member
/// writes the same entries, so their logs match.
pub fn bootstrap_entries(members: &[Member]) -> Vec<Entry> {
    members
        .iter()
        .enumerate()
        .map(|(i, member)| {
            let change = ConfChange {
                changes: vec![ConfChangeSingle {
                    change_type: ConfChangeType::AddNode,
                    node_id: member.id,
                }],
                context: ConfChangeContext {
                    members: vec![member.clone()],
                    is_promote: false,
                }
                .encode(),
            };
            Entry {
                term: 1,
                index: i as u64 + 1,
                entry_type: EntryType::ConfChange,
                data: change.encode(),
            }
        })
        .collect()
}
