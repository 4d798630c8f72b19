//! The OpenAPI document, generated from the handlers' annotations and served at `/openapi.json`,
//! with every error status each operation can answer (`errors`) and request bodies as the
//! handlers check them (`requests`). `splai contract generate` writes it to `contract/openapi.json`.

mod errors;
mod requests;

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{admin, artifacts, audit, health, jobs, live_metrics, metrics, openai, stream, workers};

#[derive(OpenApi)]
#[openapi(
    info(title = "SPLAI API", description = "Submit AI task graphs, follow them, read their artifacts and lineage."),
    paths(
        jobs::submit, jobs::list, jobs::get, jobs::cancel, jobs::tasks, stream::stream,
        artifacts::list, artifacts::content, artifacts::result_csv, artifacts::lineage, workers::list,
        admin::list, admin::requeue, audit::list, audit::verify, health::healthz, health::readyz, metrics::metrics, live_metrics::live,
        openai::chat_completions, openai::completions, openai::embeddings, openai::models,
    ),
    components(schemas(crate::error::ErrorBody, openai::OpenAiError, openai::OpenAiErrorDetail, admin::RequeueRequest)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
#[derive(Debug)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document this build serves (and `splai contract generate` writes to `contract/openapi.json`).
pub fn document() -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    requests::document(&mut doc);
    errors::document(&mut doc);
    doc
}

pub async fn json() -> Json<serde_json::Value> {
    Json(document())
}
