//! Membership: etcd-compatible member and cluster ids, conf-change
//! validation and application, snapshot round-trip; each scenario ends by
//! checking `Cluster::check_invariants`.

#![allow(clippy::unwrap_used)] // tests may unwrap (project guide)

use bytes::Bytes;
use keel_kernel::membership::{
    Cluster, ConfChangeContext, MAX_LEARNERS, Member, MembershipError, cluster_id,
    parse_initial_cluster,
};
use keel_kernel::raft::{ConfChange, ConfChangeSingle, ConfChangeType};

fn urls(list: &[&str]) -> Vec<String> {
    list.iter().map(|url| url.to_string()).collect()
}

fn change(change_type: ConfChangeType, node_id: u64, context: ConfChangeContext) -> ConfChange {
    ConfChange {
        changes: vec![ConfChangeSingle {
            change_type,
            node_id,
        }],
        context: context.encode(),
    }
}

fn add(member: &Member) -> ConfChange {
    let change_type = if member.is_learner {
        ConfChangeType::AddLearnerNode
    } else {
        ConfChangeType::AddNode
    };
    change(
        change_type,
        member.id,
        ConfChangeContext {
            members: vec![member.clone()],
            is_promote: false,
        },
    )
}

fn three_members() -> Cluster {
    let members = ["a", "b", "c"]
        .iter()
        .map(|name| {
            let peer = format!("http://{name}:2380");
            Member::new(name, &[peer], "tok", None, false)
        })
        .collect();
    Cluster::bootstrap(members).unwrap()
}

#[test]
fn default_etcd_member_and_cluster_ids() {
    // etcd with default flags logs member 8e9e05c52164694d in cluster
    // cdf818194e3a8c32 (peer URL http://localhost:2380, token etcd-cluster).
    let member = Member::new(
        "default",
        &urls(&["http://localhost:2380"]),
        "etcd-cluster",
        None,
        false,
    );
    assert_eq!(format!("{:x}", member.id), "8e9e05c52164694d");
    let cluster = Cluster::bootstrap(vec![member]).unwrap();
    assert_eq!(format!("{:x}", cluster.cluster_id()), "cdf818194e3a8c32");
}

#[test]
fn ids_depend_on_sorted_urls_token_and_time() {
    let a = Member::compute_id(&urls(&["http://b:1", "http://a:1"]), "t", None);
    let b = Member::compute_id(&urls(&["http://a:1", "http://b:1"]), "t", None);
    assert_eq!(a, b);
    assert_ne!(
        a,
        Member::compute_id(&urls(&["http://a:1", "http://b:1"]), "u", None)
    );
    assert_ne!(
        a,
        Member::compute_id(&urls(&["http://a:1", "http://b:1"]), "t", Some(1))
    );
    assert_eq!(cluster_id(&[3, 1, 2]), cluster_id(&[1, 2, 3]));
    assert_ne!(cluster_id(&[1, 2]), cluster_id(&[1, 2, 3]));
}

#[test]
fn add_promote_remove_with_etcd_errors() {
    let mut cluster = three_members();
    let id_before = cluster.cluster_id();
    let learner = Member::new("d", &urls(&["http://d:2380"]), "tok", Some(100), true);
    cluster.apply_conf_change(&add(&learner)).unwrap();
    assert!(cluster.member(learner.id).unwrap().is_learner);
    assert_eq!(
        cluster.cluster_id(),
        id_before,
        "the cluster id never changes"
    );
    assert_eq!(
        cluster.apply_conf_change(&add(&learner)),
        Err(MembershipError::IdExists)
    );
    let second = Member::new("e", &urls(&["http://e:2380"]), "tok", Some(100), true);
    assert_eq!(MAX_LEARNERS, 1);
    assert_eq!(
        cluster.apply_conf_change(&add(&second)),
        Err(MembershipError::TooManyLearners)
    );
    let same_url = Member {
        id: 77,
        ..Member::new("f", &urls(&["http://a:2380"]), "x", None, false)
    };
    assert_eq!(
        cluster.apply_conf_change(&add(&same_url)),
        Err(MembershipError::PeerUrlExists)
    );
    assert_eq!(
        MembershipError::PeerUrlExists.to_string(),
        "etcdserver: Peer URLs already exists"
    );

    let promote = ConfChangeContext {
        members: vec![],
        is_promote: true,
    };
    let voter = cluster.members().iter().find(|m| !m.is_learner).unwrap().id;
    let err = cluster.apply_conf_change(&change(ConfChangeType::AddNode, voter, promote.clone()));
    assert_eq!(err, Err(MembershipError::NotLearner));
    assert_eq!(
        err.unwrap_err().to_string(),
        "etcdserver: can only promote a learner member"
    );
    cluster
        .apply_conf_change(&change(
            ConfChangeType::AddNode,
            learner.id,
            promote.clone(),
        ))
        .unwrap();
    assert!(!cluster.member(learner.id).unwrap().is_learner);

    let remove = change(
        ConfChangeType::RemoveNode,
        learner.id,
        ConfChangeContext::default(),
    );
    cluster.apply_conf_change(&remove).unwrap();
    assert!(cluster.is_removed(learner.id));
    assert_eq!(
        cluster.apply_conf_change(&remove),
        Err(MembershipError::IdRemoved)
    );
    assert_eq!(
        cluster.apply_conf_change(&add(&learner)),
        Err(MembershipError::IdRemoved)
    );
    let unknown = change(
        ConfChangeType::RemoveNode,
        12345,
        ConfChangeContext::default(),
    );
    assert_eq!(
        cluster.apply_conf_change(&unknown),
        Err(MembershipError::NotFound)
    );
    assert_eq!(
        MembershipError::NotFound.to_string(),
        "etcdserver: member not found"
    );
    assert_eq!(cluster.check_invariants(), Ok(()));
}

#[test]
fn conf_change_is_all_or_nothing_and_context_is_checked() {
    let mut cluster = three_members();
    let before = cluster.clone();
    let new = Member::new("n", &urls(&["http://n:2380"]), "tok", Some(1), false);
    let mut both = add(&new);
    both.changes.push(ConfChangeSingle {
        change_type: ConfChangeType::RemoveNode,
        node_id: 999,
    });
    assert_eq!(
        cluster.apply_conf_change(&both),
        Err(MembershipError::NotFound)
    );
    assert_eq!(cluster, before, "nothing applied");
    let garbage = ConfChange {
        changes: vec![ConfChangeSingle {
            change_type: ConfChangeType::AddNode,
            node_id: 5,
        }],
        context: Bytes::from_static(&[0xff, 0xff, 0xff]),
    };
    assert_eq!(
        cluster.apply_conf_change(&garbage),
        Err(MembershipError::InvalidContext)
    );
    let leave_joint = ConfChange::default();
    cluster.apply_conf_change(&leave_joint).unwrap();
    assert_eq!(cluster, before);
    assert_eq!(cluster.validate_conf_change(&add(&new)), Ok(()));
    assert_eq!(cluster, before, "validation changes nothing");
    assert_eq!(cluster.check_invariants(), Ok(()));
}

#[test]
fn attributes_and_peer_url_updates() {
    let mut cluster = three_members();
    let id = cluster.members()[0].id;
    cluster
        .set_attributes(id, "renamed", &urls(&["http://c1:2379"]))
        .unwrap();
    assert_eq!(cluster.member(id).unwrap().name, "renamed");
    assert_eq!(
        cluster.set_attributes(1, "x", &[]),
        Err(MembershipError::NotFound)
    );
    let other_url = cluster.members()[1].peer_urls.clone();
    assert_eq!(
        cluster.update_peer_urls(id, &other_url),
        Err(MembershipError::PeerUrlExists)
    );
    assert_eq!(
        cluster.update_peer_urls(id, &[]),
        Err(MembershipError::BadUrls)
    );
    cluster
        .update_peer_urls(id, &urls(&["http://z:2380", "http://y:2380"]))
        .unwrap();
    assert_eq!(
        cluster.member(id).unwrap().peer_urls,
        urls(&["http://y:2380", "http://z:2380"])
    );
    let restored = Cluster::restore(cluster.snapshot()).unwrap();
    assert_eq!(restored, cluster);
    assert_eq!(restored.check_invariants(), Ok(()));
}

#[test]
fn initial_cluster_flag_gives_etcd_ids() {
    let cluster =
        Cluster::from_initial_cluster("default=http://localhost:2380", "etcd-cluster").unwrap();
    assert_eq!(format!("{:x}", cluster.cluster_id()), "cdf818194e3a8c32");
    let spec = "b=http://b:2380, a=http://a2:2380,a=http://a1:2380,c=http://c:2380";
    let parsed = parse_initial_cluster(spec).unwrap();
    assert_eq!(parsed["a"], urls(&["http://a2:2380", "http://a1:2380"]));
    let cluster = Cluster::from_initial_cluster(spec, "tok").unwrap();
    assert_eq!(cluster.members().len(), 3);
    let a = Member::new(
        "a",
        &urls(&["http://a1:2380", "http://a2:2380"]),
        "tok",
        None,
        false,
    );
    assert_eq!(cluster.member(a.id).unwrap().peer_urls, a.peer_urls);
    let ids: Vec<u64> = cluster.members().iter().map(|m| m.id).collect();
    assert_eq!(cluster.cluster_id(), cluster_id(&ids));
    for bad in [
        "",
        "a",
        "=http://x:1",
        "a=",
        "a=localhost:2380",
        "a=http://",
        "a=http://x:1,b=http://x:1",
    ] {
        assert!(Cluster::from_initial_cluster(bad, "t").is_err(), "{bad:?}");
    }
}
