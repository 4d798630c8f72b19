//! Who is calling: a bearer token (stored hashed in the config) names the tenant and roles. With
//! auth off (only allowed on the embedded default) the tenant comes from `X-SPLAI-Tenant`, else
//! `default`, with every role.

use std::collections::HashMap;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use splai_config::GatewaySettings;

use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Operator,
    Submitter,
    Reader,
}

impl Role {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "admin" => Role::Admin,
            "operator" => Role::Operator,
            "submitter" => Role::Submitter,
            "reader" => Role::Reader,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub tenant: String,
    pub roles: Vec<Role>,
    /// The token's name, or `anonymous` with auth off (for the audit trail).
    pub actor: String,
}

impl Caller {
    /// 403 unless the caller has one of `roles` (admins may do everything).
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if self.roles.contains(&Role::Admin) || self.roles.iter().any(|r| roles.contains(r)) {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this token lacks the role needed here (one of {roles:?})"),
        ))
    }
}

/// Token hash → caller.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    pub enabled: bool,
    by_hash: HashMap<String, Caller>,
}

pub use splai_ingest::intake::token_hash;

impl Tokens {
    pub fn from_settings(g: &GatewaySettings) -> Self {
        let by_hash = g
            .tokens
            .iter()
            .map(|(name, t)| {
                let caller = Caller {
                    tenant: t.tenant.clone(),
                    roles: t.roles.iter().filter_map(|r| Role::parse(r)).collect(),
                    actor: name.clone(),
                };
                (t.sha256.to_ascii_lowercase(), caller)
            })
            .collect();
        Self { enabled: g.auth, by_hash }
    }

    pub fn caller(
        &self,
        authorization: Option<&str>,
        tenant_header: Option<&str>,
    ) -> Result<Caller, ApiError> {
        if let Some(t) = tenant_header.filter(|t| !valid_tenant(t)) {
            return Err(ApiError::bad_request(
                "invalid_tenant",
                format!(
                    "header `X-SPLAI-Tenant` must be 1-64 characters of letters, digits, `-`, `_` or `.`, \
                     starting with a letter or digit; got {t:?}"
                ),
            ));
        }
        if !self.enabled {
            return Ok(Caller {
                tenant: tenant_header.unwrap_or("default").to_string(),
                roles: vec![Role::Admin],
                actor: "anonymous".into(),
            });
        }
        let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m);
        let header = authorization.ok_or_else(|| unauthorized("missing `Authorization: Bearer <token>`"))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| unauthorized("expected `Authorization: Bearer <token>`"))?;
        let caller = self
            .by_hash
            .get(&token_hash(token.trim()))
            .cloned()
            .ok_or_else(|| unauthorized("unknown API token"))?;
        // With auth on, the token decides the tenant: a header may only repeat it.
        match tenant_header {
            Some(t) if t != caller.tenant => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "header `X-SPLAI-Tenant` names tenant `{t}`, but the token is tenant `{}`'s",
                    caller.tenant
                ),
            )),
            _ => Ok(caller),
        }
    }
}

/// A tenant name is a path segment of artifacts and a key of the log: no `/`, no `..`, no
/// leading dot.
fn valid_tenant(t: &str) -> bool {
    t.len() <= 64
        && t.starts_with(|c: char| c.is_ascii_alphanumeric())
        && t.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        // A tenant header that is not text is as wrong as one that is not a tenant name.
        let tenant = match parts.headers.get("x-splai-tenant") {
            Some(v) => Some(v.to_str().unwrap_or("\u{fffd}")),
            None => None,
        };
        state.tokens.caller(header("authorization"), tenant)
    }
}
