//! Open the configured backend.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use splai_config::{LogBackend, LogSettings};

use super::{EmbeddedLog, EventLog, KafkaLog, LogError};

/// The log `settings` describe.
pub async fn open_log(settings: &LogSettings) -> Result<Arc<dyn EventLog>, LogError> {
    Ok(match settings.backend {
        LogBackend::Embedded => Arc::new(
            EmbeddedLog::open(
                Path::new(&settings.embedded.path),
                settings.embedded.fsync,
                Duration::from_millis(settings.embedded.poll_interval_ms),
            )
            .await?,
        ),
        LogBackend::Kafka => Arc::new(KafkaLog::connect(&settings.kafka, settings.replication)?),
    })
}
