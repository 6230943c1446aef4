//! Cutting a queue of encoded Raft messages into bounded batches.

use bytes::Bytes;

use super::TransportLimits;

/// Splits `messages` into consecutive batches, keeping their order, each with
/// at most `limits.batch_messages_max` messages and at most
/// `limits.batch_size_bytes_max` payload bytes; a message larger than the byte
/// bound travels alone in its own batch.
///
/// Errors: [`MessageTooLarge`] (and nothing is split) if any message exceeds
/// `limits.message_size_bytes_max`, which the receiver would reject.
pub fn split_into_batches(
    messages: Vec<Bytes>,
    limits: &TransportLimits,
) -> Result<Vec<Vec<Bytes>>, MessageTooLarge> {
    debug_assert!(
        limits.batch_messages_max > 0,
        "a batch must hold at least one message"
    );
    if let Some(big) = messages
        .iter()
        .find(|m| m.len() > limits.message_size_bytes_max)
    {
        return Err(MessageTooLarge {
            size_bytes: big.len(),
            size_bytes_max: limits.message_size_bytes_max,
        });
    }
    let mut batches = Vec::new();
    let mut current: Vec<Bytes> = Vec::new();
    let mut current_bytes = 0usize;
    for message in messages {
        let full = current.len() >= limits.batch_messages_max
            || (!current.is_empty() && current_bytes + message.len() > limits.batch_size_bytes_max);
        if full {
            batches.push(std::mem::take(&mut current));
            current_bytes = 0;
        }
        current_bytes += message.len();
        current.push(message);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    Ok(batches)
}

/// An encoded Raft message is larger than the transport carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "keel: raft message of {size_bytes} bytes exceeds the transport limit of {size_bytes_max} bytes"
)]
pub struct MessageTooLarge {
    /// Size of the offending message.
    pub size_bytes: usize,
    /// The limit it exceeded.
    pub size_bytes_max: usize,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn limits(count_max: usize, bytes_max: usize) -> TransportLimits {
        TransportLimits {
            batch_messages_max: count_max,
            batch_size_bytes_max: bytes_max,
            message_size_bytes_max: 100,
            ..TransportLimits::default()
        }
    }

    fn msgs(sizes: &[usize]) -> Vec<Bytes> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| Bytes::from(vec![i as u8; n]))
            .collect()
    }

    #[test]
    fn batches_respect_count_and_size_and_keep_order() {
        let input = msgs(&[4, 4, 4, 4, 4, 9, 1]);
        let batches = split_into_batches(input.clone(), &limits(3, 10)).unwrap();
        let sizes: Vec<Vec<usize>> = batches
            .iter()
            .map(|b| b.iter().map(Bytes::len).collect())
            .collect();
        assert_eq!(sizes, vec![vec![4, 4], vec![4, 4], vec![4], vec![9, 1]]);
        assert_eq!(batches.concat(), input);
    }

    #[test]
    fn oversized_message_travels_alone() {
        let batches = split_into_batches(msgs(&[2, 50, 2]), &limits(10, 10)).unwrap();
        assert_eq!(batches.len(), 3);
    }

    #[test]
    fn message_over_hard_limit_is_refused() {
        let err = split_into_batches(msgs(&[1, 101]), &limits(10, 10)).unwrap_err();
        assert_eq!(err.size_bytes, 101);
    }

    #[test]
    fn empty_input_gives_no_batches() {
        assert!(
            split_into_batches(Vec::new(), &limits(1, 1))
                .unwrap()
                .is_empty()
        );
    }
}
