//! Bad input through the real daemon: each case gets a 4xx problem document naming the row and
//! field and the reason, nothing of it is applied, and the service keeps serving.

mod support;

use serde_json::{json, Value};
use support::dataset::{CAMERAS_CSV, GRIDS_CSV, SITES_JSON};
use support::{gb18030, Client, Env};

/// (row, field) of each error of a problem document.
fn rows(p: &Value) -> Vec<(Option<u64>, Option<String>)> {
    p["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {p}"))
        .iter()
        .map(|e| (e["row"].as_u64(), e["field"].as_str().map(str::to_owned)))
        .collect()
}

fn reason(p: &Value, i: usize) -> String {
    p["errors"][i]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// What the data looks like, to show that a refused request changed nothing.
fn snapshot(api: &Client) -> (Value, Value, Value, Value, Value) {
    (
        api.get("/api/v1/grids?depth=1").expect(200).json(),
        api.get("/api/v1/grids?depth=2").expect(200).json(),
        api.get("/api/v1/sites?limit=1000").expect(200).json(),
        api.get("/api/v1/cameras?limit=1000&include_decommissioned=true&at=2024-06-01T00:00:00Z")
            .expect(200)
            .json(),
        api.get("/api/v1/cameras/37010000001320000001/history?from=2020-01-01T00:00:00Z")
            .expect(200)
            .json(),
    )
}

#[test]
fn bad_input_is_refused_by_row_and_field_and_nothing_is_applied() {
    let env = Env::new("[http]\nmax_body_bytes = 65536\n");
    let admin = env.token("admin", "e2e admin");
    let daemon = env.start();
    let api = daemon.client(Some(&admin));
    api.post("/api/v1/imports/grids", "text/csv", &gb18030(GRIDS_CSV))
        .expect(200);
    api.post(
        "/api/v1/imports/sites",
        "application/json",
        SITES_JSON.as_bytes(),
    )
    .expect(200);
    api.post(
        "/api/v1/imports/cameras",
        "text/csv",
        CAMERAS_CSV.as_bytes(),
    )
    .expect(200);
    let before = snapshot(&api);
    let csv = |path: &str, body: &str| api.post(path, "text/csv", body.as_bytes());

    // Invalid IDs: in a file (row and column named) and in the path.
    let p = csv(
        "/api/v1/imports/cameras",
        "id,effective_from,name,source,rtsp_url,grid\n\
         37010000001320000007,2024-01-01T00:00:00Z,ok,rtsp,rtsp://h/a,v11\n\
         3701000000132000000X,2024-01-01T00:00:00Z,bad,rtsp,rtsp://h/b,v11\n",
    )
    .problem(422);
    assert_eq!(p["type"], "/problems/invalid-input");
    assert_eq!(rows(&p), [(Some(3), Some("id".into()))]);
    assert!(reason(&p, 0).contains("position 20"), "{p}");
    let p = api.get("/api/v1/cameras/12345").problem(400);
    assert_eq!(rows(&p), [(None, Some("id".into()))]);
    assert!(reason(&p, 0).contains("20 digits"), "{p}");

    // Unknown grid and site references.
    let p = api
        .post(
            "/api/v1/imports/sites",
            "application/json",
            br#"[{"id": "S7", "name": "ok", "category": "school", "point_class": "1", "grid": "v21"},
                 {"id": "S8", "name": "bad", "category": "school", "point_class": "1", "grid": "nowhere"}]"#,
        )
        .problem(422);
    assert_eq!(rows(&p), [(Some(2), Some("grid".into()))]);
    assert!(reason(&p, 0).contains("nowhere"), "{p}");
    let p = csv(
        "/api/v1/imports/cameras",
        "id,effective_from,name,source,rtsp_url,grid,sites\n\
         37010000001320000008,2024-01-01T00:00:00Z,x,rtsp,rtsp://h/x,v11,S1;ghost\n",
    )
    .problem(422);
    assert_eq!(rows(&p), [(Some(2), Some("sites".into()))]);
    assert!(reason(&p, 0).contains("ghost"), "{p}");
    let p = api
        .post_json(
            "/api/v1/cameras",
            &json!({"id": "37010000001320000009", "effective_from": "2024-01-01T00:00:00Z",
                    "name": "x", "source": "rtsp", "rtsp_url": "rtsp://h/x", "grid": "nowhere"}),
        )
        .problem(422);
    assert_eq!(rows(&p), [(None, Some("grid".into()))]);

    // Cycles: within a file, and by moving a grid under its own descendant.
    let p = csv(
        "/api/v1/imports/grids",
        "code,name,parent\nx1,X1,x2\nx2,X2,x1\nx3,X3,city\n",
    )
    .problem(422);
    assert_eq!(
        rows(&p),
        [
            (Some(2), Some("parent".into())),
            (Some(3), Some("parent".into()))
        ]
    );
    assert!(reason(&p, 0).contains("cycle"), "{p}");
    let p = api
        .put_json(
            "/api/v1/grids/t1",
            &json!({"name": "一镇", "parent": "v11"}),
        )
        .problem(422);
    assert_eq!(rows(&p), [(None, Some("parent".into()))]);

    // Duplicates: within a file, and an existing code.
    let p = csv(
        "/api/v1/imports/grids",
        "code,name,parent\nd1,D1,city\nd1,D1 again,city\n",
    )
    .problem(422);
    assert_eq!(rows(&p), [(Some(3), Some("code".into()))]);
    assert!(reason(&p, 0).contains("twice"), "{p}");
    api.post_json("/api/v1/grids", &json!({"code": "city", "name": "again"}))
        .problem(409);

    // Malformed CSV: a row with a stray comma, a number that is not one, an unknown column;
    // every bad row of the file is named in one answer.
    let p = csv(
        "/api/v1/imports/sites",
        "id,name,category,point_class,grid,lat,lon\n\
         S7,好,school,1,v11,36.1,117.1\n\
         S8,坏,school,1,v11,36.1,117.1,extra\n\
         S9,坏,school,1,v11,north,117.1\n\
         S10,坏,spaceport,1,v11,36.1,117.1\n",
    )
    .problem(422);
    assert_eq!(
        rows(&p),
        [
            (Some(3), None),
            (Some(4), Some("lat".into())),
            (Some(5), Some("category".into()))
        ]
    );
    assert!(reason(&p, 0).contains("fields"), "{p}");
    assert!(
        p["detail"].as_str().unwrap().contains("3 bad row(s)"),
        "{p}"
    );
    let p = csv("/api/v1/imports/grids", "code,nmae\nz,Z\n").problem(422);
    assert_eq!(rows(&p), [(Some(1), Some("nmae".into()))]);
    let p = csv("/api/v1/imports/grids", "code,parent\nz,city\n").problem(422);
    assert_eq!(rows(&p), [(Some(1), Some("name".into()))]);

    // Overlapping and reversed history.
    let p = csv(
        "/api/v1/imports/intervals",
        "subject,kind,start,end\n\
         37010000001320000001,online,2024-05-01T00:00:00Z,2024-05-02T00:00:00Z\n\
         37010000001320000001,online,2024-05-01T12:00:00Z,2024-05-03T00:00:00Z\n\
         37010000001320000001,recording,2024-05-02T00:00:00Z,2024-05-01T00:00:00Z\n",
    )
    .problem(422);
    assert_eq!(
        rows(&p),
        [
            (Some(3), Some("start".into())),
            (Some(4), Some("end".into()))
        ]
    );
    assert!(reason(&p, 0).contains("overlaps"), "{p}");

    // Wrong encodings: undecodable bytes, a declared charset the bytes are not in, an
    // unknown charset.
    let mut garbage = b"code,name\nq,".to_vec();
    garbage.extend_from_slice(&[0xFF, 0xFF, 0xFF]);
    let p = api
        .post("/api/v1/imports/grids", "text/csv", &garbage)
        .problem(400);
    assert_eq!(p["type"], "/problems/bad-encoding");
    assert_eq!(rows(&p), [(None, Some("body".into()))]);
    assert!(reason(&p, 0).contains("offset 12"), "{p}");
    let p = api
        .post(
            "/api/v1/imports/grids",
            "text/csv; charset=utf-8",
            &gb18030("code,name\nq,网格\n"),
        )
        .problem(400);
    assert_eq!(p["type"], "/problems/bad-encoding");
    api.post(
        "/api/v1/imports/grids",
        "text/csv; charset=klingon",
        b"code,name\n",
    )
    .problem(415);
    api.post("/api/v1/imports/grids", "application/xml", b"<grids/>")
        .problem(415);

    // Bad JSON.
    let p = api
        .post("/api/v1/imports/grids", "application/json", b"[{\"code\": ")
        .problem(400);
    assert_eq!(p["type"], "/problems/bad-request");
    let p = api
        .request(
            "POST",
            "/api/v1/grids",
            Some("application/json"),
            b"{\"code\": 7}",
        )
        .problem(422);
    assert_eq!(rows(&p)[0].1.as_deref(), Some("code"));

    // Bad parameters name the parameter.
    for (query, field) in [
        ("grid=city&at=yesterday", "at"),
        ("grid=city&window=forever", "window"),
        ("grid=city&figure=happiness", "figure"),
        ("grid=city&limit=-1", "limit"),
        ("grid=no%20such", "grid"),
    ] {
        let p = api
            .get(&format!("/api/v1/reports/figures?{query}"))
            .problem(400);
        assert_eq!(rows(&p), [(None, Some(field.to_owned()))], "{query}: {p}");
    }
    let p = api.get("/api/v1/reports/figures?grid=ghost").problem(404);
    assert_eq!(rows(&p)[0].1.as_deref(), Some("grid"));

    // Oversized bodies: 413 before the body is read (Expect: 100-continue) and after.
    let big = format!("code,name,parent\n{}", "bulk,大,city\n".repeat(10_000));
    assert!(big.len() > 65_536);
    let p = api
        .post_expecting_continue("/api/v1/imports/grids", "text/csv", big.as_bytes())
        .problem(413);
    assert_eq!(p["type"], "/problems/payload-too-large");
    assert!(p["detail"].as_str().unwrap().contains("65536"), "{p}");

    // All-or-nothing is the default; apply_valid writes the good rows; dry_run writes nothing.
    let mixed = "code,name,parent\nm1,M1,city\nm2,M2,nowhere\n";
    csv("/api/v1/imports/grids", mixed).problem(422);
    assert_eq!(snapshot(&api), before, "a refused request changed the data");
    let dry = csv("/api/v1/imports/grids?mode=apply_valid&dry_run=true", mixed)
        .expect(200)
        .json();
    assert_eq!(
        (dry["applied"].as_u64(), dry["dry_run"].as_bool()),
        (Some(1), Some(true))
    );
    assert_eq!(snapshot(&api), before, "a dry run changed the data");
    let applied = csv("/api/v1/imports/grids?mode=apply_valid", mixed)
        .expect(200)
        .json();
    assert_eq!(applied["applied"], 1);
    assert_eq!(
        rows(&json!({"errors": applied["rejected"]})),
        [(Some(3), Some("parent".into()))]
    );
    api.get("/api/v1/grids/m1").expect(200);
    api.get("/api/v1/grids/m2").problem(404);
    api.post(
        "/api/v1/imports/grids?mode=sometimes",
        "text/csv",
        b"code,name\n",
    )
    .problem(400);

    // Still serving, and still answering correctly.
    let health = daemon.client(None).get("/api/v1/health").expect(200).json();
    assert_eq!(health["status"], "ok");
    api.get("/api/v1/reports/figures?grid=city").expect(200);
    daemon.stop();
}
