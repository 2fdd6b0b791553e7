//! The PostgreSQL NOTIFY channels the processes talk over, and their payloads: defined once,
//! for the ingest worker that announces and the API instances that listen.

/// New results: the payload is their `monitor_results_pk`s, comma-separated (see
/// [`result_payloads`] and [`parse_ids`]). Sent by the ingest worker inside the batch's
/// transaction, so PostgreSQL delivers it at commit.
pub const RESULTS: &str = "pingpipe_results";

/// Something an API mutation changed (no payload): every API instance drops its read cache.
pub const CHANGES: &str = "pingpipe_changes";

/// Targets' states changed: the payload is a JSON array of [`crate::state::StateChange`]s (see
/// [`state_payloads`] and [`parse_states`]). Sent in the transaction that decided them (the
/// ingest worker's batch, its sweep, a rebuild, a pause or resume).
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

/// The changes as JSON arrays, each within PostgreSQL's NOTIFY limit (a batch that changes
/// thousands of states sends a few dozen notifications, not thousands).
pub fn state_payloads(changes: &[crate::state::StateChange]) -> Vec<String> {
    let mut payloads = Vec::new();
    let mut current = String::new();
    for change in changes {
        let one = serde_json::to_string(change).expect("a state change is plain data");
        if !current.is_empty() && current.len() + 1 + one.len() + 1 > PAYLOAD_MAX {
            current.push(']');
            payloads.push(std::mem::take(&mut current));
        }
        current.push(if current.is_empty() { '[' } else { ',' });
        current.push_str(&one);
    }
    if !current.is_empty() {
        current.push(']');
        payloads.push(current);
    }
    payloads
}

/// The changes of a [`STATES`] payload: an array, or one change alone (as a build before the
/// arrays sent it, during a rolling upgrade); None when it is neither (the caller says so).
pub fn parse_states(payload: &str) -> Option<Vec<crate::state::StateChange>> {
    serde_json::from_str::<Vec<crate::state::StateChange>>(payload)
        .ok()
        .or_else(|| serde_json::from_str(payload).ok().map(|one| vec![one]))
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

    #[test]
    fn state_payloads_stay_under_the_limit_and_keep_every_change() {
        use crate::state::{State, StateChange};
        let since = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let changes: Vec<StateChange> = (1..=500)
            .map(|target| StateChange {
                target,
                from: State::Up,
                to: State::Pending,
                since,
            })
            .collect();
        let payloads = state_payloads(&changes);
        assert!(payloads.len() > 1);
        assert!(payloads.iter().all(|p| p.len() <= PAYLOAD_MAX));
        let back: Vec<StateChange> = payloads
            .iter()
            .flat_map(|p| parse_states(p).unwrap())
            .collect();
        assert_eq!(back, changes);
        assert!(state_payloads(&[]).is_empty());
        assert_eq!(parse_states("not json"), None);
        let one = serde_json::to_string(&changes[0]).unwrap();
        assert_eq!(parse_states(&one), Some(vec![changes[0].clone()]));
    }
}
