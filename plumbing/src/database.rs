//! The connection pool every binary opens from its `DatabaseArgs`.

use entity::config::DatabaseArgs;

/// A pool of at most `max_connections` that connects on first use, so a process can start
/// (and report itself not ready) while PostgreSQL is still down.
pub async fn connect_lazy(
    args: &DatabaseArgs,
    max_connections: u32,
) -> Result<sea_orm::DatabaseConnection, sea_orm::DbErr> {
    let mut options = sea_orm::ConnectOptions::new(args.database_url.clone());
    options
        .connect_lazy(true)
        .max_connections(max_connections)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .sqlx_logging(false);
    sea_orm::Database::connect(options).await
}
