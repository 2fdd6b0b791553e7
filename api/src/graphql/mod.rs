//! The GraphQL schema: queries and mutations over targets (results, statistics, the declarative
//! `applyTargets` and the live subscription are still to come).

pub mod mutation;
pub mod query;
pub mod types;

use async_graphql::{EmptySubscription, Schema};
use sea_orm::DatabaseConnection;

pub type ApiSchema = Schema<query::Query, mutation::Mutation, EmptySubscription>;

/// Limits the resolvers apply.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_page: usize,
}

/// The schema, with its query depth and complexity limits.
pub fn build(db: Option<DatabaseConnection>, limits: Limits, introspection: bool) -> ApiSchema {
    let mut builder = Schema::build(query::Query, mutation::Mutation, EmptySubscription)
        .data(limits)
        .limit_depth(12)
        .limit_complexity(2_000);
    if let Some(db) = db {
        builder = builder.data(db);
    }
    if !introspection {
        builder = builder.disable_introspection();
    }
    builder.finish()
}

/// The schema in SDL, as committed in `schema.graphql`.
pub fn sdl() -> String {
    build(None, Limits { max_page: 1 }, true).sdl()
}
