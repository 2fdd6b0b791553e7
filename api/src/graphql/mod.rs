//! The GraphQL schema: queries, mutations and the live results subscription.

pub mod check;
pub mod cost;
pub mod loaders;
pub mod mutation;
pub mod notify;
pub mod query;
pub mod rules;
pub mod states;
pub mod status;
pub mod subscription;
pub mod types;
pub mod windows;

use crate::live::Live;
use async_graphql::Schema;
use sea_orm::DatabaseConnection;

pub type ApiSchema = Schema<query::Query, mutation::Mutation, subscription::SubscriptionRoot>;

/// Limits the resolvers apply.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_page: usize,
}

/// Deepest a data query may nest.
pub const MAX_DEPTH: usize = 12;

/// The schema, with its depth limit and `rules` (cost, time, error codes).
pub fn build(
    db: Option<DatabaseConnection>,
    live: Live,
    limits: Limits,
    rules: rules::Rules,
    introspection: bool,
    thresholds: entity::state::Thresholds,
    notify: notify::NotifySettings,
) -> ApiSchema {
    let mut builder = Schema::build(
        query::Query,
        mutation::Mutation,
        subscription::SubscriptionRoot,
    )
    .data(limits)
    .data(live)
    .data(thresholds)
    .data(notify)
    .limit_depth(MAX_DEPTH)
    .extension(rules);
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
pub fn build_introspection(live: Live, limits: Limits, rules: rules::Rules) -> ApiSchema {
    Schema::build(
        query::Query,
        mutation::Mutation,
        subscription::SubscriptionRoot,
    )
    .data(limits)
    .data(live)
    .extension(rules)
    .introspection_only()
    .finish()
}

/// Whether the operation `operation_name` picks from `query` selects nothing but `__schema`,
/// `__type` and `__typename` at its root (false when it does not parse).
pub fn is_introspection(query: &str, operation_name: Option<&str>) -> bool {
    use async_graphql::parser::types::Selection;
    // Too deep to parse safely: the data schema's rules refuse it.
    if cost::bracket_depth(query) > cost::MAX_BRACKETS {
        return false;
    }
    let Ok(document) = async_graphql::parser::parse_query(query) else {
        return false;
    };
    operation(&document, operation_name).is_some_and(|op| {
        let items = &op.selection_set.node.items;
        !items.is_empty()
            && items.iter().all(|item| match &item.node {
                Selection::Field(field) => field.node.name.node.starts_with("__"),
                _ => false,
            })
    })
}

/// The operation `name` picks from `document` (without a name, the only one), as async-graphql
/// picks it; None when there is no such operation (validation says so).
pub fn operation<'a>(
    document: &'a async_graphql::parser::types::ExecutableDocument,
    name: Option<&str>,
) -> Option<&'a async_graphql::parser::types::OperationDefinition> {
    use async_graphql::parser::types::DocumentOperations;
    let operation = match (&document.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        _ => None,
    };
    operation.map(|op| &op.node)
}

/// The schema in SDL, as committed in `schema.graphql`.
pub fn sdl() -> String {
    let rules = rules::Rules {
        max_cost: 1,
        max_statements: 1,
        timeout: std::time::Duration::from_secs(1),
    };
    build(
        None,
        Live::new(1),
        Limits { max_page: 1 },
        rules,
        true,
        entity::state::Thresholds::default(),
        notify::NotifySettings::new(String::new(), std::time::Duration::from_secs(10)),
    )
    .sdl()
}
