//! The GraphQL schema: queries, mutations and the live results subscription.

pub mod mutation;
pub mod query;
pub mod subscription;
pub mod types;

use std::sync::Arc;

use async_graphql::Schema;
use sea_orm::DatabaseConnection;
use tokio::sync::broadcast;

use crate::live::LiveResult;

pub type ApiSchema = Schema<query::Query, mutation::Mutation, subscription::SubscriptionRoot>;

/// Limits the resolvers apply.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_page: usize,
}

/// The schema, with its query depth and complexity limits.
pub fn build(
    db: Option<DatabaseConnection>,
    live: broadcast::Sender<Arc<LiveResult>>,
    limits: Limits,
    introspection: bool,
) -> ApiSchema {
    let mut builder = Schema::build(
        query::Query,
        mutation::Mutation,
        subscription::SubscriptionRoot,
    )
    .data(limits)
    .data(live)
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
    build(None, broadcast::channel(1).0, Limits { max_page: 1 }, true).sdl()
}
