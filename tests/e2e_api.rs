//! End to end through the real daemon: tokens from the CLI, a hand-made dataset imported
//! through the API (CSV in GB18030, CSV in UTF-8, JSON), every report checked against values
//! computed by hand (see `support/dataset.rs`), lists, history, and record changes with their
//! audit trail.

mod support;

use serde_json::{json, Value};
use support::dataset::*;
use support::{gb18030, Client, Env};

fn import_dataset(api: &Client) {
    let r = api
        .post("/api/v1/imports/grids", "text/csv", &gb18030(GRIDS_CSV))
        .expect(200)
        .json();
    assert_eq!(
        (r["applied"].as_u64(), r["rows"].as_u64()),
        (Some(6), Some(6))
    );
    assert_eq!(r["encoding"], "gb18030");
    assert_eq!(r["mode"], "all_or_nothing");
    let r = api
        .post(
            "/api/v1/imports/sites",
            "application/json",
            SITES_JSON.as_bytes(),
        )
        .expect(200)
        .json();
    assert_eq!(r["applied"], 6);
    let r = api
        .post(
            "/api/v1/imports/cameras",
            "text/csv; charset=gb18030",
            &gb18030(CAMERAS_CSV),
        )
        .expect(200)
        .json();
    assert_eq!(r["applied"], 6, "{r}");
    let r = api
        .post(
            "/api/v1/imports/intervals",
            "text/csv",
            INTERVALS_CSV.as_bytes(),
        )
        .expect(200)
        .json();
    assert_eq!(r["applied"], 13);
    let r = api
        .post(
            "/api/v1/imports/diagnoses",
            "application/json",
            DIAGNOSES_JSON.as_bytes(),
        )
        .expect(200)
        .json();
    assert_eq!(r["applied"], 3);
}

fn figure<'a>(report: &'a Value, kind: &str) -> &'a Value {
    report["figures"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["kind"] == kind))
        .unwrap_or_else(|| panic!("no figure {kind} in {report}"))
}

const C: &str = "370100000013200000";

#[test]
fn hand_made_dataset_gives_hand_computed_reports() {
    let env = Env::new("");
    let admin = env.token("admin", "e2e admin");
    let daemon = env.start();
    let api = daemon.client(Some(&admin));
    import_dataset(&api);

    // The figure report.
    let rep = api
        .get(&format!(
            "/api/v1/reports/figures?grid=city&at={AT}&window=24h&limit=1000"
        ))
        .expect(200)
        .json();
    assert_eq!(rep["name"], "测试市");
    assert_eq!(rep["cameras_in_service"], 5);
    assert_eq!(rep["cameras_scheduled"], 6);
    assert_eq!(rep["sites"], 6);
    assert_eq!(rep["cameras_without_diagnosis"], 2);
    assert_eq!(rep["uplink_registered"], true);
    assert_eq!(rep["window"]["start"], "2024-05-31T00:00:00.000Z");
    for &(kind, n, d, verdict) in CITY_FIGURES {
        let f = figure(&rep, kind);
        assert_eq!(
            (
                f["ratio"]["numerator"].as_u64(),
                f["ratio"]["denominator"].as_u64()
            ),
            (Some(n), Some(d)),
            "{kind}: {f}"
        );
        assert_eq!(f["verdict"]["verdict"], verdict, "{kind}: {f}");
    }
    let coverage = figure(&rep, "coverage");
    assert_eq!(coverage["target"], "100/100");
    assert_eq!(
        coverage["failing"]["items"],
        json!([
            {"id": {"site": "S2"}, "reason": "no_working_camera", "detail": null},
            {"id": {"site": "S3"}, "reason": "no_working_camera", "detail": null},
            {"id": {"site": "S6"}, "reason": "no_camera", "detail": null},
        ])
    );
    let children: Vec<(String, u64, u64)> = rep["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let cov = c["figures"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["kind"] == "coverage")
                .unwrap();
            (
                c["grid"].as_str().unwrap().to_owned(),
                cov["ratio"]["numerator"].as_u64().unwrap(),
                cov["ratio"]["denominator"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(children, [("t1".into(), 1, 3), ("t2".into(), 1, 2)]);

    // The same report as CSV.
    let csv = api
        .get(&format!(
            "/api/v1/reports/figures?grid=city&at={AT}&format=csv"
        ))
        .expect(200);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(csv.body.starts_with(b"\xEF\xBB\xBF"));
    let text = csv.text();
    let line = text
        .lines()
        .find(|l| l.contains(",coverage,"))
        .expect("coverage line");
    assert!(line.contains(",覆盖率,"), "{line}");
    assert!(line.ends_with(",sites,2,5,40.00,100.00,fail,,3"), "{line}");
    assert_eq!(text.lines().count(), 16);

    // Failing items of one figure.
    let failing = api
        .get(&format!(
            "/api/v1/reports/failing?grid=city&at={AT}&figure=registration"
        ))
        .expect(200)
        .json();
    assert_eq!(failing["total"], 1);
    assert_eq!(
        failing["items"][0],
        json!({"id": {"camera": format!("{C}03")}, "reason": "incomplete_record", "detail": "location"})
    );

    // Ranking of the towns.
    let ranking = api
        .get(&format!(
            "/api/v1/reports/ranking?grid=city&at={AT}&window=24h"
        ))
        .expect(200)
        .json();
    assert_eq!(ranking["depth"], 1);
    let grids = ranking["grids"].as_array().unwrap();
    assert_eq!(grids.len(), RANKING.len());
    for (got, &(rank, grid, score)) in grids.iter().zip(RANKING) {
        assert_eq!(got["rank"], rank);
        assert_eq!(got["grid"], grid);
        let s = got["score"].as_f64().unwrap();
        assert!((s - score).abs() < 1e-9, "{grid}: {s} vs {score}");
    }
    let csv = api
        .get(&format!(
            "/api/v1/reports/ranking?grid=city&at={AT}&format=csv"
        ))
        .expect(200)
        .text();
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .starts_with("1,t2,二镇,67.41,50.00,"),
        "{csv}"
    );

    // Blind spots.
    let spots = api
        .get(&format!("/api/v1/reports/blind-spots?grid=city&at={AT}"))
        .expect(200)
        .json();
    assert_eq!(spots["total"], 1);
    assert_eq!(spots["items"][0]["id"], "S6");
    assert_eq!(spots["items"][0]["name"], "工商银行");
    assert_eq!(spots["items"][0]["point_class"], "class1");

    // Lists: offline cameras in a grid, a page at a time.
    let page = api
        .get(&format!(
            "/api/v1/cameras?grid=city&online=false&at={AT}&limit=1"
        ))
        .expect(200)
        .json();
    assert_eq!(page["total"], 2);
    assert_eq!(page["items"][0]["record"]["id"], format!("{C}02"));
    assert_eq!(page["items"][0]["online"], false);
    assert_eq!(page["next"], format!("{C}02"));
    let page = api
        .get(&format!(
            "/api/v1/cameras?grid=city&online=false&at={AT}&limit=1&after={C}02"
        ))
        .expect(200)
        .json();
    assert_eq!(page["items"][0]["record"]["id"], format!("{C}05"));
    assert_eq!(page["next"], Value::Null);
    let page = api
        .get(&format!("/api/v1/cameras?grid=t2&online=true&at={AT}"))
        .expect(200)
        .json();
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["record"]["id"], format!("{C}04"));
    let sites = api.get("/api/v1/sites?grid=t2").expect(200).json();
    let ids: Vec<&str> = sites["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["S4", "S5", "S6"]);
    let sites = api.get("/api/v1/sites?group=2").expect(200).json();
    assert_eq!(sites["total"], 2, "{sites}");

    // Credentials were split off the URL and never come back.
    let c1 = api
        .get(&format!("/api/v1/cameras/{C}01?at={AT}"))
        .expect(200);
    assert_eq!(c1.json()["record"]["rtsp_url"], "rtsp://10.0.0.1/live");
    assert_eq!(c1.json()["record"]["builder"], "government_public");
    assert!(!c1.text().contains("secret"));

    // Status history per camera, per kind, over a range.
    let h = api
        .get(&format!(
            "/api/v1/cameras/{C}02/history?kind=online&from=2024-05-30T00:00:00Z&to={AT}"
        ))
        .expect(200)
        .json();
    assert_eq!(
        h,
        json!([{"subject": format!("{C}02"), "kind": "online",
                "start": "2024-05-31T00:00:00.000Z", "end": "2024-05-31T12:00:00.000Z"}])
    );
    let h = api
        .get(&format!(
            "/api/v1/cameras/{C}01/history?from=2024-05-30T00:00:00Z&to={AT}&format=csv"
        ))
        .expect(200)
        .text();
    let lines: Vec<&str> = h.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines[0], "subject,kind,start,end");
    assert_eq!(lines.len(), 4, "{h}");
    assert!(
        lines[1].ends_with(",online,2024-05-30T00:00:00.000Z,"),
        "{h}"
    );
    let d = api
        .get(&format!(
            "/api/v1/cameras/{C}03/diagnoses?from=2024-05-31T00:00:00Z&to={AT}"
        ))
        .expect(200)
        .json();
    assert_eq!(d[0]["check"], "blur");
    assert_eq!(d[0]["passed"], false);
    let uplinks = api
        .get(&format!("/api/v1/uplinks?at={AT}"))
        .expect(200)
        .json();
    assert_eq!(
        uplinks,
        json!([{"platform": "37010000002000000001", "registered": true, "at": "2024-06-01T00:00:00.000Z"}])
    );

    // Dated targets and deadline progress.
    let targets = api
        .put_json(
            "/api/v1/targets",
            &json!({
                "coverage": {"ratio": "100%", "due": "2024-07-01T00:00:00Z"},
                "networking_all": {"ratio": "80%", "due": "2024-12-31T00:00:00Z"},
                "registration": {"ratio": "1", "due": "2024-05-15T00:00:00Z"},
            }),
        )
        .expect(200)
        .json();
    assert_eq!(targets["coverage"]["due"], "2024-07-01T00:00:00.000Z");
    assert_eq!(targets["intact_public_areas"]["ratio"], "98/100");
    let d = api
        .get(&format!(
            "/api/v1/reports/deadlines?grid=city&at={AT}&window=24h&trend=7d"
        ))
        .expect(200)
        .json();
    let got: Vec<(&str, &str)> = d["deadlines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["figure"].as_str().unwrap(), p["status"].as_str().unwrap()))
        .collect();
    // Coverage went from 0/5 a week earlier to 2/5: projected past 100% by July.
    assert_eq!(
        got,
        [
            ("coverage", "on_track"),
            ("networking_all", "met"),
            ("registration", "overdue")
        ]
    );
    let csv = api
        .get(&format!(
            "/api/v1/reports/deadlines?grid=city&at={AT}&format=csv"
        ))
        .expect(200)
        .text();
    assert!(
        csv.contains("city,coverage,100.00,2024-07-01T00:00:00.000Z,2,5,40.00,"),
        "{csv}"
    );

    daemon.stop();
}

#[test]
fn records_are_created_changed_and_deleted_with_an_audit_trail() {
    let env = Env::new("[ids]\nrtsp_domain = \"3701000000\"\n");
    let admin = env.token("admin", "e2e admin");
    let auditor = env.token("auditor", "e2e auditor");
    let daemon = env.start();
    let api = daemon.client(Some(&admin));
    api.post("/api/v1/imports/grids", "text/csv", &gb18030(GRIDS_CSV))
        .expect(200);

    // Grids.
    let g = api
        .post_json(
            "/api/v1/grids",
            &json!({"code": "v22", "name": "四村", "level_label": "村/居", "parent": "t2"}),
        )
        .expect(201)
        .json();
    assert_eq!(g["parent"], "t2");
    let p = api
        .post_json(
            "/api/v1/grids",
            &json!({"code": "v22", "name": "x", "parent": "t2"}),
        )
        .problem(409);
    assert_eq!(p["type"], "/problems/conflict");
    api.put_json(
        "/api/v1/grids/v22",
        &json!({"code": "", "name": "四村（新）", "level_label": "村/居", "parent": "t2"}),
    )
    .expect(200);
    let level = api
        .get("/api/v1/grids?depth=2&within=t2")
        .expect(200)
        .json();
    assert_eq!(level["items"][1]["name"], "四村（新）");
    let up = api.get("/api/v1/grids/v22/ancestors").expect(200).json();
    assert_eq!(up["items"][0]["code"], "t2");
    assert_eq!(up["items"][1]["code"], "city");
    api.delete("/api/v1/grids/v22").expect(204);
    api.get("/api/v1/grids/v22").problem(404);
    let p = api.delete("/api/v1/grids/t1").problem(409);
    assert!(p["detail"].as_str().unwrap().contains("child"), "{p}");

    // Sites.
    api.post_json(
        "/api/v1/sites",
        &json!({"id": "S9", "name": "北站", "category": "busy_area", "point_class": "2", "grid": "v21"}),
    )
    .expect(201);
    api.put_json(
        "/api/v1/sites/S9",
        &json!({"name": "火车北站", "category": "busy_area", "point_class": "2", "grid": "v21"}),
    )
    .expect(200);
    assert_eq!(
        api.get("/api/v1/sites/S9").expect(200).json()["name"],
        "火车北站"
    );

    // A camera filed without an ID (assigned under the configured domain), with credentials.
    let cam = api
        .post_json(
            "/api/v1/cameras",
            &json!({
                "effective_from": "2024-06-01T00:00:00Z", "name": "北站进站口", "source": "rtsp",
                "rtsp_url": "rtsp://op:pa55w0rd@10.9.9.9:554/ch1", "grid": "v21", "sites": "S9",
                "builder": "government_public", "point_class": "1", "lat": 36.7, "lon": 117.1,
            }),
        )
        .expect(201)
        .json();
    let id = cam["record"]["id"].as_str().unwrap().to_owned();
    assert_eq!(id, "37010000001320000001");
    assert_eq!(cam["record"]["rtsp_url"], "rtsp://10.9.9.9:554/ch1");
    let mut moved = cam["record"].clone();
    moved["effective_from"] = json!("2024-06-02T00:00:00Z");
    moved["grid"] = json!("v11");
    moved["sites"] = Value::Null;
    api.put_json(&format!("/api/v1/cameras/{id}"), &moved)
        .expect(200);
    let versions = api
        .get(&format!("/api/v1/cameras/{id}/versions"))
        .expect(200)
        .json();
    let grids: Vec<&str> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["grid"].as_str().unwrap())
        .collect();
    assert_eq!(grids, ["v21", "v11"]);
    let d = api
        .post_json(
            &format!("/api/v1/cameras/{id}/decommission"),
            &json!({"at": "2024-06-03T00:00:00Z"}),
        )
        .expect(200)
        .json();
    assert_eq!(d["record"]["decommissioned_at"], "2024-06-03T00:00:00.000Z");
    // The site is still watched by the camera's past versions.
    api.delete("/api/v1/sites/S9").problem(409);
    api.delete(&format!("/api/v1/cameras/{id}")).expect(204);
    let p = api.get(&format!("/api/v1/cameras/{id}")).problem(404);
    assert_eq!(p["type"], "/problems/not-found");
    api.delete("/api/v1/sites/S9").expect(204);

    // Tokens made through the API work at once.
    let made = api
        .post_json(
            "/api/v1/tokens",
            &json!({"role": "operator", "name": "值班员"}),
        )
        .expect(201)
        .json();
    let op = made["token"].as_str().unwrap().to_owned();
    let me = daemon
        .client(Some(&op))
        .get("/api/v1/me")
        .expect(200)
        .json();
    assert_eq!(me["role"], "operator");
    assert_eq!(me["name"], "值班员");

    // The audit trail, read by the auditor.
    let audit = daemon.client(Some(&auditor));
    let log = audit.get("/api/v1/audit?limit=1000").expect(200);
    let text = log.text();
    assert!(
        !text.contains("pa55w0rd"),
        "credentials leaked into the audit log"
    );
    assert!(
        !text.contains(&op[19..]),
        "a token secret leaked into the audit log"
    );
    let entries = log.json()["entries"].as_array().unwrap().clone();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "token.create",
            "token.create",
            "import.grids",
            "grid.create",
            "grid.update",
            "grid.delete",
            "site.create",
            "site.update",
            "camera.create",
            "camera.update",
            "camera.decommission",
            "camera.delete",
            "site.delete",
            "token.create",
        ]
    );
    let admin_id = &admin[6..18];
    assert!(entries[0]["actor"].as_str().unwrap().starts_with("cli:"));
    let import = &entries[2];
    assert_eq!(import["actor"], format!("token:{admin_id}"));
    assert_eq!(import["after"]["applied"], 6);
    assert_eq!(import["after"]["encoding"], "gb18030");
    assert_eq!(entries[4]["before"]["name"], "四村");
    assert_eq!(entries[4]["after"]["name"], "四村（新）");
    assert_eq!(entries[8]["after"]["rtsp_credentials_supplied"], true);
    assert_eq!(entries[9]["before"]["grid"], "v21");
    assert_eq!(entries[9]["after"]["record"]["grid"], "v11");
    assert_eq!(entries[11]["before"].as_array().unwrap().len(), 3);
    // Cursor paging gives the same entries.
    let first = audit.get("/api/v1/audit?limit=5").expect(200).json();
    let next = first["next"].as_str().unwrap().to_owned();
    let second = audit
        .get(&format!("/api/v1/audit?limit=5&cursor={next}"))
        .expect(200)
        .json();
    assert_eq!(second["entries"][0]["seq"], entries[5]["seq"]);

    daemon.stop();
}
