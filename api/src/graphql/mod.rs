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

/// The schema for introspection queries alone (everything else is refused): without the depth
/// and complexity limits, which count `__schema { types { fields { type { ofType … } } } }` as
/// data and refused the standard introspection queries of graphql-js and graphql-core. What it
/// can answer is bounded by the schema itself.
pub fn build_introspection(live: broadcast::Sender<Arc<LiveResult>>, limits: Limits) -> ApiSchema {
    Schema::build(
        query::Query,
        mutation::Mutation,
        subscription::SubscriptionRoot,
    )
    .data(limits)
    .data(live)
    .introspection_only()
    .finish()
}

/// Whether the operation `operation_name` picks from `query` selects nothing but `__schema`,
/// `__type` and `__typename` at its root (false when it does not parse).
pub fn is_introspection(query: &str, operation_name: Option<&str>) -> bool {
    use async_graphql::parser::types::{DocumentOperations, Selection};
    let Ok(document) = async_graphql::parser::parse_query(query) else {
        return false;
    };
    let operation = match (&document.operations, operation_name) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        _ => None,
    };
    operation.is_some_and(|op| {
        let items = &op.node.selection_set.node.items;
        !items.is_empty()
            && items.iter().all(|item| match &item.node {
                Selection::Field(field) => field.node.name.node.starts_with("__"),
                _ => false,
            })
    })
}

/// Gives every error of `response` that has none an `extensions.code` a client can act on:
/// `GRAPHQL_PARSE_FAILED`, `QUERY_TOO_DEEP`, `QUERY_TOO_COMPLEX`, `GRAPHQL_VALIDATION_FAILED`
/// (refused before running), or `INTERNAL`.
pub fn add_error_codes(response: &mut async_graphql::Response, parsed: bool) {
    for error in &mut response.errors {
        let has_code = error
            .extensions
            .as_ref()
            .is_some_and(|e| e.get("code").is_some());
        if has_code {
            continue;
        }
        let code = if !parsed {
            "GRAPHQL_PARSE_FAILED"
        } else if error.message.contains("nested too deep") {
            "QUERY_TOO_DEEP"
        } else if error.message.contains("too complex") {
            "QUERY_TOO_COMPLEX"
        } else if error.path.is_empty() {
            "GRAPHQL_VALIDATION_FAILED"
        } else {
            "INTERNAL"
        };
        error
            .extensions
            .get_or_insert_with(Default::default)
            .set("code", code);
    }
}

/// The schema in SDL, as committed in `schema.graphql`.
pub fn sdl() -> String {
    build(None, broadcast::channel(1).0, Limits { max_page: 1 }, true).sdl()
}
