//! Layered SPLAI settings.
//!
//! Sources, last wins: the embedded `default.toml` → a `--config` file → `SPLAI_` environment
//! variables (`__` between levels: `SPLAI_LOG__KAFKA__BROKERS`) → CLI `--set key=value`.
//! The result is validated once; an unknown key or an invalid value is an error that names the key
//! and the source it came from. `default.toml` documents every field with its unit and default.

mod error;
mod load;
mod settings;

pub use error::ConfigError;
pub use load::{DEFAULT_TOML, ENV_PREFIX, Loader, without_settings_env};
pub use settings::*;
