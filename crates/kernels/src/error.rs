/// Errors of the kernels: inputs whose shapes do not fit.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("shape mismatch: {0}")]
    Shape(String),
}
