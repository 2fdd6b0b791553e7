//! The rules every operation is held to, over HTTP and over the WebSocket alike (an
//! async-graphql extension, so both transports go through it): cost limits that count pages
//! and statements (refused before validation), a time limit for queries and mutations, and an
//! `extensions.code` on every error sent.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextPrepareRequest,
    NextRequest, NextSubscribe,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, Response, ServerError, ServerResult, Variables};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

/// As graphql-js' `MaxIntrospectionDepthRule` (which refuses 3).
const MAX_INTROSPECTION_DEPTH: u64 = 2;

/// `__schema`/`__type` fields in one document (tools send one; aliases would repeat a whole
/// schema in one answer).
const MAX_INTROSPECTION_ROOTS: u64 = 5;

/// The limits, shared by every operation of a schema.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Most an operation may cost (see [`super::cost`]): every field counts one, and what a
    /// connection selects counts `first` times.
    pub max_cost: u64,
    /// Most fields that send a statement an operation may hold (each alias counts).
    pub max_statements: u64,
    /// Longest a query or mutation may run (subscriptions run until closed).
    pub timeout: Duration,
}

impl ExtensionFactory for Rules {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(*self)
    }
}

/// A WebSocket connection's slot, held by a query while it runs.
struct QuerySlot(#[allow(dead_code)] tokio::sync::OwnedSemaphorePermit);

/// Whether the operation `name` picks from `document` is a query or a mutation (false for a
/// subscription, and when there is no such operation: validation says so).
fn runs_once(document: &ExecutableDocument, name: Option<&str>) -> bool {
    use async_graphql::parser::types::OperationType;
    super::operation(document, name).is_some_and(|op| op.ty != OperationType::Subscription)
}

/// An error about the whole request (no position), with `code`.
fn refusal(message: String, code: &str) -> ServerError {
    with_code(ServerError::new(message, None), code)
}

/// Sets `code` on `error` unless it has one, and returns it.
fn with_code(mut error: ServerError, code: &str) -> ServerError {
    let extensions = error.extensions.get_or_insert_with(Default::default);
    if extensions.get("code").is_none() {
        extensions.set("code", code);
    }
    error
}

/// Gives every error of `response` that has none a code a client can act on: `QUERY_TOO_DEEP`,
/// `GRAPHQL_VALIDATION_FAILED` (refused before running: no path), or `INTERNAL`. Parse errors
/// and the cost limit set theirs where they arise.
fn add_codes(mut response: Response) -> Response {
    response.errors = std::mem::take(&mut response.errors)
        .into_iter()
        .map(|error| {
            let code = if error.message.contains("nested too deep") {
                "QUERY_TOO_DEEP"
            } else if error.path.is_empty() {
                "GRAPHQL_VALIDATION_FAILED"
            } else {
                "INTERNAL"
            };
            with_code(error, code)
        })
        .collect();
    response
}

#[async_graphql::async_trait::async_trait]
impl Extension for Rules {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        add_codes(next.run(ctx).await)
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        next.run(ctx, stream).map(add_codes).boxed()
    }

    /// Refuses an operation that costs more than the limits, saying what it costs: right after
    /// parsing, before async-graphql looks at the document (its recursion-depth check and its
    /// validation expand every fragment spread, which a document of doubling fragments makes
    /// exponential). The parsed document is kept for the rest of the request.
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let brackets = super::cost::bracket_depth(&request.query);
        if brackets > super::cost::MAX_BRACKETS {
            let message = format!(
                "Query is nested too deep: brackets nest {brackets} deep, at most {}",
                super::cost::MAX_BRACKETS
            );
            return Err(refusal(message, "QUERY_TOO_DEEP"));
        }
        let document = async_graphql::parser::parse_query(&request.query)
            .map_err(|e| with_code(e.into(), "GRAPHQL_PARSE_FAILED"))?;
        let cost = super::cost::of_document(&document, &request.variables, self.max_cost);
        if cost.too_deep {
            let max = super::cost::MAX_RECURSION;
            let message = format!(
                "Query is nested too deep: selections (through fragments too) may nest {max} deep"
            );
            return Err(refusal(message, "QUERY_TOO_DEEP"));
        }
        if let Some(why) = &cost.too_wide {
            let message = format!(
                "Query is too wide: {why} (at most {} arguments or directives on one selection, \
                 {} variables in one operation, names of {} bytes)",
                super::cost::MAX_ARGUMENTS,
                super::cost::MAX_VARIABLES,
                super::cost::MAX_NAME_BYTES
            );
            return Err(refusal(message, "QUERY_TOO_COMPLEX"));
        }
        if let Some(name) = &cost.unused {
            let message = format!("Fragment \"{name}\" is never used");
            return Err(refusal(message, "GRAPHQL_VALIDATION_FAILED"));
        }
        let refuse = |message: String, code: &str, extra: [(&str, u64); 2]| {
            let mut error = refusal(message, code);
            if let Some(extensions) = error.extensions.as_mut() {
                for (name, value) in extra {
                    extensions.set(name, value);
                }
            }
            error
        };
        if cost.fields > self.max_cost {
            return Err(refuse(
                format!(
                    "Query is too complex: it costs {}, more than the limit of {} (each field \
                     counts 1 and what a connection selects counts `first` times; ask for \
                     smaller pages or fewer fields)",
                    cost.fields, self.max_cost
                ),
                "QUERY_TOO_COMPLEX",
                [("cost", cost.fields), ("maxCost", self.max_cost)],
            ));
        }
        if cost.statements > self.max_statements {
            return Err(refuse(
                format!(
                    "Query is too complex: {} of its fields read or write the database, more \
                     than the limit of {} (each alias counts)",
                    cost.statements, self.max_statements
                ),
                "QUERY_TOO_COMPLEX",
                [
                    ("statements", cost.statements),
                    ("maxStatements", self.max_statements),
                ],
            ));
        }
        if cost.introspection_depth > MAX_INTROSPECTION_DEPTH {
            return Err(refuse(
                format!(
                    "Introspection is nested too deep: `fields`, `interfaces`, \
                     `possibleTypes` and `inputFields` may nest {MAX_INTROSPECTION_DEPTH} \
                     deep, here {}",
                    cost.introspection_depth
                ),
                "QUERY_TOO_DEEP",
                [
                    ("depth", cost.introspection_depth),
                    ("maxDepth", MAX_INTROSPECTION_DEPTH),
                ],
            ));
        }
        if cost.introspection_roots > MAX_INTROSPECTION_ROOTS {
            return Err(refuse(
                format!(
                    "Query is too complex: it asks for `__schema` or `__type` {} times, more \
                     than the limit of {MAX_INTROSPECTION_ROOTS}",
                    cost.introspection_roots
                ),
                "QUERY_TOO_COMPLEX",
                [
                    ("introspections", cost.introspection_roots),
                    ("maxIntrospections", MAX_INTROSPECTION_ROOTS),
                ],
            ));
        }
        if let Some(conflict) = super::cost::first_conflict(&document) {
            return Err(refusal(conflict, "GRAPHQL_VALIDATION_FAILED"));
        }
        // Over the WebSocket a query or mutation takes one of its connection's slots while it
        // runs (the permit lives in the request's data, dropped when it is answered); a
        // subscription takes one in its resolver, for as long as it lasts.
        if let Some(slots) = ctx.data_opt::<super::subscription::Slots>()
            && runs_once(&document, request.operation_name.as_deref())
        {
            let slot = slots.take().map_err(|e| {
                // No position: it is about the connection, not a place in the document.
                let mut error = ServerError::new(e.message, None);
                error.extensions = e.extensions;
                error
            })?;
            request = request.data(QuerySlot(slot));
        }
        request.set_parsed_query(document);
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables)
            .await
            .map_err(|e| with_code(e, "GRAPHQL_PARSE_FAILED"))
    }

    /// Queries and mutations end after `timeout` with a `TIMEOUT` error, whichever transport
    /// brought them (over HTTP the request's 408 comes a second later).
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        match tokio::time::timeout(self.timeout, next.run(ctx, operation_name)).await {
            Ok(response) => response,
            Err(_) => {
                let message = format!(
                    "the operation did not finish within {}",
                    humantime::format_duration(self.timeout)
                );
                Response::from_errors(vec![refusal(message, "TIMEOUT")])
            }
        }
    }
}
