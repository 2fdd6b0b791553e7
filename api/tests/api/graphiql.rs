//! GraphiQL's page: only at `GET /graphql`, only when switched on, and a clear answer when its
//! files were never installed. (That it is ours, with its scripts from this origin and a strict
//! policy: `health_readiness_metrics_and_graphiql_are_served`; that it works offline in a
//! browser: frontend/tests.)

use crate::{FrontendDir, spawn_app_with};

#[tokio::test]
async fn graphiql_says_how_to_install_its_files_when_they_are_missing() {
    let frontend = FrontendDir::new();
    std::fs::remove_file(frontend.0.join("vendor/graphiql.min.js")).unwrap();
    let missing_dir = frontend.0.join("no-such-folder");
    for dir in [frontend.path(), missing_dir.to_str().unwrap()] {
        let app = spawn_app_with(&["--frontend-dir", dir]).await;
        let response = app
            .client
            .get(format!("{}/graphql", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 500, "{dir}");
        let text = response.text().await.unwrap();
        assert!(text.contains("run `scripts/frontend.sh deps`"), "{text}");
        assert!(
            !text.contains(dir),
            "the answer does not show the server's folders"
        );
        app.finish().await;
    }
}

#[tokio::test]
async fn graphiql_page_is_served_at_graphql_only_and_not_when_switched_off() {
    let frontend = FrontendDir::new();
    for on in ["true", "false"] {
        let app = spawn_app_with(&["--frontend-dir", frontend.path(), "--graphiql", on]).await;
        let status = |path: &'static str| {
            let request = app.client.get(format!("{}{path}", app.base));
            async move { request.send().await.unwrap().status().as_u16() }
        };
        // Off: GET /graphql is no page (POST only); the page's file is not served as a file,
        // however the path is spelled (the dashboard's files are).
        assert_eq!(
            status("/graphql").await,
            if on == "true" { 200 } else { 405 }
        );
        for path in [
            "/graphiql.html",
            "//graphiql.html",
            "/graphiql%2Ehtml",
            "/%67raphiql.html",
        ] {
            assert_eq!(status(path).await, 404, "{path} with GraphiQL {on}");
        }
        assert_eq!(status("/index.html").await, 200);
        app.finish().await;
    }
}
