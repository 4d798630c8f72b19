//! What can go wrong while reconciling.

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("gateway {url}")]
    Gateway {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("rendering {what}")]
    Render {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}
