//! Network partitions as sets of cut one-way links between members: two
//! sides, a bridge, a ring, one-way cuts. Each shape is drawn from the
//! seed (madsim's deterministic RNG) and turned into the directed links the
//! nemesis clogs, so healing unclogs exactly those.

use std::collections::BTreeSet;
use std::fmt;

use madsim::rand::Rng;
use madsim::rand::seq::SliceRandom;

/// A directed link from one member (by index) to another.
pub type Link = (u8, u8);

/// A partition's shape, as the event log prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// `side` and every other member cannot reach each other, both ways.
    Sides {
        /// One side; the other side is every other member.
        side: Vec<u8>,
    },
    /// Two sides that reach each other only through `bridge`, which hears
    /// both (Jepsen's "bridge"): each side may see a majority.
    Bridge {
        /// One side, without the bridge.
        side: Vec<u8>,
        /// The member linked to both sides.
        bridge: u8,
    },
    /// Each member reaches only its two neighbours in `order` (a
    /// non-transitive partition: every member sees a majority in a
    /// 5-member ring, but no two majorities are the same).
    Ring {
        /// The members around the ring.
        order: Vec<u8>,
    },
    /// Messages from `from` to every other member are dropped; the other
    /// direction works.
    OneWayFrom {
        /// The member that cannot send.
        from: u8,
    },
    /// Messages from every other member to `to` are dropped; `to` still
    /// sends.
    OneWayTo {
        /// The member that cannot receive.
        to: u8,
    },
}

impl Shape {
    /// The directed links this shape cuts in a cluster of `size` members.
    pub fn cut_links(&self, size: u8) -> BTreeSet<Link> {
        let pairs = (0..size).flat_map(|a| (0..size).map(move |b| (a, b)));
        pairs.filter(|&(a, b)| a != b && self.cuts(a, b)).collect()
    }

    /// The shape with member `i` renamed `hosts[i]`: shapes are drawn
    /// over positions `0..hosts.len()` in the list of current members and
    /// cut the links of the hosts they name. Hosts the shape does not name
    /// (spare or removed ones) are on the far side of a split and cut off
    /// in a ring. Positions past `hosts` keep their number.
    pub fn renamed(&self, hosts: &[u8]) -> Shape {
        let name = |m: u8| hosts.get(usize::from(m)).copied().unwrap_or(m);
        let names = |ms: &[u8]| {
            let mut named: Vec<u8> = ms.iter().map(|&m| name(m)).collect();
            if !matches!(self, Shape::Ring { .. }) {
                named.sort_unstable();
            }
            named
        };
        match self {
            Shape::Sides { side } => Shape::Sides { side: names(side) },
            Shape::Bridge { side, bridge } => Shape::Bridge {
                side: names(side),
                bridge: name(*bridge),
            },
            Shape::Ring { order } => Shape::Ring {
                order: names(order),
            },
            Shape::OneWayFrom { from } => Shape::OneWayFrom { from: name(*from) },
            Shape::OneWayTo { to } => Shape::OneWayTo { to: name(*to) },
        }
    }

    /// Whether the link from `a` to `b` is cut.
    fn cuts(&self, a: u8, b: u8) -> bool {
        match self {
            Shape::Sides { side } => side.contains(&a) != side.contains(&b),
            Shape::Bridge { side, bridge } => {
                a != *bridge && b != *bridge && side.contains(&a) != side.contains(&b)
            }
            Shape::Ring { order } => !ring_neighbours(order, a, b),
            Shape::OneWayFrom { from } => a == *from,
            Shape::OneWayTo { to } => b == *to,
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Whether `a` and `b` are next to each other around `order`.
fn ring_neighbours(order: &[u8], a: u8, b: u8) -> bool {
    let n = order.len();
    let (Some(i), Some(j)) = (
        order.iter().position(|&m| m == a),
        order.iter().position(|&m| m == b),
    ) else {
        return false;
    };
    (i + 1) % n == j || (j + 1) % n == i
}

/// `size` members in a random order.
fn shuffled(size: u8) -> Vec<u8> {
    let mut members: Vec<u8> = (0..size).collect();
    members.shuffle(&mut madsim::rand::thread_rng());
    members
}

/// A random side of at most half the members (at least one).
pub fn random_halves(size: u8) -> Shape {
    let mut side = shuffled(size);
    let count = madsim::rand::thread_rng().gen_range(1..=(size / 2).max(1));
    side.truncate(usize::from(count));
    side.sort_unstable();
    Shape::Sides { side }
}

/// `leader` and as many other random members as keep the side a minority:
/// the old leader keeps followers that still hear it, while the majority
/// elects a new leader (split brain).
pub fn leader_minority(size: u8, leader: u8) -> Shape {
    let others = shuffled(size).into_iter().filter(|&m| m != leader);
    let minority = usize::from((size - 1) / 2);
    let mut side: Vec<u8> = others.take(minority.saturating_sub(1)).collect();
    side.push(leader);
    side.sort_unstable();
    Shape::Sides { side }
}

/// Two random halves of the members other than a random bridge member.
pub fn bridge(size: u8) -> Shape {
    let mut members = shuffled(size);
    let bridge = members.pop().unwrap_or(0);
    members.truncate(members.len() / 2);
    members.sort_unstable();
    Shape::Bridge {
        side: members,
        bridge,
    }
}

/// The members in a random ring.
pub fn ring(size: u8) -> Shape {
    Shape::Ring {
        order: shuffled(size),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_cut_every_link_across_both_ways() {
        let cut = Shape::Sides { side: vec![0, 1] }.cut_links(5);
        assert_eq!(cut.len(), 2 * 2 * 3);
        assert!(cut.contains(&(0, 4)) && cut.contains(&(4, 0)));
        assert!(!cut.contains(&(0, 1)) && !cut.contains(&(3, 4)));
    }

    #[test]
    fn a_bridge_hears_both_sides() {
        let shape = Shape::Bridge {
            side: vec![0, 1],
            bridge: 2,
        };
        let cut = shape.cut_links(5);
        assert!(cut.iter().all(|&(a, b)| a != 2 && b != 2));
        assert!(cut.contains(&(0, 3)) && cut.contains(&(4, 1)));
        assert_eq!(cut.len(), 2 * 2 * 2);
    }

    #[test]
    fn a_ring_member_reaches_only_its_neighbours() {
        let cut = Shape::Ring {
            order: vec![3, 0, 4, 1, 2],
        }
        .cut_links(5);
        for m in 0..5u8 {
            let reachable = (0..5u8).filter(|&o| o != m && !cut.contains(&(m, o)));
            assert_eq!(reachable.count(), 2, "member {m}");
        }
        assert!(!cut.contains(&(2, 3)) && !cut.contains(&(0, 4)));
        assert!(cut.contains(&(3, 4)));
    }

    #[test]
    fn a_renamed_shape_cuts_the_named_hosts() {
        let shape = Shape::Sides { side: vec![0] }.renamed(&[1, 3, 2]);
        assert_eq!(shape, Shape::Sides { side: vec![1] });
        let cut = shape.cut_links(4);
        assert!(cut.contains(&(1, 3)) && cut.contains(&(0, 1)));
        assert!(!cut.contains(&(2, 3)));
        let identity = Shape::Ring {
            order: vec![2, 0, 1],
        };
        assert_eq!(identity.renamed(&[0, 1, 2]), identity);
    }

    #[test]
    fn one_way_cuts_only_one_direction() {
        let from = Shape::OneWayFrom { from: 1 }.cut_links(3);
        assert_eq!(from, BTreeSet::from([(1, 0), (1, 2)]));
        let to = Shape::OneWayTo { to: 1 }.cut_links(3);
        assert_eq!(to, BTreeSet::from([(0, 1), (2, 1)]));
    }
}
