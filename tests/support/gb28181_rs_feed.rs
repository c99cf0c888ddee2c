//! Driving the third-party GB/T 28181 device (`gb28181-rs`) in tests: its mock frame hub fed
//! with a clip at 25 fps, as a camera would.
//!
//! Shared by the GB/T 28181 crate's interop test and the daemon's (`#[path]`).

use std::sync::Arc;
use std::time::Duration;

use gb28181_rs::mock::MockFrameHub;
use gb28181_rs::{AccessUnit, Nalu};
use vigil_media::nal::AvccNals;
use vigil_sim::gb::GbClip;

/// Feeds `clip` (H.264, looped) into the device's frame hub in real time.
pub fn feed(hub: Arc<MockFrameHub>, clip: GbClip) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(40));
        for n in 0.. {
            tick.tick().await;
            let f = &clip.frames[n % clip.frames.len()];
            let nalus = AvccNals::new(&f.data)
                .filter_map(Result::ok)
                .map(|nal| {
                    let t = nal[0] & 0x1f;
                    Nalu {
                        nalu_type: t,
                        data: nal.to_vec(),
                        is_idr: t == 5,
                        is_sps: t == 7,
                        is_pps: t == 8,
                        is_aud: t == 9,
                    }
                })
                .collect();
            hub.write(AccessUnit {
                nalus,
                timestamp: std::time::Instant::now(),
                is_key_frame: f.is_key,
            });
        }
    })
}
