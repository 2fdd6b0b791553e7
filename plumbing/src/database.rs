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
    readable_files(&args.database_url)?;
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
    let db = sea_orm::Database::connect(options).await?;
    // One connection now: a PostgreSQL that is down is waited for (the process reports itself
    // not ready), but one that answers and refuses us — its certificate not verified against
    // `sslrootcert`, a wrong password, no such database — will refuse every later attempt too.
    // (At most two seconds: a server that does not answer is not waited for here.)
    if let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(2), db.ping()).await
        && let Some(why) = refusal(&e)
    {
        return Err(sea_orm::DbErr::Custom(format!(
            "PostgreSQL at {} refused the connection ({why}): {e}",
            redacted(&args.database_url)
        )));
    }
    Ok(db)
}

/// Why an error to connect is a refusal that retrying cannot change, if it is one: TLS (the
/// server's certificate not trusted, a name not in it, TLS required by `sslmode` and not
/// offered) or the server's answer (SQLSTATE class 28, invalid authorization; 3D000, no such
/// database). Not a refused or lost TCP connection, a timeout or a server starting up.
pub fn refusal(e: &sea_orm::DbErr) -> Option<&'static str> {
    use sea_orm::{DbErr, RuntimeErr, sqlx};
    let inner = match e {
        DbErr::Conn(RuntimeErr::SqlxError(inner))
        | DbErr::Exec(RuntimeErr::SqlxError(inner))
        | DbErr::Query(RuntimeErr::SqlxError(inner)) => inner.as_ref(),
        _ => return None,
    };
    match inner {
        sqlx::Error::Tls(_) => Some("TLS: check sslmode and sslrootcert"),
        // How the TLS layer reports a certificate it does not trust or that does not name the
        // host (rustls through tokio), or a server that does not speak PostgreSQL's protocol.
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => Some(
            "TLS: the server's certificate is not trusted by sslrootcert or does not name the host",
        ),
        sqlx::Error::Configuration(_) => Some("configuration"),
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some(code) if code.starts_with("28") => Some("authentication"),
            Some("3D000") => Some("no such database"),
            _ => None,
        },
        _ => None,
    }
}

/// Refuses a `DATABASE_URL` that the driver could not use at all, before it is handed over
/// (the driver's own message would quote it, password included): one that is not a URL (a
/// password with `/`, `#` or `?` not percent-encoded), or one naming a certificate or key file
/// (`sslrootcert`, `sslcert`, `sslkey` or their `ssl-…` spellings) that cannot be read. An
/// inline PEM (a value starting `-----BEGIN`) is the driver's to read.
pub fn readable_files(url: &str) -> Result<(), sea_orm::DbErr> {
    let parsed = url::Url::parse(url).map_err(|e| {
        sea_orm::DbErr::Custom(format!(
            "DATABASE_URL is not a URL ({e}); percent-encode special characters in the password"
        ))
    })?;
    for (key, value) in parsed.query_pairs() {
        let file_key = matches!(
            key.as_ref(),
            "sslrootcert"
                | "ssl-root-cert"
                | "ssl-ca"
                | "sslcert"
                | "ssl-cert"
                | "sslkey"
                | "ssl-key"
        );
        if file_key
            && !value.starts_with("-----BEGIN")
            && let Err(e) = std::fs::File::open(value.as_ref())
        {
            return Err(sea_orm::DbErr::Custom(format!(
                "DATABASE_URL names {key}={value}, which cannot be read: {e}"
            )));
        }
    }
    Ok(())
}

pub use entity::config::redacted_database_url as redacted;

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn unreadable_certificate_files_are_named() {
        let err = super::readable_files(
            "postgres://h/db?sslmode=verify-full&sslrootcert=%2Fno%2Fsuch.pem",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("sslrootcert=/no/such.pem"), "{err}");
        assert!(super::readable_files("postgres://h/db?sslmode=require").is_ok());
        assert!(super::readable_files("postgres://h/db?sslkey=-----BEGIN%20KEY").is_ok());
        let err = super::readable_files("postgres://app:ab#cd@h/db")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("ab"), "{err}");
    }

    #[test]
    fn passwords_are_not_shown() {
        let shown =
            redacted("postgres://app:s3cr:et@db.internal:5432/pingpipe?sslmode=verify-full");
        assert_eq!(
            shown,
            "postgres://app:***@db.internal:5432/pingpipe?sslmode=verify-full"
        );
        let shown = redacted("postgres://app:ab%2Fcd@h/db?password=p4ss&sslkey=-----BEGIN");
        assert!(
            !shown.contains("ab") && !shown.contains("p4ss") && !shown.contains("BEGIN"),
            "{shown}"
        );
        assert_eq!(
            redacted("postgres://127.0.0.1/pingpipe"),
            "postgres://127.0.0.1/pingpipe"
        );
        assert!(!redacted("postgres://app:ab/cd@h/db").contains("cd"));
    }
}
