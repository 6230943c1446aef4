//! Cluster alarms (etcd `Maintenance.Alarm`, `etcdserver/api/v3alarm`):
//! raised per member, they restrict what apply accepts.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// An alarm kind (etcd `AlarmType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AlarmType {
    /// "Any alarm" in a get request.
    None,
    /// A member ran out of space: writes and lease grants are refused.
    NoSpace,
    /// A member's data diverged: KV and lease requests are refused.
    Corrupt,
}

/// What an alarm request does (etcd `AlarmRequest.AlarmAction`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AlarmAction {
    /// List alarms of a type (`None`: all).
    Get,
    /// Raise an alarm for a member.
    Activate,
    /// Clear an alarm of a member.
    Deactivate,
}

/// An alarm request (etcd `AlarmRequest`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AlarmRequest {
    /// What to do.
    pub action: AlarmAction,
    /// The member raising or clearing the alarm (ignored by `Get`).
    pub member_id: u64,
    /// The alarm.
    pub alarm: AlarmType,
}

/// One raised alarm (etcd `AlarmMember`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AlarmMember {
    /// Member that raised it.
    pub member_id: u64,
    /// The alarm.
    pub alarm: AlarmType,
}

/// The raised alarms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Alarms {
    raised: BTreeSet<AlarmMember>,
}

impl Alarms {
    /// Applies an alarm request; returns the alarms it listed, raised or
    /// cleared (raising a raised alarm or clearing an absent one lists
    /// nothing, as etcd). `None` alarms are never stored.
    pub fn apply(&mut self, request: &AlarmRequest) -> Vec<AlarmMember> {
        let member = AlarmMember {
            member_id: request.member_id,
            alarm: request.alarm,
        };
        match request.action {
            AlarmAction::Get => self
                .raised
                .iter()
                .filter(|raised| request.alarm == AlarmType::None || raised.alarm == request.alarm)
                .copied()
                .collect(),
            AlarmAction::Activate if request.alarm != AlarmType::None => {
                if self.raised.insert(member) {
                    vec![member]
                } else {
                    Vec::new()
                }
            }
            AlarmAction::Deactivate => {
                if self.raised.remove(&member) {
                    vec![member]
                } else {
                    Vec::new()
                }
            }
            AlarmAction::Activate => Vec::new(),
        }
    }

    /// True when some member raised `alarm`.
    pub fn is_raised(&self, alarm: AlarmType) -> bool {
        self.raised.iter().any(|raised| raised.alarm == alarm)
    }

    /// All raised alarms, ascending.
    pub fn list(&self) -> Vec<AlarmMember> {
        self.raised.iter().copied().collect()
    }

    /// Alarms from a snapshot.
    pub fn restore(list: Vec<AlarmMember>) -> Alarms {
        Alarms {
            raised: list
                .into_iter()
                .filter(|m| m.alarm != AlarmType::None)
                .collect(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn request(action: AlarmAction, member_id: u64, alarm: AlarmType) -> AlarmRequest {
        AlarmRequest {
            action,
            member_id,
            alarm,
        }
    }

    #[test]
    fn raise_list_clear() {
        let mut alarms = Alarms::default();
        let raised = alarms.apply(&request(AlarmAction::Activate, 1, AlarmType::NoSpace));
        assert_eq!(
            raised,
            vec![AlarmMember {
                member_id: 1,
                alarm: AlarmType::NoSpace
            }]
        );
        assert!(
            alarms
                .apply(&request(AlarmAction::Activate, 1, AlarmType::NoSpace))
                .is_empty()
        );
        alarms.apply(&request(AlarmAction::Activate, 2, AlarmType::Corrupt));
        assert!(
            alarms
                .apply(&request(AlarmAction::Activate, 2, AlarmType::None))
                .is_empty()
        );
        assert_eq!(
            alarms
                .apply(&request(AlarmAction::Get, 0, AlarmType::None))
                .len(),
            2
        );
        assert_eq!(
            alarms
                .apply(&request(AlarmAction::Get, 0, AlarmType::Corrupt))
                .len(),
            1
        );
        assert!(alarms.is_raised(AlarmType::NoSpace));
        alarms.apply(&request(AlarmAction::Deactivate, 1, AlarmType::NoSpace));
        assert!(!alarms.is_raised(AlarmType::NoSpace));
        assert_eq!(Alarms::restore(alarms.list()), alarms);
    }
}
