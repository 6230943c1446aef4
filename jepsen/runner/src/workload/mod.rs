//! Client workloads. Each client is bound to one member (round robin), so
//! that a minority member's answers are tested too.

pub mod append;
pub mod lock;
pub mod register;
pub mod watch;
