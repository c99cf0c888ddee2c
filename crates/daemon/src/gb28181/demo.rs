//! `vigil demo`'s GB/T 28181 part: the server on a free loopback port, recording every filed
//! channel, with CivilCodes mapped into the generated town's grids; and one simulated NVR
//! (`vigil_sim::gb`) with four channels registering to it. Three channels carry CivilCodes of
//! the town's streets and are filed there; the fourth carries a code no entry maps, so the
//! CivilCode report has something to show.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use vigil_gb28181::server::{PortRange, RecordingMode, Secret};
use vigil_sim::gb::{GbClip, GbSimConfig, GbSimFleet};

use super::Gb28181Config;

/// The demo devices' password.
const PASSWORD: &str = "vigil-demo";

/// The NVR's channels' CivilCodes: three streets of the town, and one unmapped.
const CHANNEL_CIVIL_CODES: [&str; 4] = ["37010001", "37010002", "37010003", "44010001"];

/// Sets up `[gb28181]` for the demo town (`vigil_sim::city::CityParams::small()`, root grid
/// `370100` with streets `370100.1` … `370100.3`).
pub fn configure(c: &mut Gb28181Config) {
    c.enabled = true;
    c.server.sip_id = "37010000002000000001".to_owned();
    c.server.domain = "3701000000".to_owned();
    c.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    c.server.default_password = Some(Secret(PASSWORD.to_owned()));
    c.server.recording.mode = RecordingMode::All;
    c.server.media.rtp_ports = PortRange { start: 0, end: 0 };
    c.server.keepalive_interval_secs = 20;
    c.civil_codes
        .insert("370100".to_owned(), "370100".to_owned());
    for street in 1..=3 {
        c.civil_codes
            .insert(format!("3701000{street}"), format!("370100.{street}"));
    }
}

/// Starts the simulated NVR registering to `server`.
pub async fn start_device(server: SocketAddr) -> anyhow::Result<GbSimFleet> {
    let clip = GbClip::demo_h264().context("loading the demo clip of the simulated NVR")?;
    GbSimFleet::start(GbSimConfig {
        server,
        server_id: "37010000002000000001".to_owned(),
        domain: "3701000000".to_owned(),
        password: PASSWORD.to_owned(),
        devices: 1,
        channels_per_device: CHANNEL_CIVIL_CODES.len(),
        device_type: 118,
        centre: "37010000".to_owned(),
        first_serial: 1,
        channel_civil_codes: CHANNEL_CIVIL_CODES
            .iter()
            .map(|c| (*c).to_owned())
            .collect(),
        keepalive_interval: Duration::from_secs(20),
        clip: Some(Arc::new(clip)),
        ..GbSimConfig::default()
    })
    .await
    .context("starting the simulated GB/T 28181 NVR")
}
