//! `vigil demo`: the service on a generated town (`vigil_sim::city`, 1 + 3 + 12 + 60 grids, 300
//! key sites, 1 200 cameras, 7 days of status history ending now), in a throwaway data
//! directory unless `--data-dir` is given. Prints the URL and a fresh admin token on stdout.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use vigil_api::audit::{self, Change};
use vigil_api::auth;
use vigil_core::import::CameraImport;
use vigil_core::role::Role;
use vigil_core::target::{FigureKind, Target};
use vigil_core::time::{Timestamp, DAY_MS, MINUTE_MS};
use vigil_index::{ImportMode, Index};
use vigil_sim::city::{self, CityParams};

use crate::commands::run::announce;
use crate::config::Config;
use crate::datadir::DataDir;
use crate::progress::Progress;
use crate::service::{self, now};
use crate::shutdown;

/// Options of `vigil demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Address to serve on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8480")]
    listen: SocketAddr,
}

/// Runs the demo until SIGINT/SIGTERM.
pub async fn run(config: Config, dir: Option<PathBuf>, args: DemoArgs) -> anyhow::Result<()> {
    // Keeps a throwaway directory alive (and deletes it at the end).
    let throwaway = match dir {
        Some(_) => None,
        None => Some(tempfile::Builder::new().prefix("vigil-demo-").tempdir()?),
    };
    let root = match (&dir, &throwaway) {
        (Some(d), _) => d.clone(),
        (None, Some(t)) => t.path().to_owned(),
        (None, None) => unreachable!("a throwaway directory exists when none was given"),
    };
    let data = DataDir::lock(&root, "vigil demo")?;
    let started = service::start(config, data, args.listen).await?;
    let index = started.index().clone();
    let token = tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
        if index.grid_count()? == 0 {
            load_city(&index)?;
        } else {
            eprintln!("the data directory already has data; serving it as it is");
        }
        let (_, token) = auth::issue(&index, Role::Admin, "demo admin", now())?;
        Ok(token)
    })
    .await??;
    let stop = shutdown::on_signal();
    let url = format!("http://{}/api/v1", started.addr());
    let note = if throwaway.is_some() {
        " (deleted on exit)"
    } else {
        ""
    };
    let auth = format!("-H 'Authorization: Bearer {token}'");
    announce(
        &[
            "vigil demo is running".to_owned(),
            format!("  data:  {}{note}", root.display()),
            format!("  url:   {url}"),
            format!("  token: {token}"),
            format!("  try:   curl {auth} '{url}/reports/figures?format=csv'"),
            format!("         curl {auth} '{url}/reports/ranking'"),
            format!("         curl {auth} '{url}/cameras?online=false&limit=5'"),
            format!("  API:   {url}/openapi.json"),
            "Press Ctrl-C to stop.".to_owned(),
        ]
        .join("\n"),
    );
    started.serve(stop).await
}

/// Generates the demo town ending now and loads it, with a dated coverage target so the
/// deadline report has something to show.
fn load_city(index: &Index) -> anyhow::Result<()> {
    let progress = Progress::spinner("generating and loading the demo town");
    let end = Timestamp::from_millis(now().as_millis() / MINUTE_MS * MINUTE_MS);
    let city = city::generate(&CityParams {
        end,
        ..CityParams::small()
    })
    .context("generating the demo town")?;
    index.import_grids(city.grids.clone(), ImportMode::AllOrNothing)?;
    index.import_sites(city.sites.clone(), ImportMode::AllOrNothing)?;
    index.import_cameras(
        city.cameras
            .iter()
            .map(|v| CameraImport {
                version: v.clone(),
                credentials: None,
            })
            .collect(),
        ImportMode::AllOrNothing,
    )?;
    let (mut history, diagnoses) = city.history_records(0..city.camera_count());
    history.extend(city.uplink_records());
    let intervals = history.len();
    index.import_history(history, ImportMode::AllOrNothing)?;
    index.import_diagnoses(diagnoses, ImportMode::AllOrNothing)?;
    let mut targets = index.targets()?;
    targets.set(
        FigureKind::Coverage,
        Target {
            due: Some(end.add_ms(30 * DAY_MS)),
            ..targets.get(FigureKind::Coverage)
        },
    );
    index.set_targets(targets)?;
    audit::append(
        index,
        now(),
        Change {
            actor: "cli:demo".to_owned(),
            action: "import.demo_city",
            target: "demo".to_owned(),
            before: None,
            after: Some(serde_json::json!({
                "grids": city.grids.len(),
                "sites": city.sites.len(),
                "camera_versions": city.cameras.len(),
                "intervals": intervals,
            })),
        },
    )?;
    progress.finish(&format!(
        "{} grids, {} key sites, {} cameras",
        city.grids.len(),
        city.sites.len(),
        city.camera_count()
    ));
    Ok(())
}
