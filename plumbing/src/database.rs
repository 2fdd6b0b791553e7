//! The connection pool every binary opens from its `DatabaseArgs`.

use std::time::Duration;

use entity::config::DatabaseArgs;

/// A pool of at most `max_connections` that connects on first use, so a process can start
/// (and report itself not ready) while PostgreSQL is still down.
pub async fn connect_lazy(
    args: &DatabaseArgs,
    max_connections: u32,
) -> Result<sea_orm::DatabaseConnection, sea_orm::DbErr> {
    connect(args, max_connections, None).await
}

/// The same, and PostgreSQL cancels any statement of these connections that runs longer than
/// `statement_timeout` (SQLSTATE 57014): a request cannot hold the database for longer.
pub async fn connect_lazy_with_timeout(
    args: &DatabaseArgs,
    max_connections: u32,
    statement_timeout: Duration,
) -> Result<sea_orm::DatabaseConnection, sea_orm::DbErr> {
    connect(args, max_connections, Some(statement_timeout)).await
}

async fn connect(
    args: &DatabaseArgs,
    max_connections: u32,
    statement_timeout: Option<Duration>,
) -> Result<sea_orm::DatabaseConnection, sea_orm::DbErr> {
    let mut options = sea_orm::ConnectOptions::new(args.database_url.clone());
    options
        .connect_lazy(true)
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    if let Some(timeout) = statement_timeout {
        // Sent as startup parameters (`options=-c …`), so they hold for every connection of the
        // pool, new ones included. JIT off: a reader's statements are short, but some
        // (long-period sums over many targets) are estimated costly enough for PostgreSQL to
        // compile them first — measured 770 ms of compiling for a 40 ms statement.
        let millis = timeout.as_millis().max(1).to_string();
        options.map_sqlx_postgres_opts(move |o| {
            o.options([("statement_timeout", millis.as_str()), ("jit", "off")])
        });
    }
    sea_orm::Database::connect(options).await
}
