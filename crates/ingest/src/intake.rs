//! Who may write to `jobs` and `control`: the producer-side half of authentication.
//!
//! With `gateway.auth` on, every record on those topics must carry either
//! - `splai-signature`: HMAC-SHA256 of the payload under `gateway.signing_key` (hex) — what the
//!   gateway attaches to the records it produces after its own admission; or
//! - `authorization: Bearer TOKEN`: an API token of the envelope's tenant with a role that may do
//!   what the record asks — what any other Kafka producer attaches.
//!
//! The check is a pure function of the record and the configuration, so a scheduler replaying the
//! log judges every record as it did live (as long as the token table only grows; see
//! docs/operations.md on rotating tokens). Tokens are never written to the log by SPLAI itself.

use std::collections::HashMap;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use splai_config::GatewaySettings;
use splai_events::{Envelope, Event};

use crate::log::Headers;

pub const SIGNATURE_HEADER: &str = "splai-signature";
pub const AUTHORIZATION_HEADER: &str = "authorization";
/// Shortest signing key accepted (characters).
pub const MIN_KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IntakeError {
    #[error(
        "gateway.signing_key must be set (at least {MIN_KEY_LEN} characters) when gateway.auth is on: \
         the gateway signs the records it produces with it and the scheduler checks them"
    )]
    MissingKey,
}

/// Why a record was refused: `code` is `unauthenticated` or `forbidden`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub code: &'static str,
    pub reason: String,
}

/// Who a record was accepted from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Signed by a gateway, which authenticated its caller.
    Gateway,
    /// A Kafka producer's API token, by name.
    Token(String),
}

#[derive(Debug, Clone)]
struct Grant {
    name: String,
    tenant: String,
    roles: Vec<String>,
}

/// The checks, built from the gateway settings; `None` from [`Gate::from_settings`] when auth is off.
#[derive(Debug, Clone)]
pub struct Gate {
    key: Vec<u8>,
    by_hash: HashMap<String, Grant>,
}

impl Gate {
    pub fn from_settings(g: &GatewaySettings) -> Result<Option<Self>, IntakeError> {
        if !g.auth {
            return Ok(None);
        }
        if g.signing_key.chars().count() < MIN_KEY_LEN {
            return Err(IntakeError::MissingKey);
        }
        let by_hash = g
            .tokens
            .iter()
            .map(|(name, t)| {
                let grant = Grant { name: name.clone(), tenant: t.tenant.clone(), roles: t.roles.clone() };
                (t.sha256.to_ascii_lowercase(), grant)
            })
            .collect();
        Ok(Some(Self { key: g.signing_key.as_bytes().to_vec(), by_hash }))
    }

    /// The header a trusted writer attaches to `payload`.
    pub fn signature(&self, payload: &[u8]) -> (String, Vec<u8>) {
        (
            SIGNATURE_HEADER.to_string(),
            hex::encode(mac(&self.key, payload).finalize().into_bytes()).into_bytes(),
        )
    }

    /// Accept or refuse one record of `jobs`/`control` with these headers.
    pub fn check(&self, payload: &[u8], headers: &Headers, envelope: &Envelope) -> Result<Principal, Denied> {
        let header = |name: &str| crate::log::header(headers, name);
        if let Some(sig) = header(SIGNATURE_HEADER) {
            // Compared in constant time by the MAC itself.
            let matches = std::str::from_utf8(sig)
                .ok()
                .and_then(|text| hex::decode(text).ok())
                .is_some_and(|raw| mac(&self.key, payload).verify_slice(&raw).is_ok());
            return if matches {
                Ok(Principal::Gateway)
            } else {
                Err(denied("unauthenticated", "the splai-signature header does not match the record"))
            };
        }
        let Some(value) = header(AUTHORIZATION_HEADER) else {
            return Err(denied(
                "unauthenticated",
                "no `authorization: Bearer TOKEN` header (auth is on: producers must send an API token)",
            ));
        };
        let text = String::from_utf8_lossy(value);
        let Some(token) = text.trim().strip_prefix("Bearer ").map(str::trim).filter(|t| !t.is_empty()) else {
            return Err(denied("unauthenticated", "the authorization header is not `Bearer TOKEN`"));
        };
        let Some(grant) = self.by_hash.get(&token_hash(token)) else {
            return Err(denied("unauthenticated", "unknown API token"));
        };
        if grant.tenant != envelope.tenant {
            return Err(denied(
                "forbidden",
                format!(
                    "token `{}` belongs to tenant `{}`, not `{}`",
                    grant.name, grant.tenant, envelope.tenant
                ),
            ));
        }
        if matches!(envelope.event, Event::AuditAnchor(_)) {
            return Err(denied(
                "forbidden",
                "only a gateway writes audit anchors (signed), never an API token",
            ));
        }
        if matches!(envelope.event, Event::SnapshotWritten(_) | Event::SchedulerLease(_)) {
            return Err(denied(
                "forbidden",
                format!(
                    "only a scheduler writes `{}` records (signed), never an API token",
                    envelope.event.kind()
                ),
            ));
        }
        let needed = roles_for(&envelope.event);
        if !grant.roles.iter().any(|r| r == "admin" || needed.contains(&r.as_str())) {
            return Err(denied(
                "forbidden",
                format!(
                    "token `{}` lacks the role for `{}` (one of {needed:?})",
                    grant.name,
                    envelope.event.kind()
                ),
            ));
        }
        Ok(Principal::Token(grant.name.clone()))
    }
}

/// The sha256 (hex) an API token is stored as (`gateway.tokens.NAME.sha256`).
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The roles that may produce this event (admin may produce anything) — the same as the REST
/// routes that make it.
fn roles_for(event: &Event) -> &'static [&'static str] {
    match event {
        Event::JobRequest(_) | Event::CancelJob(_) => &["submitter", "operator"],
        _ => &["operator"],
    }
}

fn denied(code: &'static str, reason: impl Into<String>) -> Denied {
    Denied { code, reason: reason.into() }
}

/// HMAC-SHA256 of `payload` under `key`, ready to finish or verify.
fn mac(key: &[u8], payload: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(payload);
    mac
}

#[cfg(test)]
mod tests {
    use splai_config::TokenSettings;
    use splai_events::{AuditAnchor, CancelJob, RequeueDeadLetter, SnapshotWritten};

    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    fn gate() -> Gate {
        let mut g = GatewaySettings { auth: true, signing_key: KEY.into(), ..defaults() };
        let token = |tenant: &str, roles: &[&str]| TokenSettings {
            sha256: token_hash(&format!("{tenant}-{}", roles.join("-"))),
            tenant: tenant.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        };
        g.tokens.insert("acme-sub".into(), token("acme", &["submitter"]));
        g.tokens.insert("acme-read".into(), token("acme", &["reader"]));
        g.tokens.insert("acme-admin".into(), token("acme", &["admin"]));
        Gate::from_settings(&g).unwrap().unwrap()
    }

    fn cancel(tenant: &str) -> Envelope {
        Envelope::new(
            "c1",
            1,
            tenant,
            Event::CancelJob(CancelJob { job_id: "j1".into(), reason: "x".into() }),
        )
    }

    fn bearer(token: &str) -> Headers {
        vec![("Authorization".into(), format!("Bearer {token}").into_bytes())]
    }

    fn defaults() -> GatewaySettings {
        splai_config::Loader::new().load().unwrap().gateway
    }

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let mac = mac(b"Jefe", b"what do ya want for nothing?").finalize().into_bytes();
        assert_eq!(hex::encode(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn auth_off_needs_no_key_and_auth_on_needs_a_long_one() {
        assert!(Gate::from_settings(&defaults()).unwrap().is_none());
        let short = GatewaySettings { auth: true, signing_key: "short".into(), ..defaults() };
        assert_eq!(Gate::from_settings(&short).unwrap_err(), IntakeError::MissingKey);
    }

    #[test]
    fn signed_records_pass_and_tampered_ones_do_not() {
        let g = gate();
        let e = cancel("acme");
        let headers = vec![g.signature(b"payload")];
        assert_eq!(g.check(b"payload", &headers, &e), Ok(Principal::Gateway));
        assert_eq!(g.check(b"payload!", &headers, &e).unwrap_err().code, "unauthenticated");
    }

    #[test]
    fn tokens_are_checked_for_tenant_and_role() {
        let g = gate();
        assert_eq!(
            g.check(b"", &bearer("acme-submitter"), &cancel("acme")),
            Ok(Principal::Token("acme-sub".into()))
        );
        let other = g.check(b"", &bearer("acme-submitter"), &cancel("globex")).unwrap_err();
        assert_eq!((other.code, other.reason.contains("belongs to tenant `acme`")), ("forbidden", true));
        assert_eq!(g.check(b"", &bearer("acme-reader"), &cancel("acme")).unwrap_err().code, "forbidden");
        let requeue = Envelope::new(
            "r1",
            1,
            "acme",
            Event::RequeueDeadLetter(RequeueDeadLetter { job_id: "j".into(), task_id: None }),
        );
        assert_eq!(g.check(b"", &bearer("acme-submitter"), &requeue).unwrap_err().code, "forbidden");
        assert_eq!(g.check(b"", &bearer("nope"), &cancel("acme")).unwrap_err().reason, "unknown API token");
        assert!(g.check(b"", &vec![], &cancel("acme")).unwrap_err().reason.contains("no `authorization"));
        assert!(g.check(b"", &vec![("authorization".into(), b"Basic x".to_vec())], &cancel("acme")).is_err());
    }

    #[test]
    fn only_a_gateway_writes_audit_anchors() {
        let g = gate();
        let anchor =
            Envelope::new("a", 1, "acme", Event::AuditAnchor(AuditAnchor { seq: 9, hash: "h".into() }));
        let denied = g.check(b"", &bearer("acme-submitter"), &anchor).unwrap_err();
        assert_eq!(denied.code, "forbidden", "no API token may anchor the audit chain");
        assert_eq!(g.check(b"p", &vec![g.signature(b"p")], &anchor), Ok(Principal::Gateway));
    }

    #[test]
    fn only_a_scheduler_records_snapshots() {
        let g = gate();
        let snapshot = Envelope::new(
            "s",
            1,
            "acme",
            Event::SnapshotWritten(SnapshotWritten {
                artifact: splai_events::ArtifactRef {
                    path: "p".into(),
                    sha256: "0".repeat(64),
                    size_bytes: 1,
                },
                format: 1,
                positions: vec![],
                events: 0,
            }),
        );
        for token in ["acme-submitter", "acme-admin"] {
            let denied = g.check(b"", &bearer(token), &snapshot).unwrap_err();
            assert!(denied.reason.contains("only a scheduler"), "{token}: {}", denied.reason);
        }
        assert_eq!(g.check(b"p", &vec![g.signature(b"p")], &snapshot), Ok(Principal::Gateway));
        let lease = Envelope::new(
            "l",
            1,
            "acme",
            Event::SchedulerLease(splai_events::SchedulerLease { epoch: 9, holder: "x".into(), until_ms: 1 }),
        );
        let denied = g.check(b"", &bearer("acme-admin"), &lease).unwrap_err();
        assert!(denied.reason.contains("only a scheduler"), "{}", denied.reason);
    }
}
