//! Counters the API can read: one [`Metrics`] per server (atomics, updated from every task) and
//! one [`ChannelCounters`] per channel that ever had a media session.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use serde::Serialize;

macro_rules! counters {
    ($(#[$doc:meta])* $name:ident / $snap:ident { $($(#[$fdoc:meta])* $field:ident,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Default)]
        pub struct $name {
            $($(#[$fdoc])* pub $field: AtomicU64,)*
        }

        /// A point-in-time copy of the counters.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
        pub struct $snap {
            $($(#[$fdoc])* pub $field: u64,)*
        }

        impl $name {
            /// Copies every counter (each read is atomic; the set is not a consistent cut).
            pub fn snapshot(&self) -> $snap {
                $snap {
                    $($field: self.$field.load(Ordering::Relaxed),)*
                }
            }
        }
    };
}

counters! {
    /// Server-wide counters. Every problem the server survives (garbage, bad bodies, refused
    /// requests, media faults) is counted here as well as logged with the device ID.
    Metrics / MetricsSnapshot {
        /// UDP datagrams received on the SIP socket.
        udp_datagrams_in,
        /// SIP messages framed from TCP connections.
        tcp_messages_in,
        /// Datagrams or TCP bytes that were not a parsable SIP message (garbage, truncated SIP).
        sip_parse_errors,
        /// Requests received (after parsing).
        requests_in,
        /// Responses received.
        responses_in,
        /// Responses that matched no transaction.
        responses_stray,
        /// Retransmitted requests absorbed by the transaction layer.
        retransmissions_in,
        /// Requests that could not be matched to or entered into a transaction (missing headers,
        /// table full).
        transaction_errors,
        /// Messages we could not send (socket error, TCP connection gone, queue full).
        send_failures,
        /// Requests we sent (first transmission).
        requests_out,
        /// REGISTERs that bound a device (first registration or a new binding).
        registrations,
        /// Unregistrations (`Expires: 0`).
        unregistrations,
        /// Keepalives accepted.
        keepalives,
        /// Failed REGISTER authentications.
        auth_failures,
        /// Sources banned after repeated failures.
        bans,
        /// Requests from banned sources (dropped silently).
        banned_requests,
        /// Requests refused (403/400/503 from the registry).
        requests_refused,
        /// MANSCDP bodies that did not parse (bad XML, missing fields).
        bad_bodies,
        /// Devices going online.
        devices_online,
        /// Devices going offline.
        devices_offline,
        /// Catalog queries sent.
        catalog_queries,
        /// Catalogs completed with every announced item.
        catalogs_complete,
        /// Catalogs completed with fewer items than announced, or without SumNum.
        catalogs_incomplete,
        /// Catalog queries that got no packet at all.
        catalogs_unanswered,
        /// Catalogs whose SumNum, packet counts or items did not add up.
        catalog_inconsistencies,
        /// Catalog packets dropped because too many catalogs were in progress.
        catalog_packets_dropped,
        /// Catalog change notifications (NOTIFY or MESSAGE) received.
        catalog_notifies,
        /// Catalog subscriptions that became active.
        subscriptions_active,
        /// Catalog subscriptions refused as unsupported.
        subscriptions_unsupported,
        /// DeviceInfo / DeviceStatus queries sent.
        info_queries,
        /// Queries (DeviceInfo, DeviceStatus) that timed out.
        query_timeouts,
        /// INVITEs sent.
        invites_sent,
        /// INVITEs accepted (media session started).
        invites_accepted,
        /// INVITEs refused by the device.
        invites_rejected,
        /// INVITEs not answered in time.
        invites_unanswered,
        /// Unusable INVITE answers (bad SDP, wrong transport).
        invites_bad_answer,
        /// Sessions the device ended with BYE.
        sessions_hung_up,
        /// Sessions ended because media stopped (no RTP, garbage).
        media_failures,
        /// Media ports that could not be bound.
        media_port_errors,
        /// RTP packets accepted (after the SSRC filter).
        rtp_packets,
        /// RTP payload bytes accepted.
        rtp_bytes,
        /// RTP packets lost (sequence gaps).
        rtp_lost,
        /// Datagrams / TCP frames that were not RTP.
        rtp_invalid,
        /// RTP packets dropped for a wrong SSRC.
        rtp_ssrc_mismatches,
        /// PS parse errors (resynchronisations).
        ps_corrupt,
        /// Video frames handed to the store.
        frames,
        /// Frames dropped because the store's queue was full.
        frames_dropped,
        /// Frames dropped because no codec parameters were known yet (a stream joined
        /// between key frames).
        frames_before_parameters,
        /// Sessions interrupted (`SourceEvent::Interrupted` sent).
        interruptions,
        /// Uplink registrations that succeeded.
        uplink_up,
        /// Uplink losses.
        uplink_down,
        /// Catalog queries from upper platforms answered.
        uplink_catalog_queries,
        /// Events dropped because the daemon did not drain the event channel.
        events_dropped,
        /// Gauge: devices holding a registration now.
        registered_devices_now,
        /// Gauge: devices online now.
        online_devices_now,
        /// Gauge: live SIP transactions (server and client side).
        live_transactions_now,
        /// Gauge: channels with a media session attempt in progress or established.
        media_sessions_now,
    }
}

counters! {
    /// Media counters of one channel, cumulative over its sessions.
    ChannelCounters / ChannelCountersSnapshot {
        /// Sessions started (2xx to our INVITE).
        sessions,
        /// RTP packets accepted.
        rtp_packets,
        /// RTP payload bytes accepted.
        rtp_bytes,
        /// RTP packets lost.
        rtp_lost,
        /// RTP packets rejected for a wrong SSRC.
        rtp_ssrc_mismatches,
        /// Datagrams that were not RTP.
        rtp_invalid,
        /// PS parse errors.
        ps_corrupt,
        /// Frames handed to the store.
        frames,
        /// Frames dropped because the store's queue was full.
        frames_dropped,
        /// Frames dropped before the first codec parameters.
        frames_before_parameters,
        /// Interruptions.
        interruptions,
    }
}

/// Wall-clock time of the last frame of a channel (ms since the epoch, 0 = never).
#[derive(Debug, Default)]
pub struct LastFrame(AtomicI64);

impl LastFrame {
    /// Records a frame time.
    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::Relaxed);
    }

    /// The last frame time, if any.
    pub fn get(&self) -> Option<i64> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            v => Some(v),
        }
    }
}

/// Adds `n` to a counter.
pub(crate) fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Sets a gauge.
pub(crate) fn set(c: &AtomicU64, v: u64) {
    c.store(v, Ordering::Relaxed);
}

/// Adds 1 to a counter.
pub(crate) fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}
