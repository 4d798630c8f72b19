//! Configuration errors: each names the key and, where known, the source that set it.

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown configuration key `{key}`{source_note}")]
    UnknownKey { key: String, source_note: String },
    #[error("invalid value for `{key}`{source_note}: {message}")]
    InvalidValue { key: String, message: String, source_note: String },
    #[error("configuration file {path} does not exist")]
    FileMissing { path: String },
    #[error("configuration file {path} cannot be read")]
    FileRead {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("configuration file {path} is not valid TOML")]
    FileSyntax {
        path: String,
        #[source]
        source: toml::de::Error,
    },
    #[error("invalid --set argument `{arg}`: expected key=value")]
    BadOverride { arg: String },
    #[error("invalid configuration: {message}")]
    Other { message: String },
}

impl ConfigError {
    pub(crate) fn invalid(key: &str, message: impl Into<String>) -> Self {
        ConfigError::InvalidValue { key: key.into(), message: message.into(), source_note: String::new() }
    }

    /// Translate figment's error into one that names the key and its source.
    pub(crate) fn from_figment(err: figment::Error) -> Self {
        use figment::error::Kind;
        let first = err.into_iter().next();
        let Some(err) = first else {
            return ConfigError::Other { message: "unknown error".into() };
        };
        let mut path = err.path.clone();
        if let Kind::MissingField(field) = &err.kind {
            path.push(field.to_string());
        }
        let source_note = err
            .metadata
            .as_ref()
            .map(|m| match &m.source {
                Some(src) => format!(" (from {} {src})", m.name),
                None if m.name.contains("environment") => {
                    let var = path.join("__").to_ascii_uppercase();
                    format!(" (from environment variable {}{var})", crate::ENV_PREFIX)
                }
                None => format!(" (from {})", m.name),
            })
            .unwrap_or_default();
        match &err.kind {
            Kind::UnknownField(..) => ConfigError::UnknownKey { key: path.join("."), source_note },
            Kind::MissingField(_) => {
                ConfigError::InvalidValue { key: path.join("."), message: "missing".into(), source_note }
            }
            kind => ConfigError::InvalidValue { key: path.join("."), message: kind.to_string(), source_note },
        }
    }
}
