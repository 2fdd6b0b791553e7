//! The PostgreSQL NOTIFY channels the processes talk over, and their payloads: defined once,
//! for the ingest worker that announces and the API instances that listen.

/// New results: the payload is their `monitor_results_pk`s, comma-separated (see
/// [`result_payloads`] and [`parse_ids`]). Sent by the ingest worker inside the batch's
/// transaction, so PostgreSQL delivers it at commit.
pub const RESULTS: &str = "pingpipe_results";

/// Something an API mutation changed (no payload): every API instance drops its read cache.
pub const CHANGES: &str = "pingpipe_changes";

/// A target's state changed: the payload is one [`crate::state::StateChange`] as JSON. Sent
/// in the transaction that decided it (the ingest worker's batch, its sweep, a rebuild).
pub const STATES: &str = "pingpipe_states";

/// PostgreSQL's payload limit is 8000 bytes; stay below it.
pub const PAYLOAD_MAX: usize = 7900;

/// The ids as comma-separated payloads, each within PostgreSQL's NOTIFY limit.
pub fn result_payloads(ids: &[i64]) -> Vec<String> {
    let mut payloads = Vec::new();
    let mut current = String::new();
    for id in ids {
        let id = id.to_string();
        if !current.is_empty() && current.len() + 1 + id.len() > PAYLOAD_MAX {
            payloads.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(',');
        }
        current.push_str(&id);
    }
    if !current.is_empty() {
        payloads.push(current);
    }
    payloads
}

/// The ids of a [`RESULTS`] payload (anything that is not an id is skipped).
pub fn parse_ids(payload: &str) -> Vec<i64> {
    payload
        .split(',')
        .filter_map(|id| id.trim().parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_payloads_stay_under_the_limit_and_keep_every_id() {
        let ids: Vec<i64> = (1_000_000_000..1_000_005_000).collect();
        let payloads = result_payloads(&ids);
        assert!(payloads.len() > 1);
        assert!(payloads.iter().all(|p| p.len() <= PAYLOAD_MAX));
        let back: Vec<i64> = payloads.iter().flat_map(|p| parse_ids(p)).collect();
        assert_eq!(back, ids);
        assert!(result_payloads(&[]).is_empty());
    }
}
