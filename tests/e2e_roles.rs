//! Role enforcement through the real daemon: every role against representative calls of every
//! permission, tokens made by the CLI, revocation, and requests without a valid token.

mod support;

use serde_json::json;
use support::dataset::GRIDS_CSV;
use support::{gb18030, Client, Env};

const ROLES: [&str; 4] = ["admin", "operator", "integrator", "auditor"];

/// Expected status per role (admin, operator, integrator, auditor).
struct Case {
    what: &'static str,
    call: fn(&Client, &str) -> support::Response,
    expect: [u16; 4],
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            what: "read grids",
            call: |c, _| c.get("/api/v1/grids"),
            expect: [200, 200, 200, 200],
        },
        Case {
            what: "read status history",
            call: |c, _| c.get("/api/v1/cameras/37010000001320000001/history"),
            expect: [200, 200, 200, 200],
        },
        Case {
            what: "read a report",
            call: |c, _| c.get("/api/v1/reports/figures?grid=city"),
            expect: [200, 200, 403, 200],
        },
        Case {
            what: "read targets",
            call: |c, _| c.get("/api/v1/targets"),
            expect: [200, 200, 403, 200],
        },
        Case {
            what: "read the audit log",
            call: |c, _| c.get("/api/v1/audit"),
            expect: [200, 403, 403, 200],
        },
        Case {
            what: "create a grid",
            call: |c, r| {
                c.post_json(
                    "/api/v1/grids",
                    &json!({"code": format!("new-{r}"), "name": "新网格", "parent": "city"}),
                )
            },
            expect: [201, 403, 403, 403],
        },
        Case {
            what: "create a key site",
            call: |c, r| {
                c.post_json(
                    "/api/v1/sites",
                    &json!({"id": format!("site-{r}"), "name": "学校", "category": "school",
                            "point_class": "1", "grid": "v11"}),
                )
            },
            expect: [201, 403, 403, 403],
        },
        Case {
            what: "file a camera",
            call: |c, r| {
                let serial = 10 + ROLES.iter().position(|x| *x == r).unwrap_or(0);
                c.post_json(
                    "/api/v1/cameras",
                    &json!({"id": format!("370100000013200000{serial:02}"),
                            "effective_from": "2024-01-01T00:00:00Z", "name": "新摄像机",
                            "source": "rtsp", "rtsp_url": "rtsp://10.1.1.1/live", "grid": "v11"}),
                )
            },
            expect: [201, 403, 201, 403],
        },
        Case {
            what: "import cameras",
            call: |c, _| {
                c.post(
                    "/api/v1/imports/cameras?dry_run=true",
                    "text/csv",
                    b"id,effective_from,name,source,rtsp_url,grid\n37010000001320000099,2024-01-01T00:00:00Z,x,rtsp,rtsp://h/x,v11\n",
                )
            },
            expect: [200, 403, 200, 403],
        },
        Case {
            what: "import status history",
            call: |c, _| {
                c.post(
                    "/api/v1/imports/intervals?dry_run=true",
                    "text/csv",
                    b"subject,kind,start,end\n37010000001320000001,online,2024-01-02T00:00:00Z,2024-01-03T00:00:00Z\n",
                )
            },
            expect: [200, 200, 403, 403],
        },
        Case {
            what: "change targets",
            call: |c, _| c.put_json("/api/v1/targets", &json!({})),
            expect: [200, 403, 403, 403],
        },
        Case {
            what: "delete a camera with its history",
            call: |c, _| c.delete("/api/v1/cameras/37010000001320000002"),
            expect: [204, 403, 403, 403],
        },
        Case {
            what: "list tokens",
            call: |c, _| c.get("/api/v1/tokens"),
            expect: [200, 403, 403, 403],
        },
        // Recording is off in this test, so the roles that may pass get 503 (the permission is
        // checked first).
        Case {
            what: "read recordings",
            call: |c, _| c.get("/api/v1/cameras/37010000001320000001/recordings"),
            expect: [503, 503, 503, 503],
        },
        Case {
            what: "export video",
            call: |c, _| {
                c.get("/api/v1/cameras/37010000001320000001/recording.mp4?start=2024-01-01T00:00:00Z&end=2024-01-01T00:01:00Z")
            },
            expect: [503, 503, 403, 503],
        },
        Case {
            what: "watch live video",
            call: |c, _| c.get("/api/v1/cameras/37010000001320000001/live.mp4"),
            expect: [503, 503, 403, 403],
        },
        Case {
            what: "run the access test",
            call: |c, _| {
                c.post(
                    "/api/v1/cameras/37010000001320000001/access-test",
                    "application/json",
                    b"",
                )
            },
            expect: [503, 403, 503, 403],
        },
        Case {
            what: "set a retention policy",
            call: |c, _| {
                c.put_json(
                    "/api/v1/cameras/37010000001320000001/retention",
                    &json!({"key_target": true}),
                )
            },
            expect: [503, 503, 403, 403],
        },
        Case {
            what: "decide acceptance",
            call: |c, _| {
                c.post_json(
                    "/api/v1/cameras/37010000001320000001/acceptance",
                    &json!({"decision": "rejected", "note": "不合格"}),
                )
            },
            expect: [200, 200, 403, 403],
        },
        Case {
            what: "read own identity",
            call: |c, _| c.get("/api/v1/me"),
            expect: [200, 200, 200, 200],
        },
    ]
}

#[test]
fn every_role_gets_exactly_its_permissions() {
    let env = Env::new("");
    let tokens: Vec<String> = ROLES
        .iter()
        .map(|r| env.token(r, &format!("{r} of the e2e test")))
        .collect();
    let daemon = env.start();
    let admin = daemon.client(Some(&tokens[0]));
    admin
        .post("/api/v1/imports/grids", "text/csv", &gb18030(GRIDS_CSV))
        .expect(200);
    admin
        .post(
            "/api/v1/imports/cameras",
            "text/csv",
            b"id,effective_from,name,source,rtsp_url,grid\n\
              37010000001320000001,2024-01-01T00:00:00Z,a,rtsp,rtsp://h/a,v11\n\
              37010000001320000002,2024-01-01T00:00:00Z,b,rtsp,rtsp://h/b,v11\n",
        )
        .expect(200);

    // Deletion is checked last per case, so run the roles without the permission first.
    for case in cases() {
        let mut order: Vec<usize> = (0..ROLES.len()).collect();
        order.sort_by_key(|&i| case.expect[i] < 300);
        for i in order {
            let client = daemon.client(Some(&tokens[i]));
            let r = (case.call)(&client, ROLES[i]);
            assert_eq!(
                r.status,
                case.expect[i],
                "{} as {}: {}",
                case.what,
                ROLES[i],
                r.text()
            );
            if r.status == 403 {
                let p = r.problem(403);
                assert_eq!(p["type"], "/problems/forbidden");
                assert!(
                    p["detail"].as_str().unwrap().contains(ROLES[i]),
                    "the refusal names the role: {p}"
                );
            }
        }
    }

    // No token, a malformed one, a forged one: 401 with the same answer.
    let anonymous = daemon.client(None);
    let p = anonymous.get("/api/v1/grids").problem(401);
    assert_eq!(p["type"], "/problems/unauthorized");
    let forged = format!("{}0000", &tokens[0][..tokens[0].len() - 4]);
    let p2 = daemon
        .client(Some(&forged))
        .get("/api/v1/grids")
        .problem(401);
    assert_eq!(p["detail"], p2["detail"]);
    daemon
        .client(Some("not-a-token"))
        .get("/api/v1/grids")
        .problem(401);
    // Health and the OpenAPI document need no token.
    anonymous.get("/api/v1/health").expect(200);
    anonymous.get("/api/v1/openapi.json").expect(200);

    // A revoked token stops working at once.
    let operator_id = &tokens[1][6..18];
    admin
        .delete(&format!("/api/v1/tokens/{operator_id}"))
        .expect(200);
    let p = daemon
        .client(Some(&tokens[1]))
        .get("/api/v1/grids")
        .problem(401);
    assert!(p["detail"].as_str().unwrap().contains("revoked"), "{p}");

    daemon.stop();
}
