//! For tests (feature `testing`): a fresh database per test on the PostgreSQL named by
//! `DATABASE_URL` (whose role needs CREATEDB), dropped again when the test ends well.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sea_orm_migration::sea_orm::{
    ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
};

/// Where the tests' hand-made results start (SQL): [`TestDb::migrated`] covers from here.
pub const TEST_DATA_FROM: &str = "timestamptz '2026-10-01 00:00:00+00'";

/// A database of its own for one test.
pub struct TestDb {
    pub name: String,
    /// Its URL, for code under test that connects by itself.
    pub url: String,
    pub conn: DatabaseConnection,
    admin: DatabaseConnection,
}

/// The PostgreSQL that tests use.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").expect(
        "DATABASE_URL must name a PostgreSQL database whose role may CREATE DATABASE: run \
         `make test`, or `make up` and `source .pingpipe/env`",
    )
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

impl TestDb {
    /// An empty database.
    pub async fn new() -> TestDb {
        let admin = Database::connect(database_url()).await.unwrap();
        let name = format!("pingpipe_test_{}", uuid::Uuid::new_v4().simple());
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let url = with_database(&database_url(), &name);
        let conn = Database::connect(&url).await.unwrap();
        TestDb {
            name,
            url,
            conn,
            admin,
        }
    }

    /// A database with every migration applied, and partitions of `monitor_results` (30 days
    /// each) from [`TEST_DATA_FROM`] to a week from now, where tests put results by hand (the
    /// ingest worker makes the partitions it needs by itself).
    pub async fn migrated() -> TestDb {
        let db = TestDb::new().await;
        <crate::Migrator as sea_orm_migration::MigratorTrait>::up(&db.conn, None)
            .await
            .unwrap();
        db.cover(TEST_DATA_FROM, "now() + interval '7 days'", "30 days")
            .await;
        db
    }

    /// Makes partitions of `monitor_results` (of `step`) so that every slot from `from` to
    /// `until` (SQL timestamptz expressions) has one.
    pub async fn cover(&self, from: &str, until: &str, step: &str) {
        self.exec(&format!(
            "SELECT monitor_results_cover(t, interval '{step}') \
             FROM generate_series({from}, {until}, interval '1 hour') AS t; \
             SELECT monitor_results_cover({until}, interval '{step}')"
        ))
        .await;
    }

    /// Runs one or more statements, panicking on error.
    pub async fn exec(&self, sql: &str) {
        self.conn.execute_unprepared(sql).await.unwrap();
    }

    /// The first column of every row, as text.
    pub async fn query_strings(&self, sql: &str) -> Vec<String> {
        self.conn
            .query_all_raw(Statement::from_string(DbBackend::Postgres, sql))
            .await
            .unwrap()
            .iter()
            .map(|row| row.try_get_by_index::<String>(0).unwrap())
            .collect()
    }

    /// Drops the database (with any connection still open to it). An autovacuum worker busy in
    /// it makes FORCE fail for a role that is not a superuser; it is gone within moments, so the
    /// drop is retried for up to 10 s.
    pub async fn drop(self) {
        self.conn.close().await.unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match self
                .admin
                .execute_unprepared(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
                .await
            {
                Ok(_) => return,
                Err(e) if std::time::Instant::now() < deadline => {
                    eprintln!("DROP DATABASE {} failed ({e}); retrying", self.name);
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                Err(e) => panic!("cannot drop {}: {e}", self.name),
            }
        }
    }
}

#[cfg(test)]
#[test]
fn with_database_replaces_only_the_name() {
    assert_eq!(
        with_database(
            "postgres://u:p@127.0.0.1:5432/pingpipe?sslmode=disable",
            "x"
        ),
        "postgres://u:p@127.0.0.1:5432/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
}
