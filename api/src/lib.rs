//! The GraphQL API over PostgreSQL: `POST /graphql` (GraphQL over HTTP), `GET /graphql`
//! (GraphiQL, served from the dashboard's folder, unless switched off), `/healthz`, `/readyz`
//! (database reachable), `/metrics`. Mutations need a bearer token from `PINGPIPE_API_TOKENS`.

pub mod auth;
pub mod cache;
pub mod config;
pub mod error;
pub mod graphiql;
pub mod graphql;
pub mod live;
pub mod service;
pub mod status;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_graphql_axum::GraphQLResponse;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use plumbing::Supervisor;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use tokio_util::sync::CancellationToken;

use cache::ReadCache;
pub use config::Config;
use graphql::{ApiSchema, Limits};

/// Largest request body accepted.
const MAX_BODY_BYTES: usize = 256 * 1024;

#[derive(Clone)]
struct AppState {
    schema: ApiSchema,
    /// Answers introspection-only queries (None when introspection is off).
    introspection: Option<ApiSchema>,
    tokens: Arc<Vec<String>>,
    db: DatabaseConnection,
    cache: Option<Arc<ReadCache>>,
    pages: Arc<status::PageCache>,
}

async fn graphql_handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    // Read through axum's extractor, which stops at the body limit and answers 413 however
    // the body comes (async-graphql-axum's extractor buffers without a limit).
    body: Bytes,
) -> axum::response::Response {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let caller = auth::Caller {
        authorized: auth::authorized(header, &state.tokens),
    };
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let request = match async_graphql::http::receive_body(
        content_type,
        body.as_ref(),
        async_graphql::http::MultipartOptions::default(),
    )
    .await
    {
        Ok(request) => request,
        // Not a GraphQL request at all (bad JSON, no query): 400, with a GraphQL error and a
        // code like every other refusal.
        Err(e) => {
            let body = serde_json::json!({"errors": [{
                "message": format!("not a GraphQL request: {e}"),
                "extensions": {"code": "BAD_REQUEST"},
            }]});
            return (axum::http::StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
        }
    };
    // The standard introspection queries nest deeper than data queries may: they go to a
    // schema that answers introspection alone, without the depth limit.
    if let Some(introspection) = &state.introspection
        && graphql::is_introspection(&request.query, request.operation_name.as_deref())
    {
        return GraphQLResponse::from(introspection.execute(request).await).into_response();
    }
    let mut request = request;
    let reads_only = cache::reads_only(&mut request);
    let cached = match &state.cache {
        Some(cache) if reads_only => cache::key(&request, caller.authorized).map(|k| (cache, k)),
        _ => None,
    };
    let Some((cache, key)) = cached else {
        let response = state.schema.execute(request.data(caller)).await;
        // A mutation (or a document execution refused): once it has run, cached answers may be
        // outdated (even with errors: one field of several may have succeeded). Without a
        // token nothing can change, so such a caller cannot empty the caches.
        if !reads_only && caller.authorized {
            announce_change(&state).await;
        }
        return GraphQLResponse::from(response).into_response();
    };
    if let Some(body) = cache.get(&key) {
        return json_response(body);
    }
    let generation = cache.generation();
    let response = state.schema.execute(request.data(caller)).await;
    if !response.is_ok() {
        return GraphQLResponse::from(response).into_response();
    }
    match serde_json::to_vec(&response) {
        Ok(body) => {
            let body = Bytes::from(body);
            if let Some(generation) = generation {
                cache.put(key, generation, body.clone());
            }
            json_response(body)
        }
        Err(_) => GraphQLResponse::from(response).into_response(),
    }
}

/// Browsers send no CORS preflight for a WebSocket upgrade, so CORS does not protect
/// `/graphql/ws`: without this any web page the user opens could read every target through it.
/// A browser's upgrade (it always sends `Origin`) is let through only from the API's own origin
/// or one of `PINGPIPE_API_CORS_ORIGINS`; others get 403. Clients that are not browsers send no
/// `Origin` and are let through, as for plain HTTP.
async fn same_origin_or_allowed(
    State(allowed): State<Arc<Vec<String>>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let headers = request.headers();
    let Some(origin) = headers.get(axum::http::header::ORIGIN) else {
        return next.run(request).await;
    };
    let origin = origin.to_str().unwrap_or_default();
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    // Same origin: the Origin's authority is the Host the request was sent to.
    let authority = origin.split_once("://").map_or("", |(_, rest)| rest);
    let same = !host.is_empty() && authority.eq_ignore_ascii_case(host);
    if same || allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
        next.run(request).await
    } else {
        tracing::warn!(origin, "WebSocket upgrade from a foreign origin refused.");
        (
            axum::http::StatusCode::FORBIDDEN,
            "this origin may not open the GraphQL WebSocket\n",
        )
            .into_response()
    }
}

/// What the WebSocket endpoint needs: the schema and its limits.
#[derive(Clone)]
struct Sockets {
    schema: ApiSchema,
    /// One permit per open connection.
    open: Arc<tokio::sync::Semaphore>,
    subscriptions_per_connection: u32,
    max_message_bytes: usize,
}

/// `/graphql/ws`: GraphQL over WebSocket (graphql-transport-ws and the older graphql-ws), with
/// the same schema, and so the same depth, cost and time rules, as HTTP. An instance holds at
/// most `open` connections (further upgrades get 503); each connection at most
/// `subscriptions_per_connection` subscriptions at once; a message over `max_message_bytes`
/// closes its connection, and so does not sending `connection_init` within
/// [`WS_INIT_TIMEOUT`].
async fn graphql_ws(
    State(sockets): State<Sockets>,
    protocol: async_graphql_axum::GraphQLProtocol,
    upgrade: axum::extract::ws::WebSocketUpgrade,
) -> axum::response::Response {
    let Ok(permit) = sockets.open.clone().try_acquire_owned() else {
        tracing::warn!("WebSocket upgrade refused: every connection slot is taken.");
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            [(axum::http::header::RETRY_AFTER, "10")],
            "too many open WebSocket connections on this instance; try again later\n",
        )
            .into_response();
    };
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .max_message_size(sockets.max_message_bytes)
        .max_frame_size(sockets.max_message_bytes)
        .on_upgrade(move |stream| async move {
            let _open = OpenConnection::new(permit);
            let mut data = async_graphql::Data::default();
            data.insert(graphql::subscription::Slots::new(
                sockets.subscriptions_per_connection,
            ));
            let initialised = Arc::new(AtomicBool::new(false));
            let flag = initialised.clone();
            let serve = async_graphql_axum::GraphQLWebSocket::new(stream, sockets.schema, protocol)
                .with_data(data)
                .on_connection_init(move |_| {
                    flag.store(true, Ordering::Relaxed);
                    async { Ok(async_graphql::Data::default()) }
                })
                .serve();
            tokio::pin!(serve);
            tokio::select! {
                () = &mut serve => {}
                () = tokio::time::sleep(WS_INIT_TIMEOUT) => {
                    if initialised.load(Ordering::Relaxed) {
                        serve.await;
                    } else {
                        // graphql-transport-ws asks the server to close such a connection
                        // (the socket is dropped: it holds a slot no one uses).
                        tracing::debug!("WebSocket closed: no connection_init in time.");
                    }
                }
            }
        })
}

/// An open WebSocket connection: its slot and its place in the gauge, given back when it ends,
/// however it ends (a panic included).
struct OpenConnection(#[allow(dead_code)] tokio::sync::OwnedSemaphorePermit);

impl OpenConnection {
    fn new(permit: tokio::sync::OwnedSemaphorePermit) -> Self {
        metrics::gauge!(WS_CONNECTIONS).increment(1);
        OpenConnection(permit)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        metrics::gauge!(WS_CONNECTIONS).decrement(1);
    }
}

/// How long a WebSocket client has to send `connection_init` before its connection is closed.
const WS_INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Open WebSocket connections (gauge).
pub const WS_CONNECTIONS: &str = "pingpipe_api_websocket_connections";
/// SQL statements the API has sent (counter).
pub const SQL_STATEMENTS: &str = "pingpipe_api_sql_statements_total";

/// Tells this instance's read cache and, by NOTIFY, every other instance's (whether or not
/// this one caches) that answers may be outdated.
async fn announce_change(state: &AppState) {
    if let Some(cache) = &state.cache {
        cache.changed();
    }
    state.pages.changed();
    if let Err(e) = state
        .db
        .execute_unprepared(&format!("NOTIFY {}", entity::channels::CHANGES))
        .await
    {
        tracing::warn!(error = %e, "Cannot announce a change to other API instances.");
    }
}

/// A serialized GraphQL answer, with the content type async-graphql-axum gives it.
fn json_response(body: Bytes) -> axum::response::Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/graphql-response+json",
        )],
        body,
    )
        .into_response()
}

/// The dashboard's and the API's policy: scripts, styles and connections from this origin only
/// (no inline script), never framed, no base or form tricks. GraphiQL's page adds fonts from
/// `data:` and one style's hash (`graphiql::page`).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'self'; object-src 'none'";

/// Security headers on every response (a handler may set its own CSP first).
fn security_headers(app: Router) -> Router {
    use axum::http::{HeaderName, HeaderValue, header};
    use tower_http::set_header::SetResponseHeaderLayer;
    let headers: [(HeaderName, &'static str); 4] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    headers.into_iter().fold(app, |app, (name, value)| {
        app.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ))
    })
}

fn describe_metrics() {
    metrics::describe_gauge!(WS_CONNECTIONS, "Open GraphQL WebSocket connections.");
    metrics::describe_counter!(
        SQL_STATEMENTS,
        "SQL statements sent through the API's pool (LISTEN and health checks not counted)."
    );
}

/// How long open requests have to finish once stopping.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A started API server.
pub struct Running {
    pub addr: SocketAddr,
    supervisor: Supervisor,
}

impl Running {
    /// Waits until the server has stopped: `Ok` when asked to, otherwise which task failed
    /// (the HTTP server, the LISTEN task or the readiness check), having stopped the others.
    pub async fn wait(self) -> anyhow::Result<()> {
        Ok(self.supervisor.wait().await?)
    }
}

/// Binds the listener and serves until `shutdown` (axum's graceful shutdown).
pub async fn start(config: Config, shutdown: CancellationToken) -> anyhow::Result<Running> {
    auth::check_tokens(&config.api_tokens).map_err(anyhow::Error::msg)?;
    worker_notify::channel::check_url("PINGPIPE_PUBLIC_URL", &config.public_url)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut db = plumbing::database::connect_lazy_with_timeout(
        &config.database,
        8,
        config.statement_timeout.into(),
    )
    .await?;
    describe_metrics();
    db.set_metric_callback(|_| metrics::counter!(SQL_STATEMENTS).increment(1));
    let live = live::Live::new(1024);
    cache::describe_metrics();
    let cache = (config.read_cache_entries > 0).then(|| {
        Arc::new(ReadCache::new(
            config.read_cache_entries,
            config.read_cache_ttl.into(),
        ))
    });
    status::describe_metrics();
    let pages = Arc::new(status::PageCache::new(config.status_cache_ttl.into()));
    let mut supervisor = Supervisor::new(shutdown.clone(), SHUTDOWN_GRACE);
    supervisor.spawn(
        "LISTEN for results and changes",
        live::run(
            config.database.database_url.clone(),
            db.clone(),
            live.clone(),
            cache.clone(),
            pages.clone(),
            shutdown.clone(),
        ),
    );
    let limits = Limits {
        max_page: config.max_page,
    };
    let rules = graphql::rules::Rules {
        max_cost: config.max_cost,
        max_statements: config.max_statements,
        timeout: config.request_timeout.into(),
    };
    let introspection = config
        .introspection
        .then(|| graphql::build_introspection(live.clone(), limits, rules));
    let schema = graphql::build(
        Some(db.clone()),
        live,
        limits,
        rules,
        config.introspection,
        config.states.thresholds(),
        graphql::notify::NotifySettings::new(
            config.public_url.clone(),
            config.request_timeout.into(),
        ),
    );
    let sockets = Sockets {
        schema: schema.clone(),
        open: Arc::new(tokio::sync::Semaphore::new(
            config.ws_max_connections as usize,
        )),
        subscriptions_per_connection: config.ws_max_subscriptions,
        max_message_bytes: config.ws_max_message_bytes,
    };
    // /readyz answers from the last database check, refreshed every 2 s.
    let ready = Arc::new(AtomicBool::new(false));
    {
        let (ready, shutdown, db) = (ready.clone(), shutdown.clone(), db.clone());
        supervisor.spawn("readiness check", async move {
            while !shutdown.is_cancelled() {
                ready.store(db.ping().await.is_ok(), Ordering::Relaxed);
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(2)) => {}
                    () = shutdown.cancelled() => {}
                }
            }
            Ok(())
        });
    }
    let state = AppState {
        schema,
        introspection,
        tokens: Arc::new(config.api_tokens.clone()),
        db: db.clone(),
        cache,
        pages: pages.clone(),
    };
    let status_state = status::StatusState {
        db: db.clone(),
        tokens: Arc::new(config.api_tokens.clone()),
        dir: Arc::new(config.frontend_dir.clone()),
        cache: pages,
    };
    let mut graphql_route = axum::routing::post(graphql_handler);
    if config.graphiql {
        let dir = Arc::new(config.frontend_dir.clone());
        graphql_route = graphql_route.get(move || graphiql::page(dir.clone()));
    }
    let app = Router::new()
        .route("/graphql", graphql_route)
        // Subscriptions: WebSocket, graphql-transport-ws (and the older graphql-ws).
        .route(
            "/graphql/ws",
            axum::routing::get(graphql_ws).with_state(sockets).layer(
                axum::middleware::from_fn_with_state(
                    Arc::new(config.cors_origins.clone()),
                    same_origin_or_allowed,
                ),
            ),
        )
        // Status pages: their page, files and data, all under /status/.
        .route(
            "/status/{name}",
            axum::routing::get(status::serve).with_state(status_state),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
        .merge(plumbing::ops_router(Arc::new(move || {
            ready.load(Ordering::Relaxed)
        })));
    let cors = if config.cors_origins.is_empty() {
        tower_http::cors::CorsLayer::new()
    } else {
        let origins = config
            .cors_origins
            .iter()
            .map(|o| o.parse())
            .collect::<Result<Vec<axum::http::HeaderValue>, _>>()
            .map_err(|e| anyhow::anyhow!("PINGPIPE_API_CORS_ORIGINS: {e}"))?;
        tower_http::cors::CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
            .allow_headers([
                axum::http::header::AUTHORIZATION,
                axum::http::header::CONTENT_TYPE,
            ])
    };
    let app = app
        .fallback_service(
            Router::new()
                .fallback_service(tower_http::services::ServeDir::new(&config.frontend_dir))
                .layer(axum::middleware::from_fn(graphiql::hide_page)),
        )
        .layer(cors)
        // A second later than the operations' own limit, so that a query running too long is
        // answered by it (a GraphQL error with code TIMEOUT), and this 408 is for the rest.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from(config.request_timeout) + Duration::from_secs(1),
        ))
        // Every route, every content type: a body announced larger than the limit is refused
        // with 413 before any of it is read, and one that grows past it while being read (no
        // Content-Length) stops there. (The GraphQL extractor ignores `DefaultBodyLimit`.)
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            MAX_BODY_BYTES,
        ));
    let app = security_headers(app);
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, tokens = config.api_tokens.len(), "Serving the API.");
    supervisor.spawn("HTTP server", async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await?;
        Ok(())
    });
    Ok(Running { addr, supervisor })
}
