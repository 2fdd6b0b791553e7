//! `/status/<slug>`: public status pages over HTTP, apart from GraphQL so that a proxy can
//! expose `/status/` alone.
//!
//! - `GET /status/<slug>`: the page (`status/index.html` from the dashboard's folder), which
//!   loads `/status/page.js` and `/status/page.css` and then its data;
//! - `GET /status/<slug>.json`: what the page shows (`service::status::View`) and nothing else.
//!   Without a token only a public page answers; with `Authorization: Bearer <token>` any page
//!   does (a preview). A page that does not exist and one that is not public answer the same 404.
//!
//! Answers are cached per page for `PINGPIPE_STATUS_CACHE_TTL` (and told to proxies with
//! `Cache-Control`), and dropped at once when a page, a state or anything else a mutation
//! touches changes (on any API instance: the same announcements as the read cache; while they
//! cannot be received nothing is cached). Requests for a page that is being computed, since
//! the last change, share that computation's answer rather than start their own.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sea_orm::DatabaseConnection;

use crate::service::status;

/// Pages answered from the cache, and those computed.
pub const HITS: &str = "pingpipe_api_status_cache_hits_total";
pub const MISSES: &str = "pingpipe_api_status_cache_misses_total";

pub fn describe_metrics() {
    metrics::describe_counter!(
        HITS,
        "Status page data answered from the status page cache."
    );
    metrics::describe_counter!(MISSES, "Status page data computed (not in the cache).");
}

struct Entry {
    generation: u64,
    stored: Instant,
    body: Bytes,
}

/// All kept pages together stay below this many bytes.
const MAX_TOTAL: usize = 64 * 1024 * 1024;

type Key = (String, bool);

/// What computing a page gave, shared by everyone who asked while it ran.
#[derive(Clone)]
enum Computed {
    Page(Bytes),
    NotFound,
    Failed,
}

/// One computation under way: the page and the generation it started in.
type Flight = Arc<tokio::sync::OnceCell<Computed>>;

/// Computed pages by (slug, with a token). Only existing pages are kept (at most
/// `status::MAX_PAGES`, twice), and at most [`MAX_TOTAL`] bytes of them.
pub struct PageCache {
    ttl: Duration,
    generation: AtomicU64,
    listening: AtomicBool,
    entries: Mutex<HashMap<Key, Entry>>,
    /// The computations under way, by page and the generation they started in: who asks in
    /// that generation shares the answer (whether it is kept or not); after a change a new
    /// computation starts.
    flights: Mutex<HashMap<(Key, u64), Flight>>,
}

impl PageCache {
    pub fn new(ttl: Duration) -> PageCache {
        PageCache {
            ttl,
            generation: AtomicU64::new(0),
            listening: AtomicBool::new(false),
            entries: Mutex::new(HashMap::new()),
            flights: Mutex::new(HashMap::new()),
        }
    }

    /// A page, a state or a setting changed: every kept page is outdated.
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Whether changes are being announced; without that nothing is kept.
    pub fn set_listening(&self, listening: bool) {
        self.listening.store(listening, Ordering::SeqCst);
        self.changed();
    }

    fn enabled(&self) -> bool {
        !self.ttl.is_zero() && self.listening.load(Ordering::SeqCst)
    }

    /// The computation of `key` in `generation`: the one under way, or a new one.
    fn flight(&self, key: &Key, generation: u64) -> Flight {
        match self.flights.lock() {
            Ok(mut flights) => {
                // Those of an earlier generation are no longer joined (left by cancelled
                // requests, they would stay).
                flights.retain(|(_, g), _| *g == generation);
                flights
                    .entry((key.clone(), generation))
                    .or_default()
                    .clone()
            }
            Err(_) => Flight::default(),
        }
    }

    /// `flight` has its answer: later requests read the cache or start anew.
    fn landed(&self, key: &Key, generation: u64, flight: &Flight) {
        if let Ok(mut flights) = self.flights.lock() {
            let id = (key.clone(), generation);
            if flights.get(&id).is_some_and(|f| Arc::ptr_eq(f, flight)) {
                flights.remove(&id);
            }
        }
    }

    fn get(&self, key: &Key) -> Option<Bytes> {
        if !self.enabled() {
            return None;
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|e| e.generation == generation && e.stored.elapsed() < self.ttl)
            .map(|e| e.body.clone())
    }

    /// Keeps `body`, computed from what was there at `generation` (read before computing: an
    /// answer computed across a change is never kept).
    fn put(&self, key: Key, generation: u64, body: Bytes) {
        if !self.enabled() || self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, e| e.generation == generation && e.stored.elapsed() < self.ttl);
            let bytes: usize = entries.values().map(|e| e.body.len()).sum();
            if entries.len() < 2 * status::MAX_PAGES as usize && bytes + body.len() <= MAX_TOTAL {
                entries.insert(
                    key,
                    Entry {
                        generation,
                        stored: Instant::now(),
                        body,
                    },
                );
            }
        }
    }
}

#[derive(Clone)]
pub struct StatusState {
    pub db: DatabaseConnection,
    pub tokens: Arc<Vec<String>>,
    pub dir: Arc<PathBuf>,
    pub cache: Arc<PageCache>,
}

fn json_error(code: StatusCode, message: String) -> Response {
    (
        code,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(serde_json::json!({ "error": message })),
    )
        .into_response()
}

fn not_found() -> Response {
    json_error(
        StatusCode::NOT_FOUND,
        "no such status page (or it is not public)".to_owned(),
    )
}

/// `GET /status/{name}`: the page, its script and style, or its data (`<slug>.json`).
pub async fn serve(
    State(state): State<StatusState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    match name.as_str() {
        "page.js" => {
            return file(
                &state.dir,
                "status/page.js",
                "text/javascript; charset=utf-8",
            )
            .await;
        }
        "page.css" => return file(&state.dir, "status/page.css", "text/css; charset=utf-8").await,
        // The dashboard's icon, here too so that /status/ alone is enough.
        "favicon.svg" => return file(&state.dir, "favicon.svg", "image/svg+xml").await,
        _ => {}
    }
    if let Some(slug) = name.strip_suffix(".json") {
        return data(&state, slug, &headers).await;
    }
    if !status::valid_slug(&name) {
        return (StatusCode::NOT_FOUND, "no such status page\n").into_response();
    }
    file(&state.dir, "status/index.html", "text/html; charset=utf-8").await
}

/// A file of the dashboard's folder, read per request like the dashboard's.
async fn file(dir: &std::path::Path, name: &str, content_type: &'static str) -> Response {
    match tokio::fs::read(dir.join(name)).await {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(file = name, error = %e, "A status page file is missing from the dashboard's folder.");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the status page's files are missing from the dashboard's folder (PINGPIPE_API_FRONTEND_DIR)\n",
            )
                .into_response()
        }
    }
}

async fn data(state: &StatusState, slug: &str, headers: &HeaderMap) -> Response {
    if !status::valid_slug(slug) {
        return not_found();
    }
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let authorized = crate::auth::authorized(header, &state.tokens);
    let key = (slug.to_owned(), authorized);
    let cache_control = if authorized {
        HeaderValue::from_static("private, no-store")
    } else {
        HeaderValue::from_str(&format!("public, max-age={}", state.cache.ttl.as_secs()))
            .unwrap_or(HeaderValue::from_static("no-cache"))
    };
    let respond = |body: Bytes| {
        (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ),
                (header::CACHE_CONTROL, cache_control.clone()),
            ],
            body,
        )
            .into_response()
    };
    if let Some(body) = state.cache.get(&key) {
        metrics::counter!(HITS).increment(1);
        return respond(body);
    }
    // One computation of a page per generation: who asks while it runs shares its answer.
    let generation = state.cache.generation.load(Ordering::SeqCst);
    let flight = state.cache.flight(&key, generation);
    let computed = flight
        .get_or_init(|| async {
            metrics::counter!(MISSES).increment(1);
            let computed = compute(state, slug, authorized).await;
            if let Computed::Page(body) = &computed {
                state.cache.put(key.clone(), generation, body.clone());
            }
            computed
        })
        .await
        .clone();
    state.cache.landed(&key, generation, &flight);
    match computed {
        Computed::Page(body) => respond(body),
        Computed::NotFound => not_found(),
        Computed::Failed => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the status page cannot be computed now; try again shortly".to_owned(),
        ),
    }
}

/// The page's data as JSON, or why there is none.
async fn compute(state: &StatusState, slug: &str, authorized: bool) -> Computed {
    let computed = async {
        let Some(page) = status::by_slug(&state.db, slug).await? else {
            return Ok(None);
        };
        if !page.public && !authorized {
            return Ok(None);
        }
        status::view(&state.db, &page).await.map(Some)
    };
    match computed.await {
        Ok(Some(view)) => match serde_json::to_vec(&view) {
            Ok(body) => Computed::Page(Bytes::from(body)),
            Err(e) => {
                tracing::error!(error = %e, "Cannot serialize a status page.");
                Computed::Failed
            }
        },
        Ok(None) => Computed::NotFound,
        Err(e) => {
            tracing::warn!(slug, error = ?e, "Cannot compute a status page.");
            Computed::Failed
        }
    }
}
