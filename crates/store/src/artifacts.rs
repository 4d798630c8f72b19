//! The artifact store: every successful attempt's `output.json` at
//! `{tenant}/{job}/{task}/{attempt}/output.json`, on a local directory (embedded default) or S3,
//! through `object_store`. Reads verify size and sha256 against the reference, so a corrupted or
//! substituted artifact is an error, never silently used.

use std::sync::Arc;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};
use splai_config::ArtifactSettings;
use splai_events::{ArtifactRef, AttemptId};

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("artifact store {url} cannot be opened: {message}")]
    Open { url: String, message: String },
    #[error("writing artifact {path} failed: {message}")]
    Write { path: String, message: String },
    #[error("reading artifact {path} failed: {message}")]
    Read { path: String, message: String },
    #[error("artifact {path} does not match its reference: {message}")]
    Mismatch { path: String, message: String },
    #[error("invalid path segment `{segment}`: ids may not contain '/' or be '.' or '..'")]
    BadSegment { segment: String },
}

/// Where artifacts live.
#[derive(Debug, Clone)]
pub struct ArtifactStore {
    store: Arc<dyn ObjectStore>,
    url: String,
    /// The directory of a `file://` store, for small writes made directly.
    local_dir: Option<std::path::PathBuf>,
}

/// Outputs up to this size are written to a local store on the caller's thread: a few file
/// system calls, cheaper than object_store's hand-off to a blocking thread and back.
const DIRECT_WRITE_BYTES: usize = 64 * 1024;

impl ArtifactStore {
    /// `file://DIR` (created when missing) or `s3://BUCKET` (endpoint and region from settings,
    /// credentials from the AWS_* environment).
    pub fn open(settings: &ArtifactSettings) -> Result<Self, ArtifactError> {
        let url = settings.url.clone();
        let err = |message: String| ArtifactError::Open { url: url.clone(), message };
        let local_dir = url.strip_prefix("file://").map(std::path::PathBuf::from);
        let store: Arc<dyn ObjectStore> = if let Some(dir) = url.strip_prefix("file://") {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
            Arc::new(LocalFileSystem::new_with_prefix(dir).map_err(|e| err(e.to_string()))?)
        } else if let Some(bucket) = url.strip_prefix("s3://") {
            let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket).with_region(&settings.s3_region);
            if !settings.s3_endpoint.is_empty() {
                b = b
                    .with_endpoint(&settings.s3_endpoint)
                    .with_allow_http(settings.s3_endpoint.starts_with("http://"));
            }
            Arc::new(b.build().map_err(|e| err(e.to_string()))?)
        } else {
            return Err(err("expected file://DIR or s3://BUCKET".into()));
        };
        Ok(Self { store, url, local_dir })
    }

    /// The key of an attempt's output.
    pub fn output_path(tenant: &str, attempt: &AttemptId) -> Result<String, ArtifactError> {
        for segment in [tenant, attempt.job_id.as_str(), attempt.task_id.as_str()] {
            if segment.is_empty() || segment.contains('/') || segment == "." || segment == ".." {
                return Err(ArtifactError::BadSegment { segment: segment.to_string() });
            }
        }
        Ok(format!("{tenant}/{}/{}/{}/output.json", attempt.job_id, attempt.task_id, attempt.attempt))
    }

    /// Write an attempt's output; returns its reference (path, sha256, size).
    pub async fn put_output(
        &self,
        tenant: &str,
        attempt: &AttemptId,
        bytes: Vec<u8>,
    ) -> Result<ArtifactRef, ArtifactError> {
        let path = Self::output_path(tenant, attempt)?;
        let reference = ArtifactRef {
            path: path.clone(),
            sha256: hex::encode(Sha256::digest(&bytes)),
            size_bytes: bytes.len() as u64,
        };
        match &self.local_dir {
            Some(dir) if bytes.len() <= DIRECT_WRITE_BYTES => write_atomically(&dir.join(&path), &bytes)
                .map_err(|e| ArtifactError::Write { path, message: e.to_string() })?,
            _ => self
                .store
                .put(&Path::from(path.as_str()), PutPayload::from(bytes))
                .await
                .map(|_| ())
                .map_err(|e| ArtifactError::Write { path, message: e.to_string() })?,
        }
        Ok(reference)
    }

    /// Read an artifact and check it against its reference.
    pub async fn get(&self, reference: &ArtifactRef) -> Result<Bytes, ArtifactError> {
        let path = reference.path.clone();
        let bytes = self
            .store
            .get(&Path::from(path.as_str()))
            .await
            .map_err(|e| ArtifactError::Read { path: path.clone(), message: e.to_string() })?
            .bytes()
            .await
            .map_err(|e| ArtifactError::Read { path: path.clone(), message: e.to_string() })?;
        if bytes.len() as u64 != reference.size_bytes {
            return Err(ArtifactError::Mismatch {
                path,
                message: format!("{} bytes, expected {}", bytes.len(), reference.size_bytes),
            });
        }
        let sha = hex::encode(Sha256::digest(&bytes));
        if sha != reference.sha256 {
            return Err(ArtifactError::Mismatch {
                path,
                message: format!("sha256 {sha}, expected {}", reference.sha256),
            });
        }
        Ok(bytes)
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

/// Write `bytes` to `file` as object_store does: into a temporary file beside it, then renamed
/// over it, so a reader sees the old content or the new, never part of it.
fn write_atomically(file: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("output");
    let tmp = file.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, file).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
