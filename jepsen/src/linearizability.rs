//! Linearizability of a register history: Wing & Gong's search with Lowe's
//! memoization (cache of (linearized set, model state)), one key at a time
//! (P-compositionality: single-key operations on different keys are
//! independent, so the whole history is linearizable if and only if every
//! key's sub-history is).

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use crate::bitset::BitSet;
use crate::history::{History, Operation, Outcome, Value};
use crate::model::Register;

/// The checker's answer for a whole history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every key's sub-history has a linearization.
    Linearizable {
        /// Keys checked.
        keys: usize,
        /// Operations that took part in the search (failed operations and
        /// reads with an unknown outcome take no part).
        operations: usize,
        /// Search states explored, summed over keys.
        states: u64,
    },
    /// A key's sub-history has no linearization.
    NotLinearizable(Box<KeyFailure>),
    /// The search of a key explored `states_max` states without an answer.
    Unknown {
        /// The key whose search hit the bound.
        key: String,
        /// States explored for it.
        states: u64,
    },
}

impl Verdict {
    /// Whether the verdict is [`Verdict::NotLinearizable`].
    pub fn is_violation(&self) -> bool {
        matches!(self, Verdict::NotLinearizable(_))
    }
}

/// Why a key's sub-history is not linearizable: the longest linearization
/// prefix the search found, and the operation it could not place next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFailure {
    /// The key.
    pub key: String,
    /// The longest prefix the search linearized, in linearization order.
    pub linearized: Vec<Operation>,
    /// The model's value after that prefix.
    pub state: Option<Value>,
    /// The operation that had to be linearized next (it had completed)
    /// but that no order of the candidates could explain.
    pub blocked: Operation,
    /// The pending operations the search tried at that point.
    pub candidates: Vec<Operation>,
}

impl fmt::Display for KeyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "key {:?} is not linearizable", self.key)?;
        let shown = self.linearized.len().saturating_sub(8);
        writeln!(
            f,
            "  linearized prefix ({} operations, last {} shown):",
            self.linearized.len(),
            self.linearized.len() - shown
        )?;
        for operation in &self.linearized[shown..] {
            writeln!(f, "    {operation}")?;
        }
        writeln!(f, "  model value after it: {:?}", self.state)?;
        writeln!(f, "  cannot linearize: {}", self.blocked)?;
        writeln!(f, "  candidates tried:")?;
        for operation in &self.candidates {
            writeln!(f, "    {operation}")?;
        }
        Ok(())
    }
}

/// Checks `history` against the register model, key by key, exploring at
/// most `states_max` search states per key. Keys start absent. Failed
/// operations never took effect; unknown ones may have, at any time after
/// their invocation.
pub fn check_linearizable(history: &History, states_max: u64) -> Verdict {
    let mut by_key: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for operation in history.operations() {
        let outcome = operation.effective_outcome();
        let takes_part = match outcome {
            Outcome::Ok(_) => true,
            Outcome::Fail => false,
            Outcome::Unknown => operation.op.is_mutation(),
        };
        if takes_part {
            by_key
                .entry(operation.op.key())
                .or_default()
                .push(operation);
        }
    }
    let (mut operations, mut states, mut unknown) = (0, 0, None);
    for (key, ops) in &by_key {
        operations += ops.len();
        match Search::new(ops).run(states_max) {
            Searched::Linearizable { states: n } => states += n,
            Searched::Failed(failure) => return Verdict::NotLinearizable(Box::new(failure)),
            Searched::Bounded { states: n } => {
                unknown.get_or_insert(Verdict::Unknown {
                    key: (*key).into(),
                    states: n,
                });
            }
        }
    }
    unknown.unwrap_or(Verdict::Linearizable {
        keys: by_key.len(),
        operations,
        states,
    })
}

/// End of the event list.
const NIL: usize = usize::MAX;

/// One call or return event of the key's doubly linked event list.
#[derive(Debug, Clone, Copy)]
struct Event {
    /// Index into the key's operations.
    op: usize,
    /// For a call: the node of its return; for a return: `NIL`.
    ret: usize,
}

enum Searched {
    Linearizable { states: u64 },
    Failed(KeyFailure),
    Bounded { states: u64 },
}

/// The deepest point the search reached before it had to backtrack.
struct Deepest {
    stack: Vec<usize>,
    state: Option<Value>,
    blocked: usize,
    candidates: Vec<usize>,
}

/// Wing–Gong–Lowe search over one key's operations.
struct Search<'a> {
    ops: &'a [&'a Operation],
    /// Node 0 is the list head; node `k` is event `k - 1`.
    events: Vec<Event>,
    next: Vec<usize>,
    prev: Vec<usize>,
    /// Operations that must be linearized (their outcome is known).
    required: usize,
}

impl<'a> Search<'a> {
    fn new(ops: &'a [&'a Operation]) -> Search<'a> {
        // (time, return?, op): calls sort before returns at equal times, so
        // operations that touch in time count as concurrent.
        let mut order: Vec<(u64, bool, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, operation) in ops.iter().enumerate() {
            order.push((operation.invoke_ns, false, i));
            order.push((return_ns(operation), true, i));
        }
        order.sort_unstable();
        let mut events = vec![Event { op: NIL, ret: NIL }; order.len() + 1];
        let mut return_node = vec![NIL; ops.len()];
        for (k, &(_, is_return, op)) in order.iter().enumerate() {
            events[k + 1] = Event { op, ret: NIL };
            if is_return {
                return_node[op] = k + 1;
            }
        }
        for (k, &(_, is_return, op)) in order.iter().enumerate() {
            if !is_return {
                events[k + 1].ret = return_node[op];
            }
        }
        let nodes = events.len();
        let next = (0..nodes)
            .map(|k| if k + 1 < nodes { k + 1 } else { NIL })
            .collect();
        let prev = (0..nodes).map(|k| k.wrapping_sub(1)).collect();
        let required = ops
            .iter()
            .filter(|o| matches!(o.effective_outcome(), Outcome::Ok(_)))
            .count();
        Search {
            ops,
            events,
            next,
            prev,
            required,
        }
    }

    fn unlink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = n;
        if n != NIL {
            self.prev[n] = p;
        }
    }

    fn relink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = node;
        if n != NIL {
            self.prev[n] = node;
        }
    }

    fn lift(&mut self, call: usize) {
        self.unlink(call);
        self.unlink(self.events[call].ret);
    }

    fn unlift(&mut self, call: usize) {
        self.relink(self.events[call].ret);
        self.relink(call);
    }

    fn is_required(&self, op: usize) -> bool {
        matches!(self.ops[op].effective_outcome(), Outcome::Ok(_))
    }

    fn run(mut self, states_max: u64) -> Searched {
        let mut linearized = BitSet::new(self.ops.len());
        let mut cache: HashSet<(BitSet, Option<Value>)> = HashSet::new();
        let mut stack: Vec<(usize, Option<Value>)> = Vec::new();
        let mut deepest: Option<Deepest> = None;
        let (mut state, mut required_left) = (None, self.required);
        let mut node = self.next[0];
        loop {
            if required_left == 0 {
                return Searched::Linearizable {
                    states: cache.len() as u64,
                };
            }
            if cache.len() as u64 >= states_max {
                return Searched::Bounded {
                    states: cache.len() as u64,
                };
            }
            if node == NIL {
                // Only optional (unknown) operations remain unplaced past
                // this point, which cannot happen while one is required.
                return self.failure(deepest, &stack, state);
            }
            let event = self.events[node];
            if event.ret != NIL {
                let operation = self.ops[event.op];
                if let Some(after) =
                    Register::step(state, &operation.op, operation.effective_outcome())
                {
                    linearized.insert(event.op);
                    if cache.insert((linearized.clone(), after)) {
                        stack.push((node, state));
                        state = after;
                        required_left -= usize::from(self.is_required(event.op));
                        self.lift(node);
                        node = self.next[0];
                        continue;
                    }
                    linearized.remove(event.op);
                }
                node = self.next[node];
                continue;
            }
            // A return: its operation had to be linearized before here.
            if deepest.as_ref().is_none_or(|d| stack.len() > d.stack.len()) {
                deepest = Some(self.deepest(&stack, state, node));
            }
            let Some((call, before)) = stack.pop() else {
                return self.failure(deepest, &stack, state);
            };
            let op = self.events[call].op;
            state = before;
            linearized.remove(op);
            required_left += usize::from(self.is_required(op));
            self.unlift(call);
            node = self.next[call];
        }
    }

    fn deepest(
        &self,
        stack: &[(usize, Option<Value>)],
        state: Option<Value>,
        ret: usize,
    ) -> Deepest {
        let mut candidates = Vec::new();
        let mut node = self.next[0];
        while node != NIL && node != ret {
            if self.events[node].ret != NIL {
                candidates.push(self.events[node].op);
            }
            node = self.next[node];
        }
        Deepest {
            stack: stack
                .iter()
                .map(|&(call, _)| self.events[call].op)
                .collect(),
            state,
            blocked: self.events[ret].op,
            candidates,
        }
    }

    fn failure(
        &self,
        deepest: Option<Deepest>,
        stack: &[(usize, Option<Value>)],
        state: Option<Value>,
    ) -> Searched {
        let deepest = deepest.unwrap_or_else(|| Deepest {
            stack: stack
                .iter()
                .map(|&(call, _)| self.events[call].op)
                .collect(),
            state,
            blocked: 0,
            candidates: Vec::new(),
        });
        let operation = |i: usize| (*self.ops[i]).clone();
        Searched::Failed(KeyFailure {
            key: self.ops[deepest.blocked].op.key().into(),
            linearized: deepest.stack.iter().map(|&i| operation(i)).collect(),
            state: deepest.state,
            blocked: operation(deepest.blocked),
            candidates: deepest.candidates.iter().map(|&i| operation(i)).collect(),
        })
    }
}

/// When an operation's effect must have happened by: its completion if the
/// outcome is known, else never (an unknown operation may take effect at
/// any time after its invocation).
fn return_ns(operation: &Operation) -> u64 {
    match (operation.effective_outcome(), operation.complete_ns) {
        (Outcome::Ok(_), Some(ns)) => ns,
        _ => u64::MAX,
    }
}
