//! The artifact store: every successful attempt's `output.json` at
//! `{tenant}/{job}/{task}/{attempt}/output.json`, on a local directory (embedded default) or S3,
//! through `object_store`; a local directory keeps small outputs packed in one SQLite file
//! ([`crate::small_objects`]). Reads verify size and sha256 against the reference, so a
//! corrupted or substituted artifact is an error, never silently used.

use std::sync::Arc;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};
use splai_config::ArtifactSettings;
use splai_events::{ArtifactRef, AttemptId};

use crate::small_objects::SmallObjects;

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
    /// A `file://` store's small objects (see [`SmallObjects`]).
    small: Option<Arc<SmallObjects>>,
}

/// Outputs up to this size go to a local store's small objects, written on the caller's thread
/// (one short SQLite transaction, cheaper than object_store's hand-off to a blocking thread).
const SMALL_OBJECT_BYTES: usize = 64 * 1024;

impl ArtifactStore {
    /// `file://DIR` (created when missing) or `s3://BUCKET` (endpoint and region from settings,
    /// credentials from the AWS_* environment).
    pub fn open(settings: &ArtifactSettings) -> Result<Self, ArtifactError> {
        let url = settings.url.clone();
        let err = |message: String| ArtifactError::Open { url: url.clone(), message };
        let mut small = None;
        let store: Arc<dyn ObjectStore> = if let Some(dir) = url.strip_prefix("file://") {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
            small = Some(Arc::new(
                SmallObjects::open(std::path::Path::new(dir)).map_err(|e| err(e.to_string()))?,
            ));
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
        Ok(Self { store, url, small })
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
        self.put_at(Self::output_path(tenant, attempt)?, bytes).await
    }

    /// Where SPLAI keeps its own objects (a scheduler's snapshots): `~` starts no tenant's name.
    pub fn system_path(name: &str) -> Result<String, ArtifactError> {
        if name.is_empty() || name.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
            return Err(ArtifactError::BadSegment { segment: name.to_string() });
        }
        Ok(format!("~{name}"))
    }

    /// Write one of SPLAI's own objects at [`Self::system_path`]`(name)`.
    pub async fn put_system(&self, name: &str, bytes: Vec<u8>) -> Result<ArtifactRef, ArtifactError> {
        self.put_at(Self::system_path(name)?, bytes).await
    }

    /// Delete the object `reference` names (gone already is fine).
    pub async fn delete(&self, reference: &ArtifactRef) -> Result<(), ArtifactError> {
        let path = reference.path.as_str();
        let err = |message: String| ArtifactError::Write { path: path.to_string(), message };
        if let Some(small) = &self.small {
            small.remove(path).map_err(|e| err(e.to_string()))?;
        }
        match self.store.delete(&Path::from(path)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(err(e.to_string())),
        }
    }

    async fn put_at(&self, path: String, bytes: Vec<u8>) -> Result<ArtifactRef, ArtifactError> {
        let reference = ArtifactRef {
            path: path.clone(),
            sha256: hex::encode(Sha256::digest(&bytes)),
            size_bytes: bytes.len() as u64,
        };
        let write_err = |message: String| ArtifactError::Write { path: path.clone(), message };
        match &self.small {
            Some(small) if bytes.len() <= SMALL_OBJECT_BYTES => {
                small.put(&path, &bytes).map_err(|e| write_err(e.to_string()))?;
            }
            _ => {
                if let Some(small) = &self.small {
                    // A rewrite as a file must not leave an older small copy to be read first.
                    small.remove(&path).map_err(|e| write_err(e.to_string()))?;
                }
                self.store
                    .put(&Path::from(path.as_str()), PutPayload::from(bytes))
                    .await
                    .map_err(|e| write_err(e.to_string()))?;
            }
        }
        Ok(reference)
    }

    /// Read an artifact and check it against its reference.
    pub async fn get(&self, reference: &ArtifactRef) -> Result<Bytes, ArtifactError> {
        let path = reference.path.clone();
        let read_err = |message: String| ArtifactError::Read { path: path.clone(), message };
        let packed = match &self.small {
            Some(small) => small.get(&path).map_err(|e| read_err(e.to_string()))?,
            None => None,
        };
        let bytes = match packed {
            Some(bytes) => Bytes::from(bytes),
            None => self
                .store
                .get(&Path::from(path.as_str()))
                .await
                .map_err(|e| read_err(e.to_string()))?
                .bytes()
                .await
                .map_err(|e| read_err(e.to_string()))?,
        };
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

    /// The key of a tenant's cache entry `key` (`~` never appears in a job id, so no job's
    /// outputs can share it).
    fn cache_path(tenant: &str, key: &str) -> Result<String, ArtifactError> {
        for segment in [tenant, key] {
            if segment.is_empty() || segment.contains('/') || segment == "." || segment == ".." {
                return Err(ArtifactError::BadSegment { segment: segment.to_string() });
            }
        }
        Ok(format!("{tenant}/~cache/{key}.json"))
    }

    /// File `artifact` as the tenant's output for cache key `key`.
    pub async fn put_cache_entry(
        &self,
        tenant: &str,
        key: &str,
        artifact: &ArtifactRef,
    ) -> Result<(), ArtifactError> {
        let path = Self::cache_path(tenant, key)?;
        let bytes = serde_json::to_vec(artifact).expect("an artifact reference serialises");
        let write_err = |message: String| ArtifactError::Write { path: path.clone(), message };
        match &self.small {
            Some(small) => small.put(&path, &bytes).map_err(|e| write_err(e.to_string())),
            None => self
                .store
                .put(&Path::from(path.as_str()), PutPayload::from(bytes))
                .await
                .map(|_| ())
                .map_err(|e| write_err(e.to_string())),
        }
    }

    /// The tenant's output filed under cache key `key`, if any.
    pub async fn cache_entry(&self, tenant: &str, key: &str) -> Result<Option<ArtifactRef>, ArtifactError> {
        let path = Self::cache_path(tenant, key)?;
        let read_err = |message: String| ArtifactError::Read { path: path.clone(), message };
        let bytes = match &self.small {
            Some(small) => small.get(&path).map_err(|e| read_err(e.to_string()))?.map(Bytes::from),
            None => match self.store.get(&Path::from(path.as_str())).await {
                Ok(found) => Some(found.bytes().await.map_err(|e| read_err(e.to_string()))?),
                Err(object_store::Error::NotFound { .. }) => None,
                Err(e) => return Err(read_err(e.to_string())),
            },
        };
        bytes.map(|b| serde_json::from_slice(&b).map_err(|e| read_err(e.to_string()))).transpose()
    }
}
