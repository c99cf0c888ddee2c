//! GB/T 28181: sans-IO SIP, digest auth, MANSCDP XML and SDP; the SIP server, device registry and PS-over-RTP media sessions.
