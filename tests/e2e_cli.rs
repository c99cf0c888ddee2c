//! The command line on a stopped daemon's data directory: imports (GB18030 CSV and JSON, the
//! modes, a dry run, refused files), reports as CSV and JSON, tokens, and the audit entries the
//! commands leave. Progress goes to stderr as plain lines when stderr is not a terminal.

mod support;

use std::process::Output;

use support::dataset::*;
use support::{gb18030, Env};

fn ok(out: &Output) -> (String, String) {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    (stdout, stderr)
}

fn failed(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "expected a failure; stderr:\n{stderr}"
    );
    stderr
}

#[test]
fn imports_reports_and_tokens_from_the_command_line() {
    let env = Env::new("");
    std::fs::write(env.path("grids.csv"), gb18030(GRIDS_CSV)).unwrap();
    std::fs::write(env.path("sites.json"), SITES_JSON).unwrap();
    std::fs::write(env.path("cameras.csv"), gb18030(CAMERAS_CSV)).unwrap();
    std::fs::write(env.path("intervals.csv"), INTERVALS_CSV).unwrap();
    std::fs::write(env.path("diagnoses.json"), DIAGNOSES_JSON).unwrap();
    std::fs::write(
        env.path("cycle.csv"),
        "code,name,parent\nx1,X1,x2\nx2,X2,x1\n",
    )
    .unwrap();
    std::fs::write(
        env.path("mixed.csv"),
        "code,name,parent\nm1,M1,city\nm2,M2,nowhere\n",
    )
    .unwrap();
    let file = |name: &str| env.path(name).display().to_string();

    // A dry run writes nothing; a report then finds no grid.
    let (out, _) = ok(&env.cli(&["import", "grids", &file("grids.csv"), "--dry-run"]));
    assert!(
        out.contains("6 rows, 6 would be applied, 0 rejected (gb18030"),
        "{out}"
    );
    let err = failed(&env.cli(&["report", "figures", "--grid", "city"]));
    assert!(err.contains("grid city does not exist"), "{err}");

    // The imports, with plain progress lines on a non-terminal stderr.
    let (out, err) = ok(&env.cli(&["import", "grids", &file("grids.csv")]));
    assert!(
        out.contains("6 rows, 6 applied, 0 rejected (gb18030, all_or_nothing"),
        "{out}"
    );
    assert!(err.contains("reading grids.csv: 100%"), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "control codes on a non-terminal: {err:?}"
    );
    ok(&env.cli(&["import", "sites", &file("sites.json")]));
    ok(&env.cli(&["import", "cameras", &file("cameras.csv")]));
    let (out, _) = ok(&env.cli(&["import", "intervals", &file("intervals.csv"), "--json"]));
    let outcome: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(outcome["applied"], 13);
    ok(&env.cli(&["import", "diagnoses", &file("diagnoses.json")]));

    // A refused file names the rows; apply-valid writes the good rows and lists the bad ones.
    let err = failed(&env.cli(&["import", "grids", &file("cycle.csv")]));
    assert!(err.contains("row 2, parent:"), "{err}");
    assert!(err.contains("row 3, parent:"), "{err}");
    let (out, _) = ok(&env.cli(&[
        "import",
        "grids",
        &file("mixed.csv"),
        "--mode",
        "apply-valid",
    ]));
    assert!(out.contains("2 rows, 1 applied, 1 rejected"), "{out}");
    assert!(
        out.contains("row 3, parent: grid m2: parent nowhere does not exist"),
        "{out}"
    );

    // Reports: the hand-computed figures as CSV, the ranking as JSON, blind spots to a file.
    let (csv, _) = ok(&env.cli(&[
        "report", "figures", "--grid", "city", "--at", AT, "--format", "csv",
    ]));
    let line = csv.lines().find(|l| l.contains(",coverage,")).unwrap();
    assert!(line.contains(",sites,2,5,40.00,100.00,fail,"), "{line}");
    let (json, err) = ok(&env.cli(&["report", "ranking", "--grid", "city", "--at", AT]));
    let ranking: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(ranking["grids"][0]["grid"], "t2");
    assert!(err.contains("computing the ranking report"), "{err}");
    ok(&env.cli(&[
        "report",
        "blind-spots",
        "--grid",
        "city",
        "--at",
        AT,
        "--format",
        "csv",
        "--output",
        &file("blind.csv"),
    ]));
    let blind = std::fs::read_to_string(env.path("blind.csv")).unwrap();
    assert!(
        blind
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("S6,工商银行,finance,class1,v21"),
        "{blind}"
    );

    // Tokens: create, list, revoke.
    let auditor = env.token("auditor", "审计员");
    let integrator = env.token("integrator", "集成商");
    let integrator_id = &integrator[6..18];
    let (list, _) = ok(&env.cli(&["token", "list"]));
    assert!(
        list.contains(integrator_id) && list.contains("集成商"),
        "{list}"
    );
    assert!(
        !list.contains(&integrator[19..]),
        "token list shows a secret"
    );
    ok(&env.cli(&["token", "revoke", integrator_id]));
    let (list, _) = ok(&env.cli(&["token", "list"]));
    let row = list.lines().find(|l| l.contains(integrator_id)).unwrap();
    assert!(!row.contains("  -  "), "not marked revoked: {row}");

    // Every change the CLI made is in the audit log, with a cli: actor.
    let daemon = env.start();
    let log = daemon
        .client(Some(&auditor))
        .get("/api/v1/audit?limit=1000")
        .expect(200)
        .json();
    let entries: Vec<(String, String)> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let actions: Vec<&str> = entries.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "import.grids",
            "import.sites",
            "import.cameras",
            "import.intervals",
            "import.diagnoses",
            "import.grids",
            "token.create",
            "token.create",
            "token.revoke"
        ]
    );
    assert!(entries.iter().all(|(_, actor)| actor.starts_with("cli:")));
    daemon
        .client(Some(&integrator))
        .get("/api/v1/grids")
        .problem(401);
    daemon.stop();
}
