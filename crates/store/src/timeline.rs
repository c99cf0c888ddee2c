//! Tying a camera's media clock to wall-clock receive time.
//!
//! # Policy
//! Every recorded frame gets a *store time* `t` (90 kHz ticks since the Unix epoch). Within one
//! run (from the first key frame after a start, an interruption or a gap, until the next of
//! those) store time is **strictly increasing**, and from one run to the next it never goes
//! back either (the recorder passes the previous run's end as a floor).
//!
//! 1. **Anchor.** The first frame of a run is placed at `max(received_at, floor)`.
//! 2. **Follow the camera.** Each following frame is placed at the previous store time plus the
//!    camera's `pts` delta, so sample durations in the file are the camera's own.
//! 3. **Slew.** The error `received_at − t` (receive latency, jitter, camera crystal drift) is
//!    corrected by at most [`MAX_SLEW_PPM`] of each frame's duration (rounded up to a whole
//!    tick), so store time converges on receive time without ever stepping. A 200 ppm camera
//!    clock stays within a fraction of a second of the host clock indefinitely.
//! 4. **Camera clock jump.** A `pts` delta that is ≤ 0 or above the tolerance, while the host
//!    clock says the frames are consecutive, is a camera clock reset or wrap: the frame is
//!    placed one receive interval after the previous one (the nominal frame duration if
//!    frames arrived in a burst) and the camera's new `pts` becomes the reference. No gap, no
//!    cut; counted as [`Discontinuity::CameraClock`].
//! 5. **Real gap.** If both the `pts` delta and the receive-time delta exceed the tolerance,
//!    frames really stopped: [`Mapped::gap`] tells the recorder to end the run (the segment is
//!    closed, the recording interval ends) and to start a new one at the next key frame.
//! 6. **Host clock step.** If the error stays beyond the tolerance for half the tolerance of
//!    receive time (a network stall delivered in a burst shrinks back within that time, a
//!    host clock step does not):
//!    - *forward*: treated as a real gap (the host says that time passed);
//!    - *backward*: store time cannot go back, so it keeps following the camera and remembers
//!      the difference as a *lead* that is paid back at the slew rate
//!      ([`Discontinuity::HostClockBack`]).

/// Largest correction of store time relative to the camera's clock, parts per million.
pub const MAX_SLEW_PPM: i64 = 500;

/// Why a frame was re-anchored without a gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discontinuity {
    /// The camera's `pts` jumped by this many ticks while frames kept arriving.
    CameraClock {
        /// The `pts` delta that was rejected.
        pts_delta: i64,
    },
    /// The host clock went back by this many ticks; store time keeps running ahead of it.
    HostClockBack {
        /// How far store time is ahead of the host clock.
        lead: i64,
    },
}

/// Where a frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapped {
    /// Store time of the frame.
    pub t: i64,
    /// The run must end before this frame (frames stopped, or the host clock stepped
    /// forward); `t` is then the frame's anchored time for a new run.
    pub gap: bool,
    /// A clock discontinuity absorbed without a gap.
    pub discontinuity: Option<Discontinuity>,
}

#[derive(Debug, Clone, Copy)]
struct Anchor {
    last_pts: i64,
    last_t: i64,
    last_received: i64,
    /// How far store time is deliberately ahead of the host clock (after the host clock
    /// went back), ≥ 0.
    lead: i64,
    /// Receive time at which the error first went beyond the tolerance.
    error_since: Option<i64>,
}

/// The per-camera mapping from `(pts, received_at)` to store time.
#[derive(Debug, Clone)]
pub struct Timeline {
    tolerance: i64,
    anchor: Option<Anchor>,
}

impl Timeline {
    /// A timeline with the given jump tolerance (ticks).
    pub fn new(tolerance: i64) -> Self {
        Timeline {
            tolerance: tolerance.max(1),
            anchor: None,
        }
    }

    /// Whether a run is in progress.
    pub fn is_running(&self) -> bool {
        self.anchor.is_some()
    }

    /// Forgets the run (after an interruption or a gap).
    pub fn reset(&mut self) {
        self.anchor = None;
    }

    /// Starts a run with the frame `(pts, received)`; returns its store time
    /// `max(received, floor)`.
    pub fn start(&mut self, pts: i64, received: i64, floor: i64) -> i64 {
        let t = received.max(floor);
        self.anchor = Some(Anchor {
            last_pts: pts,
            last_t: t,
            last_received: received,
            lead: t - received,
            error_since: None,
        });
        t
    }

    /// Maps the next frame of the run. `nominal` is the nominal frame duration (ticks). Must
    /// follow [`Timeline::start`]; without a run it starts one at `received`.
    pub fn map(&mut self, pts: i64, received: i64, nominal: i64) -> Mapped {
        let Some(mut a) = self.anchor else {
            let t = self.start(pts, received, i64::MIN);
            return Mapped {
                t,
                gap: false,
                discontinuity: None,
            };
        };
        let tol = self.tolerance;
        let nominal = nominal.max(1);
        let d_pts = pts - a.last_pts;
        let d_recv = received - a.last_received;
        let mut discontinuity = None;

        let t = if d_pts <= 0 || d_pts > tol {
            if d_pts > tol && d_recv > tol {
                // Both clocks agree that frames stopped: a real gap.
                return self.gap(pts, received, a);
            }
            // Camera clock reset/wrap: trust the host clock for the spacing.
            let step = if d_recv > 0 && d_recv <= tol {
                d_recv
            } else {
                nominal
            };
            discontinuity = Some(Discontinuity::CameraClock { pts_delta: d_pts });
            a.error_since = None;
            a.last_t + step
        } else {
            let predicted = a.last_t + d_pts;
            // Pay back a lead (host clock went back) at the slew rate.
            let max_adj = (d_pts * MAX_SLEW_PPM + 999_999) / 1_000_000;
            a.lead = (a.lead - max_adj).max(0);
            let err = received + a.lead - predicted;
            if err.abs() > tol {
                let since = *a.error_since.get_or_insert(received);
                if received - since >= tol / 2 {
                    if err > 0 {
                        // The host clock stepped forward: time passed, as far as the centre
                        // is concerned.
                        return self.gap(pts, received, a);
                    }
                    // The host clock stepped back: keep following the camera.
                    a.lead = predicted - received;
                    a.error_since = None;
                    discontinuity = Some(Discontinuity::HostClockBack { lead: a.lead });
                }
            } else {
                a.error_since = None;
            }
            predicted + err.clamp(-max_adj, max_adj)
        };
        let t = t.max(a.last_t + 1);
        a.last_pts = pts;
        a.last_t = t;
        a.last_received = received;
        self.anchor = Some(a);
        Mapped {
            t,
            gap: false,
            discontinuity,
        }
    }

    fn gap(&mut self, pts: i64, received: i64, a: Anchor) -> Mapped {
        let floor = a.last_t + 1;
        let t = self.start(pts, received, floor);
        Mapped {
            t,
            gap: true,
            discontinuity: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i64 = 90_000;
    const FRAME: i64 = 3600;
    const T0: i64 = 1_700_000_000 * SEC;

    /// Feeds `n` frames; `pts_of(i)` and `recv_of(i)`; returns store times and mapped events.
    fn feed(
        tl: &mut Timeline,
        range: std::ops::Range<i64>,
        pts_of: impl Fn(i64) -> i64,
        recv_of: impl Fn(i64) -> i64,
    ) -> Vec<Mapped> {
        range
            .map(|i| tl.map(pts_of(i), recv_of(i), FRAME))
            .collect()
    }

    fn strictly_increasing(ts: &[Mapped]) -> bool {
        ts.windows(2).all(|w| w[1].t > w[0].t)
    }

    #[test]
    fn steady_stream_keeps_camera_durations_and_tracks_receive_time() {
        let mut tl = Timeline::new(5 * SEC);
        let latency = SEC / 5;
        let t0 = tl.start(1000, T0 + latency, 0);
        assert_eq!(t0, T0 + latency);
        let m = feed(
            &mut tl,
            1..25 * 60,
            |i| 1000 + i * FRAME,
            |i| T0 + latency + i * FRAME + (i % 7) * 90, // up to 6 ms of jitter
        );
        assert!(strictly_increasing(&m));
        assert!(m.iter().all(|x| !x.gap && x.discontinuity.is_none()));
        let last = m.last().unwrap();
        let recv_last = T0 + latency + (25 * 60 - 1) * FRAME;
        assert!(
            (last.t - recv_last).abs() < SEC / 100,
            "{}",
            last.t - recv_last
        );
        // Durations are the camera's, give or take the slew.
        for w in m.windows(2) {
            assert!((w[1].t - w[0].t - FRAME).abs() <= 2, "{}", w[1].t - w[0].t);
        }
    }

    #[test]
    fn camera_drift_of_200_ppm_stays_bounded_for_an_hour() {
        let mut tl = Timeline::new(5 * SEC);
        tl.start(0, T0, 0);
        // The camera's clock runs 200 ppm slow: its pts advance 3599.28 ticks per real frame.
        let m = feed(
            &mut tl,
            1..25 * 3600,
            |i| i * FRAME - i * FRAME / 5000,
            |i| T0 + i * FRAME,
        );
        assert!(strictly_increasing(&m));
        assert!(m.iter().all(|x| !x.gap));
        let worst = m
            .iter()
            .enumerate()
            .map(|(i, x)| (x.t - (T0 + (i as i64 + 1) * FRAME)).abs())
            .max()
            .unwrap();
        assert!(worst < SEC / 10, "worst error {worst} ticks");
    }

    #[test]
    fn camera_clock_jump_is_absorbed_without_a_gap() {
        let mut tl = Timeline::new(5 * SEC);
        tl.start(10_000, T0, 0);
        let before = feed(&mut tl, 1..50, |i| 10_000 + i * FRAME, |i| T0 + i * FRAME);
        // The camera reboots its clock to near zero (and later jumps far ahead).
        let after = feed(&mut tl, 50..100, |i| (i - 50) * FRAME, |i| T0 + i * FRAME);
        let ahead = feed(
            &mut tl,
            100..120,
            |i| 3600 * SEC + i * FRAME,
            |i| T0 + i * FRAME,
        );
        assert_eq!(
            after[0].discontinuity,
            Some(Discontinuity::CameraClock {
                pts_delta: -(10_000 + 49 * FRAME)
            })
        );
        assert!(matches!(
            ahead[0].discontinuity,
            Some(Discontinuity::CameraClock { .. })
        ));
        let all: Vec<Mapped> = before.into_iter().chain(after).chain(ahead).collect();
        assert!(strictly_increasing(&all));
        assert!(all.iter().all(|m| !m.gap));
        assert_eq!(all[49].t - all[48].t, FRAME);
        let last = all.last().unwrap().t;
        assert!((last - (T0 + 119 * FRAME)).abs() < SEC / 10);
    }

    #[test]
    fn frames_that_really_stopped_make_a_gap() {
        let mut tl = Timeline::new(5 * SEC);
        tl.start(0, T0, 0);
        feed(&mut tl, 1..10, |i| i * FRAME, |i| T0 + i * FRAME);
        let m = tl.map(40 * SEC, T0 + 40 * SEC, FRAME);
        assert!(m.gap);
        assert_eq!(m.t, T0 + 40 * SEC);
        // The new run continues normally.
        let n = tl.map(40 * SEC + FRAME, T0 + 40 * SEC + FRAME, FRAME);
        assert!(!n.gap);
        assert_eq!(n.t, m.t + FRAME);
    }

    #[test]
    fn a_network_stall_delivered_in_a_burst_is_not_a_gap() {
        let mut tl = Timeline::new(5 * SEC);
        tl.start(0, T0, 0);
        feed(&mut tl, 1..25, |i| i * FRAME, |i| T0 + i * FRAME);
        // 8 s of frames (200) held up, then delivered within 0.8 s, then live again.
        let stall_end = T0 + 24 * FRAME + 8 * SEC;
        let burst = feed(
            &mut tl,
            25..225,
            |i| i * FRAME,
            |i| stall_end + (i - 25) * 360,
        );
        let live = feed(
            &mut tl,
            225..300,
            |i| i * FRAME,
            |i| T0 + i * FRAME + SEC / 10,
        );
        assert!(burst.iter().chain(&live).all(|m| !m.gap));
        // The camera's spacing is kept (plus at most the slew).
        let d = burst[100].t - burst[99].t;
        assert!((FRAME..=FRAME + 2).contains(&d), "{d}");
    }

    #[test]
    fn host_clock_forward_step_becomes_a_gap_after_confirmation() {
        let mut tl = Timeline::new(4 * SEC);
        tl.start(0, T0, 0);
        feed(&mut tl, 1..25, |i| i * FRAME, |i| T0 + i * FRAME);
        let step = 3600 * SEC;
        let after = feed(&mut tl, 25..200, |i| i * FRAME, |i| T0 + step + i * FRAME);
        let first_gap = after.iter().position(|m| m.gap).expect("a gap");
        // Confirmed after half the tolerance (2 s = 50 frames) of receive time.
        assert_eq!(first_gap, 50);
        assert!((after[first_gap].t - (T0 + step + 75 * FRAME)).abs() <= 1);
        assert!(strictly_increasing(&after));
    }

    #[test]
    fn host_clock_backward_step_keeps_store_time_monotonic_and_pays_back() {
        let mut tl = Timeline::new(4 * SEC);
        tl.start(0, T0, 0);
        feed(&mut tl, 1..25, |i| i * FRAME, |i| T0 + i * FRAME);
        let back = 60 * SEC;
        let after = feed(
            &mut tl,
            25..25 * 600,
            |i| i * FRAME,
            |i| T0 - back + i * FRAME,
        );
        assert!(strictly_increasing(&after));
        assert!(after.iter().all(|m| !m.gap));
        let leads: Vec<i64> = after
            .iter()
            .filter_map(|m| match m.discontinuity {
                Some(Discontinuity::HostClockBack { lead }) => Some(lead),
                _ => None,
            })
            .collect();
        assert_eq!(leads.len(), 1, "one re-anchor, then the lead is paid back");
        // After 10 minutes the lead shrank by about 500 ppm × 600 s = 0.3 s.
        let last = after.last().unwrap().t;
        let host = T0 - back + (25 * 600 - 1) * FRAME;
        let lead_now = last - host;
        assert!(lead_now < leads[0] - SEC / 4 && lead_now > leads[0] - SEC / 2);
    }

    #[test]
    fn the_floor_keeps_runs_from_overlapping() {
        let mut tl = Timeline::new(5 * SEC);
        let t = tl.start(0, T0, T0 + 10 * SEC);
        assert_eq!(t, T0 + 10 * SEC);
        // The lead from the floor is paid back, store time never goes below the floor.
        let m = feed(&mut tl, 1..100, |i| i * FRAME, |i| T0 + i * FRAME);
        assert!(m.iter().all(|x| x.t > T0 + 10 * SEC));
        assert!(strictly_increasing(&m));
    }
}
