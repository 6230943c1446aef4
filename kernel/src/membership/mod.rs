//! Cluster membership (etcd `server/etcdserver/api/membership`).
//!
//! * [`Member`]: id, name, peer and client URLs, learner flag; ids derived
//!   as etcd derives them ([`Member::compute_id`]).
//! * [`Cluster`]: the members, the ids removed for good, and the cluster id
//!   ([`cluster_id`], from the initial members). Conf-change entries are
//!   validated and applied here in log order; attribute updates arrive as
//!   normal entries.
//! * [`Cluster::from_initial_cluster`]: bootstrapping from etcd's
//!   `--initial-cluster` and `--initial-cluster-token` flags.
//! * [`Cluster::check_started_quorum`]: etcd's strict reconfiguration
//!   check on started members (a change must leave a started quorum).
//! * [`Cluster::check_invariants`]: member ids and peer URLs are unique,
//!   removed ids stay out.
//! * [`Cluster::conf_change_for`]: a client's [`MembershipRequest`] turned
//!   into the conf change to propose, checked as apply will check it.
//! * [`ConfChangeContext`]: what a conf-change entry's `context` carries
//!   (the member being added or promoted), as etcd's `ConfigChangeContext`.

mod bootstrap;
mod change;
mod cluster;
mod context;
mod error;
mod invariants;
mod member;
mod started_quorum;

pub use bootstrap::{INITIAL_CLUSTER_MEMBERS_MAX, bootstrap_entries, parse_initial_cluster};
pub use change::MembershipRequest;
pub use cluster::{Cluster, ClusterSnapshot, MAX_LEARNERS, cluster_id};
pub use context::ConfChangeContext;
pub use error::MembershipError;
pub use member::Member;
