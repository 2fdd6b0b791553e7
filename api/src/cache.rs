//! A read cache: the serialized answers of recent read-only queries, reused while nothing they
//! could depend on has changed.
//!
//! Every change is announced: the ingest worker's NOTIFY for new results (see `live.rs`) and a
//! NOTIFY that every mutation sends after it commits, on any API instance. Each announcement bumps
//! a generation; an answer is reused only within the generation it was computed in. The
//! generation is read *before* a query runs, so an answer computed across a change is stored
//! under the older generation and never served. While the LISTEN connection is down nothing is
//! cached (announcements could be missed), and a time-to-live bounds what a write that bypasses
//! Pingpipe (SQL by hand) can leave stale.
//!
//! Only answers without errors are kept, keyed by the query text, operation name, variables and
//! whether the caller holds a token. The cache holds at most `max_entries` answers of at most
//! `MAX_BODY` bytes each and `MAX_TOTAL` bytes in all; when full it is emptied (a cheap bound, rarely hit: entries of a past
//! generation are dropped on the way).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_graphql::parser::types::{DocumentOperations, OperationType};
use axum::body::Bytes;

/// Answers served from the cache, and reads that had to run.
pub const HITS: &str = "pingpipe_api_read_cache_hits_total";
pub const MISSES: &str = "pingpipe_api_read_cache_misses_total";

/// Larger answers are not kept.
const MAX_BODY: usize = 1024 * 1024;
/// All kept answers together stay below this (so anonymous readers with ever new variables
/// cannot make the cache grow past it).
const MAX_TOTAL: usize = 64 * 1024 * 1024;

/// Gives the cache's metrics their help text on /metrics.
pub fn describe_metrics() {
    metrics::describe_counter!(HITS, "Read-only queries answered from the read cache.");
    metrics::describe_counter!(MISSES, "Read-only queries the read cache could not answer.");
}

struct Entry {
    generation: u64,
    stored: Instant,
    body: Bytes,
}

#[derive(Default)]
struct Entries {
    map: HashMap<String, Entry>,
    bytes: usize,
}

impl Entries {
    fn keep_only(&mut self, generation: u64) {
        self.map.retain(|_, e| e.generation == generation);
        self.bytes = self.map.values().map(|e| e.body.len()).sum();
    }
}

pub struct ReadCache {
    generation: AtomicU64,
    listening: AtomicBool,
    entries: Mutex<Entries>,
    max_entries: usize,
    ttl: Duration,
}

impl ReadCache {
    pub fn new(max_entries: usize, ttl: Duration) -> ReadCache {
        ReadCache {
            generation: AtomicU64::new(0),
            listening: AtomicBool::new(false),
            entries: Mutex::new(Entries::default()),
            max_entries,
            ttl,
        }
    }

    /// Something changed: every stored answer is outdated.
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Whether announcements are being received; without them nothing is cached.
    pub fn set_listening(&self, listening: bool) {
        self.listening.store(listening, Ordering::SeqCst);
        self.changed();
    }

    /// The generation to store an answer under, read before the query runs; None when answers
    /// must not be cached now.
    pub fn generation(&self) -> Option<u64> {
        self.listening
            .load(Ordering::SeqCst)
            .then(|| self.generation.load(Ordering::SeqCst))
    }

    pub fn get(&self, key: &str) -> Option<Bytes> {
        let generation = self.generation()?;
        let entries = self.entries.lock().ok()?;
        let hit = entries
            .map
            .get(key)
            .filter(|e| e.generation == generation && e.stored.elapsed() < self.ttl)
            .map(|e| e.body.clone());
        metrics::counter!(if hit.is_some() { HITS } else { MISSES }).increment(1);
        hit
    }

    pub fn put(&self, key: String, generation: u64, body: Bytes) {
        if body.len() > MAX_BODY || self.generation() != Some(generation) {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        let full =
            |e: &Entries| e.map.len() >= self.max_entries || e.bytes + body.len() > MAX_TOTAL;
        if full(&entries) {
            entries.keep_only(generation);
            if full(&entries) {
                *entries = Entries::default();
            }
        }
        entries.bytes += body.len();
        let old = entries.map.insert(
            key,
            Entry {
                generation,
                stored: Instant::now(),
                body,
            },
        );
        if let Some(old) = old {
            entries.bytes -= old.body.len();
        }
    }
}

/// Whether a request only reads (every operation of its document is a query). A mutation, a
/// subscription or a document that does not parse (execution will report that) is not.
pub fn reads_only(request: &mut async_graphql::Request) -> bool {
    match request.parsed_query().map(|doc| &doc.operations) {
        Ok(DocumentOperations::Single(op)) => op.node.ty == OperationType::Query,
        Ok(DocumentOperations::Multiple(ops)) => {
            ops.values().all(|op| op.node.ty == OperationType::Query)
        }
        Err(_) => false,
    }
}

/// The cache key of a read: its text, operation name and variables, and whether the caller
/// holds a token.
pub fn key(request: &async_graphql::Request, authorized: bool) -> Option<String> {
    let variables = serde_json::to_string(&request.variables).ok()?;
    Some(format!(
        "{authorized}\u{0}{}\u{0}{}\u{0}{variables}",
        request.operation_name.as_deref().unwrap_or(""),
        request.query
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_served_only_in_its_generation_and_while_listening() {
        let cache = ReadCache::new(10, Duration::from_secs(60));
        assert_eq!(cache.generation(), None, "not listening yet");
        cache.set_listening(true);
        let generation = cache.generation().unwrap();
        cache.put("k".into(), generation, Bytes::from_static(b"a"));
        assert_eq!(cache.get("k").as_deref(), Some(&b"a"[..]));
        cache.changed();
        assert_eq!(cache.get("k"), None);
        // An answer computed across a change is not stored.
        let before = cache.generation().unwrap();
        cache.changed();
        cache.put("k".into(), before, Bytes::from_static(b"old"));
        assert_eq!(cache.get("k"), None);
        cache.put(
            "k".into(),
            cache.generation().unwrap(),
            Bytes::from_static(b"b"),
        );
        cache.set_listening(false);
        assert_eq!(cache.get("k"), None);
    }

    #[test]
    fn entries_expire_and_the_size_stays_bounded() {
        let cache = ReadCache::new(2, Duration::from_millis(0));
        cache.set_listening(true);
        let g = cache.generation().unwrap();
        cache.put("a".into(), g, Bytes::from_static(b"a"));
        assert_eq!(cache.get("a"), None, "a zero TTL keeps nothing");
        for k in ["b", "c", "d"] {
            cache.put(k.into(), g, Bytes::from_static(b"x"));
        }
        assert!(cache.entries.lock().unwrap().map.len() <= 2);

        // The byte budget holds too, and is accounted exactly.
        let cache = ReadCache::new(1000, Duration::from_secs(60));
        cache.set_listening(true);
        let g = cache.generation().unwrap();
        let body = Bytes::from(vec![b'x'; MAX_BODY]);
        for i in 0..(MAX_TOTAL / MAX_BODY + 5) {
            cache.put(format!("k{i}"), g, body.clone());
            cache.put(format!("k{i}"), g, body.clone());
        }
        let entries = cache.entries.lock().unwrap();
        assert!(entries.bytes <= MAX_TOTAL);
        assert_eq!(entries.bytes, entries.map.len() * MAX_BODY);
    }

    #[test]
    fn only_queries_read_and_the_key_tells_callers_apart() {
        let mut query = async_graphql::Request::new("{ frequencies }");
        let mut mutation =
            async_graphql::Request::new("mutation { removeTarget(id: \"1\") { id } }");
        let mut broken = async_graphql::Request::new("{ frequencies");
        assert!(reads_only(&mut query));
        assert!(key(&query, false).is_some());
        assert_ne!(key(&query, false), key(&query, true));
        assert!(!reads_only(&mut mutation));
        assert!(!reads_only(&mut broken));
    }
}
