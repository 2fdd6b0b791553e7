//! The API's one error type. Each variant becomes a GraphQL error with `extensions.code`;
//! internal details are logged here, once, and never sent to the client.

use async_graphql::ErrorExtensions;

/// Deliberately not `Display`: `async_graphql::Error` converts from anything that displays,
/// which would let a bare `?` drop `extensions.code`. Without it, only `.gql()` / `.extend()`
/// compile.
#[derive(Debug)]
pub enum ApiError {
    BadInput(String),
    NotFound(String),
    Unauthenticated,
    /// A limit of the service (not of the input) is reached.
    LimitExceeded(String),
    Internal(anyhow::Error),
}

impl ApiError {
    /// What the client is told.
    pub fn message(&self) -> String {
        match self {
            ApiError::BadInput(m) | ApiError::NotFound(m) | ApiError::LimitExceeded(m) => m.clone(),
            ApiError::Unauthenticated => {
                "this operation needs an API token: send `Authorization: Bearer <token>`".into()
            }
            ApiError::Internal(_) => "internal error".into(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadInput(_) => "BAD_USER_INPUT",
            ApiError::NotFound(_) => "NOT_FOUND",
            ApiError::Unauthenticated => "UNAUTHENTICATED",
            ApiError::LimitExceeded(_) => "LIMIT_EXCEEDED",
            ApiError::Internal(_) => "INTERNAL",
        }
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(e: sea_orm::DbErr) -> Self {
        ApiError::Internal(e.into())
    }
}

impl ErrorExtensions for ApiError {
    /// The GraphQL error: the message, and `extensions.code`. Internal details are logged
    /// here and replaced by "internal error".
    fn extend(&self) -> async_graphql::Error {
        if let ApiError::Internal(inner) = self {
            tracing::error!(error = %format!("{inner:#}"), "Request failed.");
        }
        let code = self.code();
        async_graphql::Error::new(self.message()).extend_with(|_, ext| ext.set("code", code))
    }
}

/// Converts service results for resolvers, keeping `extensions.code`.
pub trait IntoGql<T> {
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T> IntoGql<T> for ApiResult<T> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(|e| e.extend())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
