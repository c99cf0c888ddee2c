//! `vigil demo`: the service on a generated town (`vigil_sim::city`, 1 + 3 + 12 + 60 grids, 300
//! key sites, 1 200 cameras, 7 days of status history ending now), in a throwaway data
//! directory unless `--data-dir` is given. Prints the URL and a fresh admin token on stdout.
//!
//! So that a newcomer sees recording happen, the demo also starts a handful of simulated RTSP
//! cameras in-process (`vigil_sim::rtsp`, serving the bundled clips: H.264 and H.265 at 720p,
//! and one H.264 at 360p that fails the HD requirement), files them in the town's first base
//! grid, and records them. Only cameras at loopback addresses are pulled: the generated
//! town's cameras are records only. It also runs the GB/T 28181 server with one simulated NVR
//! registering to it (`crate::gb28181::demo`): four channels, three filed in the town's
//! streets by their CivilCodes and recorded, one with a CivilCode that maps to no grid.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use vigil_api::audit::{self, Change};
use vigil_api::auth;
use vigil_core::camera::{
    AcceptanceState, Builder, Camera, CameraSource, RegistrationState, RtspUrl,
};
use vigil_core::id::GbId;
use vigil_core::import::CameraImport;
use vigil_core::model::CameraVersionInput;
use vigil_core::role::Role;
use vigil_core::site::PointClass;
use vigil_core::target::{FigureKind, Target};
use vigil_core::time::{Timestamp, DAY_MS, MINUTE_MS};
use vigil_index::{ImportMode, Index};
use vigil_sim::city::{self, CityParams};
use vigil_sim::rtsp::{DemoClip, Fault, SimServer, Stream};

use crate::commands::run::announce;
use crate::config::Config;
use crate::datadir::DataDir;
use crate::progress::Progress;
use crate::recording::PullScope;
use crate::service::{self, now};
use crate::shutdown;

/// The simulated cameras: path, clip, name.
const DEMO_CAMERAS: [(&str, DemoClip, &str); 4] = [
    ("/cam/1", DemoClip::H264_720p, "演示摄像机 1 (H.264 720p)"),
    ("/cam/2", DemoClip::H265_720p, "演示摄像机 2 (H.265 720p)"),
    ("/cam/3", DemoClip::H264_720p, "演示摄像机 3 (H.264 720p)"),
    (
        "/cam/4",
        DemoClip::H264_360p,
        "演示摄像机 4 (H.264 360p, not HD)",
    ),
];

/// Network digit of the demo cameras' IDs (the town's cameras use 0).
const DEMO_NETWORK: u8 = 9;

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
    let mut config = config;
    crate::gb28181::demo::configure(&mut config.gb28181);
    let recording = config.recording.enabled;
    let started = service::start_scoped(config, data, args.listen, PullScope::Loopback).await?;
    let cameras = CancellationToken::new();
    let sim = if recording {
        Some(start_cameras(cameras.clone()).await?)
    } else {
        None
    };
    let index = started.index().clone();
    let sim_for_index = sim.clone();
    let (token, demo_ids) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        if index.grid_count()? == 0 {
            load_city(&index)?;
        } else {
            eprintln!("the data directory already has data; serving it as it is");
        }
        let ids = match &sim_for_index {
            Some(sim) => file_cameras(&index, sim)?,
            None => Vec::new(),
        };
        let (_, token) = auth::issue(&index, Role::Admin, "demo admin", now())?;
        Ok((token, ids))
    })
    .await??;
    // The simulated GB/T 28181 NVR registers once the town's grids exist.
    let nvr = match started.gb28181_sip_addr() {
        Some(sip) => Some((sip, crate::gb28181::demo::start_device(sip).await?)),
        None => None,
    };
    let stop = shutdown::on_signal();
    let url = format!("http://{}/api/v1", started.addr());
    let note = if throwaway.is_some() {
        " (deleted on exit)"
    } else {
        ""
    };
    let auth = format!("-H 'Authorization: Bearer {token}'");
    let mut lines = vec![
        "vigil demo is running".to_owned(),
        format!("  data:  {}{note}", root.display()),
        format!("  url:   {url}"),
        format!("  token: {token}"),
        format!("  try:   curl {auth} '{url}/reports/figures?format=csv'"),
        format!("         curl {auth} '{url}/reports/ranking'"),
        format!("         curl {auth} '{url}/cameras?online=false&limit=5'"),
    ];
    if let (Some(sim), Some(first)) = (&sim, demo_ids.first()) {
        lines.extend([
            format!(
                "  video: {} simulated RTSP cameras at rtsp://{}/cam/1 … /cam/{} are being recorded \
                 ({})",
                demo_ids.len(),
                sim.local_addr(),
                demo_ids.len(),
                demo_ids
                    .iter()
                    .map(GbId::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            format!("         curl {auth} '{url}/recorders'"),
            format!("         curl {auth} '{url}/cameras/{first}/recordings?from=$(date -u -d -10min +%FT%TZ)'"),
            format!(
                "         curl {auth} -o clip.mp4 '{url}/cameras/{first}/recording.mp4?start=$(date -u -d -30sec +%FT%TZ)&end=$(date -u +%FT%TZ)'"
            ),
            format!("         curl {auth} -o live.mp4 --max-time 10 '{url}/cameras/{first}/live.mp4'"),
            format!("         curl {auth} -o snapshot.jpg '{url}/cameras/{first}/snapshot.jpg'"),
            format!("         curl {auth} -X POST '{url}/cameras/{first}/access-test'"),
        ]);
    }
    if let Some((sip, nvr)) = &nvr {
        let device = nvr.device_ids()[0];
        lines.extend([
            format!(
                "  GB/T 28181: a simulated NVR {device} with {} channels registered at udp://{sip} \
                 (password vigil-demo); its channels are filed in the town's streets and recorded",
                nvr.channel_ids(0).len()
            ),
            format!("         curl {auth} '{url}/gb28181/devices'"),
            format!("         curl {auth} '{url}/gb28181/devices/{device}/channels'"),
            format!("         curl {auth} '{url}/gb28181/civil-codes'"),
        ]);
    }
    lines.push(format!("  API:   {url}/openapi.json"));
    lines.push("Press Ctrl-C to stop.".to_owned());
    announce(&lines.join("\n"));
    let served = started.serve(stop).await;
    cameras.cancel();
    if let Some((_, nvr)) = nvr {
        nvr.stop(false).await;
    }
    served
}

/// Starts the simulated cameras on a free loopback port.
async fn start_cameras(cancel: CancellationToken) -> anyhow::Result<SimServer> {
    let server = SimServer::start(SocketAddr::from(([127, 0, 0, 1], 0)), cancel)
        .await
        .context("starting the simulated RTSP cameras")?;
    for (path, clip, _) in DEMO_CAMERAS {
        let loaded = clip
            .load()
            .with_context(|| format!("loading the demo clip {}", clip.file_name()))?;
        server.add_stream(
            path,
            Stream {
                clip: Arc::new(loaded),
                fault: Fault::None,
            },
        );
    }
    Ok(server)
}

/// Files the simulated cameras in the town's first base grid (or points the ones filed by an
/// earlier demo run at this run's port). Returns their IDs.
fn file_cameras(index: &Index, sim: &SimServer) -> anyhow::Result<Vec<GbId>> {
    let domain = CityParams::small().domain;
    let depth = (0..8)
        .rev()
        .find(|d| index.grids_at_depth(*d, None).is_ok_and(|g| !g.is_empty()))
        .unwrap_or(0);
    let grid = index
        .grids_at_depth(depth, None)?
        .into_iter()
        .next()
        .context("the demo town has no grid")?;
    let at = now();
    let mut ids = Vec::new();
    for (n, (path, _, name)) in DEMO_CAMERAS.iter().enumerate() {
        let id = GbId::for_rtsp_camera(&domain, DEMO_NETWORK, n as u32 + 1)?;
        let (url, _) = RtspUrl::parse(&sim.url(path))?;
        let latest = match index.camera(&id, at)? {
            Some(_) => index.camera_versions(&id)?.pop(),
            None => None,
        };
        let camera = match latest {
            Some((_, c)) if c.source == (CameraSource::Rtsp { url: url.clone() }) => {
                ids.push(id);
                continue;
            }
            Some((_, c)) => Camera {
                source: CameraSource::Rtsp { url },
                ..c
            },
            None => Camera {
                id,
                name: (*name).to_owned(),
                source: CameraSource::Rtsp { url },
                location: None,
                address: Some("vigil demo: simulated camera".to_owned()),
                grid: grid.code.clone(),
                sites: Vec::new(),
                builder: Some(Builder::GovernmentPublic),
                point_class: Some(PointClass::Class2),
                install_date: None,
                registration: RegistrationState::Filed,
                acceptance: AcceptanceState::Pending,
                hd: None,
                shared_upward: false,
                decommissioned_at: None,
            },
        };
        index.put_camera(CameraImport {
            version: CameraVersionInput { from: at, camera },
            credentials: None,
        })?;
        ids.push(id);
    }
    Ok(ids)
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
