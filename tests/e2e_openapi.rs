//! The OpenAPI document the daemon serves matches the routes it serves: every documented
//! path and method answers (never "no such endpoint" or "method not allowed"), every other
//! method on a documented path is refused with 405, and the README's route table lists exactly
//! the documented operations.

mod support;

use std::collections::BTreeSet;

use support::Env;

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"];

fn sample(template: &str) -> String {
    template
        .replace("{code}", "city")
        .replace("{id}", "37010000001320000001")
        .replace("{platform}", "37010000002000000001")
}

#[test]
fn the_served_document_matches_the_served_routes_and_the_readme() {
    let env = Env::new("");
    let admin = env.token("admin", "e2e admin");
    let daemon = env.start();
    let api = daemon.client(Some(&admin));
    let spec = daemon
        .client(None)
        .get("/api/v1/openapi.json")
        .expect(200)
        .json();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(spec["info"]["title"], "vigil");

    let mut documented = BTreeSet::new();
    for (template, item) in spec["paths"].as_object().unwrap() {
        let path = sample(template);
        for method in METHODS {
            let r = api.request(method, &path, None, b"");
            if item.get(method.to_lowercase()).is_some() {
                documented.insert((method.to_owned(), template.clone()));
                assert_ne!(r.status, 405, "{method} {path}: {}", r.text());
                if r.status == 404 {
                    assert_ne!(r.json()["type"], "/problems/no-route", "{method} {path}");
                }
            } else {
                assert_eq!(
                    r.status, 405,
                    "{method} {path} is served but not documented"
                );
            }
        }
    }
    assert!(documented.len() >= 40, "{}", documented.len());

    // Paths that are not documented are not served.
    let r = api.get("/api/v1/cameras/37010000001320000001/secrets");
    assert_eq!(r.json()["type"], "/problems/no-route");

    // The README's route table lists exactly the documented operations.
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let listed: BTreeSet<(String, String)> = readme
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let method = cells.get(1)?.trim_matches('`');
            let path = cells.get(2)?.trim_matches('`');
            (METHODS.contains(&method) && path.starts_with("/api/v1/"))
                .then(|| (method.to_owned(), path.to_owned()))
        })
        .collect();
    let missing: Vec<_> = documented.difference(&listed).collect();
    let extra: Vec<_> = listed.difference(&documented).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "README route table out of date; missing {missing:?}, not served {extra:?}"
    );
    daemon.stop();
}
