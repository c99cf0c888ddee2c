//! Router-level tests: the OpenAPI document against the routes actually served, fallbacks,
//! authentication and the body limit (in process, through `tower::ServiceExt::oneshot`).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use vigil_core::role::Role;
use vigil_core::time::Timestamp;
use vigil_index::Index;

use crate::problem::PROBLEM_JSON;
use crate::{router, ApiConfig, AppState, Subsystems};

struct Fixture {
    app: axum::Router,
    admin: String,
}

fn fixture(config: ApiConfig) -> Fixture {
    let index = Arc::new(Index::temporary().unwrap());
    let (_, admin) =
        crate::auth::issue(&index, Role::Admin, "test admin", Timestamp::EPOCH).unwrap();
    let app = router(AppState::new(index, config, Subsystems::default()));
    Fixture { app, admin }
}

async fn call(
    app: &axum::Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Body,
) -> (StatusCode, Option<String>, serde_json::Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let response = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = response.status();
    let media = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, media, json)
}

const METHODS: [&str; 7] = ["get", "post", "put", "delete", "patch", "options", "trace"];

fn sample_path(template: &str) -> String {
    template
        .replace("{code}", "g1")
        .replace("{id}", "37010000001320000001")
        .replace("{platform}", "37010000002000000001")
}

#[tokio::test]
async fn every_documented_operation_is_served_and_no_other_method_is() {
    let f = fixture(ApiConfig::default());
    let spec = serde_json::to_value(crate::openapi()).unwrap();
    let paths = spec["paths"].as_object().unwrap();
    assert!(paths.len() >= 20, "{}", paths.len());
    let mut operations = 0;
    for (template, item) in paths {
        assert!(template.starts_with("/api/v1/"), "{template}");
        let uri = sample_path(template);
        for m in METHODS {
            let method = Method::from_bytes(m.to_uppercase().as_bytes()).unwrap();
            let (status, _, body) = call(&f.app, method, &uri, Some(&f.admin), Body::empty()).await;
            if item.get(m).is_some() {
                operations += 1;
                assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{m} {uri}");
                assert_ne!(body["type"], "/problems/no-route", "{m} {uri}");
            } else {
                assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{m} {uri}: {body}");
                assert_eq!(body["type"], "/problems/method-not-allowed", "{m} {uri}");
            }
        }
    }
    assert!(operations >= 35, "{operations}");
}

/// Every route must be registered through `routes!` so that it is in the document: no plain
/// axum registration may appear in the route modules.
#[test]
fn no_route_bypasses_the_openapi_registration() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/routes");
    let mut files = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")];
    files.extend(
        std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "rs")),
    );
    assert!(files.len() >= 10);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for forbidden in [".route(", ".route_service(", ".nest_service("] {
            assert!(
                !text.contains(forbidden),
                "{} registers a route with {forbidden}, bypassing the OpenAPI document",
                file.display()
            );
        }
    }
}

#[tokio::test]
async fn the_served_document_is_the_generated_one() {
    let f = fixture(ApiConfig::default());
    let (status, media, served) = call(
        &f.app,
        Method::GET,
        "/api/v1/openapi.json",
        None,
        Body::empty(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(media.as_deref(), Some("application/json"));
    assert_eq!(served, serde_json::to_value(crate::openapi()).unwrap());
    assert!(served["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn unknown_paths_and_missing_tokens_are_problems() {
    let f = fixture(ApiConfig::default());
    let (status, media, body) =
        call(&f.app, Method::GET, "/api/v1/nothing", None, Body::empty()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(media.as_deref(), Some(PROBLEM_JSON));
    assert_eq!(body["type"], "/problems/no-route");

    let (status, _, body) = call(&f.app, Method::GET, "/api/v1/cameras", None, Body::empty()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["type"], "/problems/unauthorized");
    let (status, _, _) = call(
        &f.app,
        Method::GET,
        "/api/v1/cameras",
        Some("vigil_000000000000_0000000000000000000000000000000000000000000000000000000000000000"),
        Body::empty(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, body) = call(
        &f.app,
        Method::GET,
        "/api/v1/me",
        Some(&f.admin),
        Body::empty(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["role"], "admin");
}

#[tokio::test]
async fn oversized_bodies_get_413_problems() {
    let f = fixture(ApiConfig {
        max_body_bytes: 1024,
        ..ApiConfig::default()
    });
    let big = format!("code,name\n{}", "g,x\n".repeat(1000));
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/imports/grids")
        .header(header::AUTHORIZATION, format!("Bearer {}", f.admin))
        .header(header::CONTENT_TYPE, "text/csv")
        .body(Body::from(big))
        .unwrap();
    let response = f.app.clone().oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);

    // Without a Content-Length (streamed), the limit still holds.
    let stream = futures_like_stream("code,name\n".to_owned() + &"g,x\n".repeat(1000));
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/imports/grids")
        .header(header::AUTHORIZATION, format!("Bearer {}", f.admin))
        .header(header::CONTENT_TYPE, "text/csv")
        .body(stream)
        .unwrap();
    let response = f.app.clone().oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

/// A body without a known length.
fn futures_like_stream(text: String) -> Body {
    let chunks: Vec<Result<axum::body::Bytes, std::io::Error>> = text
        .into_bytes()
        .chunks(100)
        .map(|c| Ok(axum::body::Bytes::copy_from_slice(c)))
        .collect();
    Body::from_stream(futures::stream::iter(chunks))
}

#[test]
fn every_schema_reference_resolves() {
    fn refs(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("$ref", serde_json::Value::String(r)) => out.push(r.clone()),
                        _ => refs(v, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let spec = serde_json::to_value(crate::openapi()).unwrap();
    let mut all = Vec::new();
    refs(&spec, &mut all);
    assert!(all.len() > 20);
    for r in all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{r}"));
        assert!(
            spec["components"]["schemas"][name].is_object(),
            "{r} is referenced but not defined"
        );
    }
}
#[test]
fn figure_codes_in_the_document_are_the_serialised_ones() {
    let spec = serde_json::to_value(crate::openapi()).unwrap();
    let documented = &spec["components"]["schemas"]["FigureKind"]["enum"];
    let serialised: Vec<serde_json::Value> = vigil_core::target::FigureKind::ALL
        .iter()
        .map(|k| serde_json::to_value(k).unwrap())
        .collect();
    assert_eq!(documented, &serde_json::Value::Array(serialised));
}
