//! GraphQL types of status pages (#16). Reading and writing a page's definition needs a token
//! (a page that is not public must not be found by its name); what a page shows is served at
//! `/status/<slug>.json` (see `crate::status`).

use async_graphql::{ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::types::parse_id;
use crate::error::{ApiError, ApiResult};
use crate::service::status::{Page, PageSpec};

/// A status page: a named set of targets shown at `/status/<slug>`.
pub struct StatusPage(pub Page);

/// The name a status page shows for a target.
#[derive(SimpleObject)]
pub struct StatusPageName {
    pub target_id: ID,
    pub name: String,
}

#[Object]
impl StatusPage {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Its address: `/status/<slug>` (unique).
    async fn slug(&self) -> &str {
        &self.0.slug
    }

    /// The page's path on the API's origin.
    async fn path(&self) -> String {
        format!("/status/{}", self.0.slug)
    }

    async fn title(&self) -> &str {
        &self.0.title
    }

    async fn description(&self) -> &str {
        &self.0.description
    }

    /// Readable without a token.
    async fn public(&self) -> bool {
        self.0.public
    }

    /// Whether the page shows its targets' URLs (and the causes of their incidents).
    async fn show_urls(&self) -> bool {
        self.0.show_urls
    }

    /// The targets shown, in the page's order (empty for a page chosen by tags).
    async fn target_ids(&self) -> Vec<ID> {
        self.0
            .target_ids
            .iter()
            .map(|id| ID(id.to_string()))
            .collect()
    }

    /// Tag filters choosing the targets shown (any one matching).
    async fn tags(&self) -> Vec<String> {
        self.0.tags.iter().map(ToString::to_string).collect()
    }

    /// The names shown; a target without one is shown as `Service <n>`, n its place on the page.
    async fn names(&self) -> Vec<StatusPageName> {
        self.0
            .names
            .iter()
            .map(|(id, name)| StatusPageName {
                target_id: ID(id.to_string()),
                name: name.clone(),
            })
            .collect()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// The name a status page shows for one of its targets (1 to 100 characters).
#[derive(InputObject)]
pub struct StatusPageNameInput {
    pub target_id: ID,
    pub name: String,
}

/// A status page: its address (`slug`: 1 to 63 of a-z, 0-9 and '-'), title, and exactly one of
/// `targetIds` (at most 200, shown in this order) and `tags` (filters `key`, `key:value`,
/// `key:*`; the first 200 matching targets by id).
#[derive(InputObject)]
pub struct StatusPageInput {
    pub slug: String,
    pub title: String,
    #[graphql(default)]
    pub description: String,
    /// Readable without a token (default false).
    #[graphql(default)]
    pub public: bool,
    /// Show the targets' URLs and incident causes (default false: display names only).
    #[graphql(default)]
    pub show_urls: bool,
    #[graphql(default)]
    pub target_ids: Vec<ID>,
    #[graphql(default)]
    pub tags: Vec<String>,
    #[graphql(default)]
    pub names: Vec<StatusPageNameInput>,
}

impl StatusPageInput {
    pub fn spec(self) -> ApiResult<PageSpec> {
        let in_field =
            |field: &str, e: ApiError| ApiError::BadInput(format!("{field}: {}", e.message()));
        let target_ids = self
            .target_ids
            .iter()
            .map(parse_id)
            .collect::<ApiResult<Vec<i32>>>()
            .map_err(|e| in_field("targetIds", e))?;
        let names = self
            .names
            .into_iter()
            .map(|n| Ok((parse_id(&n.target_id)?, n.name)))
            .collect::<ApiResult<Vec<_>>>()
            .map_err(|e| in_field("names", e))?;
        Ok(PageSpec {
            slug: self.slug,
            title: self.title,
            description: self.description,
            public: self.public,
            show_urls: self.show_urls,
            target_ids,
            tags: self.tags,
            names,
        })
    }
}

/// Parses a status page id.
pub fn parse_page_id(id: &ID) -> ApiResult<i64> {
    id.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::BadInput(format!("{:?} is not a status page id", id.as_str())))
}
