//! Merging the layers.

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Profile, Provider};

use crate::{ConfigError, Settings};

/// The embedded defaults, documented field by field.
pub const DEFAULT_TOML: &str = include_str!("../default.toml");

/// Environment variables with this prefix override settings (`__` separates levels).
pub const ENV_PREFIX: &str = "SPLAI_";

/// Clear every `SPLAI_` variable from `cmd`'s environment: a child `splai` started by a test or a
/// benchmark takes its settings from its own flags and file, not from what the parent inherited.
pub fn without_settings_env(cmd: &mut std::process::Command) -> &mut std::process::Command {
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with(ENV_PREFIX)) {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Environment keys under the prefix that are not settings: `SPLAI_CONFIG` (the file path),
/// `SPLAI_TEST_*` (test-suite service addresses) and `SPLAI_KERNELS_*` (`splai-kernels` reads
/// `SPLAI_KERNELS_PORTABLE` and `SPLAI_KERNELS_AVX2` to run narrower instruction sets).
fn reserved_env_key(key: &str) -> bool {
    key == "config" || key.starts_with("test_") || key.starts_with("kernels_")
}

/// Builds the effective settings from the layers.
#[derive(Debug, Default)]
pub struct Loader {
    file: Option<PathBuf>,
    overrides: Vec<(String, String)>,
}

impl Loader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a TOML file layer.
    pub fn file(mut self, path: Option<&Path>) -> Self {
        self.file = path.map(Path::to_path_buf);
        self
    }

    /// Add CLI `key=value` overrides (the value is parsed as TOML, else taken as a string).
    pub fn overrides<I, S>(mut self, args: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for arg in args {
            let arg = arg.as_ref();
            let (key, value) = arg
                .split_once('=')
                .filter(|(k, _)| !k.trim().is_empty())
                .ok_or_else(|| ConfigError::BadOverride { arg: arg.to_string() })?;
            self.overrides.push((key.trim().to_string(), value.to_string()));
        }
        Ok(self)
    }

    /// Merge, deserialise and validate.
    pub fn load(self) -> Result<Settings, ConfigError> {
        let mut figment =
            Figment::from(Named { name: "embedded defaults".into(), inner: Toml::string(DEFAULT_TOML) });
        if let Some(path) = &self.file {
            if !path.is_file() {
                return Err(ConfigError::FileMissing { path: path.display().to_string() });
            }
            let text = std::fs::read_to_string(path)
                .map_err(|source| ConfigError::FileRead { path: path.display().to_string(), source })?;
            // Parse first so a syntax error names the file and line.
            toml::from_str::<toml::Value>(&text)
                .map_err(|source| ConfigError::FileSyntax { path: path.display().to_string(), source })?;
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(
            Env::prefixed(ENV_PREFIX)
                .split("__")
                .filter(|k| !reserved_env_key(&k.as_str().to_ascii_lowercase())),
        );
        for (key, value) in &self.overrides {
            let inner = Serialized::default(key, parse_value(value));
            figment = figment.merge(Named { name: format!("--set {key}"), inner });
        }
        let settings: Settings = figment.extract().map_err(ConfigError::from_figment)?;
        settings.validate()?;
        Ok(settings)
    }
}

/// `8` → integer, `true` → bool, `["a"]` → array, anything else → the string itself.
fn parse_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

impl Settings {
    /// The effective settings as TOML (`splai config show`).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("settings serialise to TOML")
    }
}

/// A provider under a name users recognise in error messages.
struct Named<P> {
    name: String,
    inner: P,
}

impl<P: Provider> Provider for Named<P> {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        self.inner.data()
    }
}
