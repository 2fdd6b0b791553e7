//! GraphiQL's page at `GET /graphql`: `graphiql.html` from the dashboard's folder, which loads
//! React, graphql-ws and GraphiQL from that folder's `vendor/` (npm packages copied there by
//! `scripts/frontend.sh deps`). Nothing comes from another host, so it works offline, no
//! third-party script runs on the API's origin, and the page has no inline script. The page is
//! served at `/graphql` alone, never as a file, so switching GraphiQL off leaves it nowhere.

use std::path::PathBuf;
use std::sync::Arc;

use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// The page, in the dashboard's folder.
const PAGE: &str = "graphiql.html";

/// GraphiQL's bundle: absent when the npm packages were never installed.
const BUNDLE: &str = "vendor/graphiql.min.js";

const MISSING: &str = "GraphiQL's files are missing from the dashboard's folder: run \
     `scripts/frontend.sh deps` (`make up` does), or set PINGPIPE_API_FRONTEND_DIR to \
     frontend/public.\n";

/// The API's policy (`CONTENT_SECURITY_POLICY` in lib.rs) with two additions on this page alone;
/// scripts and connections stay this origin's only, and no other inline style is allowed.
/// - `font-src data:`: GraphiQL's stylesheet embeds its fonts (Roboto, Fira Code) as base64
///   `@font-face` sources.
/// - One hash in `style-src`: while one of GraphiQL's dialogs or menus is open, Radix's
///   react-remove-scroll-bar inserts a `<style>` that locks the page's scrolling. Its text depends
///   on the body's margins and scroll bar width; graphiql.css makes both 0, and this is the hash
///   of that text (GraphiQL 3.8.3; Chromium's console message names the new hash if an update
///   changes it, and the browser test opens a dialog). A page where it differs still works: the
///   style is refused, and the page behind the dialog, which does not scroll anyway, is not locked.
const PAGE_CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'sha256-Y/huXlwoYkVyQlxwSVcCi1RCDGDCSVBzDt0hYP9qlTc='; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'; object-src 'none'";

/// `GET /graphql`: the page as it is on disk now (like the dashboard's files, which ServeDir
/// reads per request), or 500 saying how to install what is missing.
pub async fn page(dir: Arc<PathBuf>) -> Response {
    let read = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || {
            if !dir.join(BUNDLE).is_file() {
                return Ok(None);
            }
            match std::fs::read_to_string(dir.join(PAGE)) {
                Ok(html) => Ok(Some(html)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.to_string()),
            }
        }
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    match read {
        Ok(Some(html)) => (
            [(
                header::CONTENT_SECURITY_POLICY,
                PAGE_CONTENT_SECURITY_POLICY,
            )],
            Html(html),
        )
            .into_response(),
        Ok(None) => {
            tracing::warn!(
                dir = %dir.display(),
                "GraphiQL's page or bundle is missing; run scripts/frontend.sh deps."
            );
            (StatusCode::INTERNAL_SERVER_ERROR, MISSING).into_response()
        }
        Err(error) => {
            tracing::warn!(dir = %dir.display(), %error, "Cannot read GraphiQL's page.");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "GraphiQL's page cannot be read\n",
            )
                .into_response()
        }
    }
}

/// Whether `path` names the page's file as ServeDir resolves a path: percent-decoded, empty and
/// `.` segments skipped (so `//graphiql.html`, `/./graphiql.html` and `/graphiql%2Ehtml` too).
fn names_page(path: &str) -> bool {
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    let mut segments = decoded.split('/').filter(|s| !s.is_empty() && *s != ".");
    segments.next() == Some(PAGE) && segments.next().is_none()
}

/// Middleware for the dashboard's files: the page's file is not one of them (404).
pub async fn hide_page(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if names_page(request.uri().path()) {
        return StatusCode::NOT_FOUND.into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::names_page;

    #[test]
    fn names_page_sees_through_encodings_and_dot_segments() {
        for path in [
            "/graphiql.html",
            "//graphiql.html",
            "/./graphiql.html",
            "/graphiql.html/",
            "/graphiql%2Ehtml",
            "/%67raphiql.html",
            "/%2Fgraphiql.html",
        ] {
            assert!(names_page(path), "{path}");
        }
        for path in [
            "/",
            "/graphiql.js",
            "/graphiql.css",
            "/vendor/graphiql.html",
        ] {
            assert!(!names_page(path), "{path}");
        }
    }
}
