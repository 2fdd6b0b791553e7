//! The rules every operation is held to, over HTTP and over the WebSocket alike (an
//! async-graphql extension, so both transports go through it): a cost limit that counts pages,
//! a time limit for queries and mutations, and an `extensions.code` on every error sent.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextRequest,
    NextSubscribe, NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Response, ServerError, ServerResult, ValidationResult, Variables};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

/// The limits, shared by every operation of a schema.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Most an operation may cost (see [`super::types::page_cost`]): every field counts one,
    /// and what a connection selects counts `first` times.
    pub max_cost: usize,
    /// Longest a query or mutation may run (subscriptions run until closed).
    pub timeout: Duration,
}

impl ExtensionFactory for Rules {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(*self)
    }
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

    /// Refuses, before anything runs, an operation that costs more than `max_cost`, saying
    /// what it costs.
    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        if result.complexity > self.max_cost {
            let error = ServerError::new(
                format!(
                    "Query is too complex: it costs {}, more than the limit of {} (each field \
                     counts 1 and what a connection selects counts `first` times; ask for \
                     smaller pages or fewer fields)",
                    result.complexity, self.max_cost
                ),
                None,
            );
            let mut error = with_code(error, "QUERY_TOO_COMPLEX");
            if let Some(extensions) = error.extensions.as_mut() {
                extensions.set("cost", result.complexity as u64);
                extensions.set("maxCost", self.max_cost as u64);
            }
            return Err(vec![error]);
        }
        Ok(result)
    }

    /// Queries and mutations end after `timeout` with a `TIMEOUT` error, whichever transport
    /// brought them (over HTTP the request's own timeout applies as well).
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        match tokio::time::timeout(self.timeout, next.run(ctx, operation_name)).await {
            Ok(response) => response,
            Err(_) => Response::from_errors(vec![with_code(
                ServerError::new(
                    format!(
                        "the operation did not finish within {}",
                        humantime::format_duration(self.timeout)
                    ),
                    None,
                ),
                "TIMEOUT",
            )]),
        }
    }
}
