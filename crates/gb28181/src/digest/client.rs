//! Client-side digest: answering an upper platform's challenge when we register upward
//! (cascade, 级联).

use super::{compute_response, Algorithm, Challenge, Credentials, DigestInput, QopAuth};

/// Picks the challenge to answer among several `WWW-Authenticate` headers: SHA-256 before MD5
/// (RFC 7616 3.7: the server lists them in preference order, but we do not rely on it).
pub fn choose_challenge(challenges: &[Challenge]) -> Option<&Challenge> {
    challenges
        .iter()
        .find(|c| c.effective_algorithm() == Algorithm::Sha256)
        .or_else(|| challenges.first())
}

/// The `Authorization` for `method`/`uri` answering `challenge`. `cnonce` and `nc` are used
/// only when the challenge offers `qop=auth`; `nc` counts requests made with this nonce
/// (start at 1).
pub fn authorize(
    challenge: &Challenge,
    method: &str,
    uri: &str,
    username: &str,
    password: &str,
    cnonce: &str,
    nc: u32,
) -> Credentials {
    let algorithm = challenge.effective_algorithm();
    let nc_hex = format!("{nc:08x}");
    let qop = challenge
        .qop
        .iter()
        .any(|q| q == "auth")
        .then_some(QopAuth {
            nc: &nc_hex,
            cnonce,
        });
    let response = compute_response(&DigestInput {
        algorithm,
        username,
        realm: &challenge.realm,
        password,
        method,
        uri,
        nonce: &challenge.nonce,
        qop,
    });
    Credentials {
        username: username.to_owned(),
        realm: challenge.realm.clone(),
        nonce: challenge.nonce.clone(),
        uri: uri.to_owned(),
        response,
        // Always explicit, as some GB platforms (like Dahua NVRs on the challenge side)
        // misbehave without it.
        algorithm: Some(algorithm),
        qop: qop.map(|_| "auth".to_owned()),
        nc: qop.map(|_| nc_hex.clone()),
        cnonce: qop.map(|_| cnonce.to_owned()),
        opaque: challenge.opaque.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::digest::server::{AuthContext, AuthPolicy, DigestServer, Verification};
    use crate::gbid::GbId;
    use crate::sip::parse_datagram;
    use crate::testdata::vector;

    #[test]
    fn answers_the_real_exosip_challenge_like_the_dahua_did() {
        // Vector 02's challenge (no qop) answered for vector 03's request: the header has the
        // same shape as the Dahua's (username, realm, nonce, uri, response, algorithm=MD5).
        let m = parse_datagram(vector("02_server_401_unauthorized.sip")).unwrap();
        let ch = Challenge::parse(&m.www_authenticate()[0]).unwrap();
        let c = authorize(
            &ch,
            "REGISTER",
            "sip:34020000002000000010@192.168.6.106:5062",
            "34020000001320000002",
            "secret",
            "unused",
            1,
        );
        assert_eq!(c.qop, None);
        let v = c.to_header_value();
        assert!(v.starts_with("Digest username=\"34020000001320000002\", realm=\"34020000\", nonce=\"1715926053\", uri=\"sip:34020000002000000010@192.168.6.106:5062\", response=\""));
        assert!(v.ends_with(", algorithm=MD5"), "{v}");
    }

    #[test]
    fn client_and_server_agree_for_every_offer() {
        let t0 = Instant::now();
        let srv = DigestServer::new("3402000000", [9; 32], t0, AuthPolicy::default());
        let dev = GbId::parse("34020000002000000001").unwrap();
        let src = "10.0.0.9".parse().unwrap();
        for prefers_sha in [false, true] {
            let chs = srv.challenges(t0, src, prefers_sha, false);
            let ch = choose_challenge(&chs).unwrap();
            assert_eq!(
                ch.effective_algorithm(),
                if prefers_sha {
                    Algorithm::Sha256
                } else {
                    Algorithm::Md5
                }
            );
            let uri = "sip:34020000002000000001@3402000000";
            let c = authorize(ch, "REGISTER", uri, dev.as_str(), "pw", "0a4f113b", 1);
            assert_eq!(c.nc.as_deref(), Some("00000001"));
            let parsed = Credentials::parse(&c.to_header_value()).unwrap();
            assert!(matches!(
                srv.verify(
                    &parsed,
                    &AuthContext {
                        method: "REGISTER",
                        request_uri: uri,
                        device: &dev,
                        now: t0,
                        source: src
                    },
                    Some("pw")
                ),
                Verification::Ok(_)
            ));
        }
    }
}
