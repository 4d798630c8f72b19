//! The composition root. Every component has one shape: its options come from the settings
//! ([`scheduler::options`], [`executor::options`], …), `start` runs it on the shared log until the
//! [`Shutdown`] signal, and the [`Handle`] it returns is joined to learn how it ended. The CLI's
//! `splai scheduler|executor|gateway|up`, the in-process [`Stack`] the tests and benchmarks use,
//! and the child-process [`UpProcess`] all build on these, so a stack is set up in one place.

pub mod executor;
pub mod gateway;
mod handle;
pub mod process;
pub mod scheduler;
mod stack;

pub use handle::{Handle, Shutdown, shutdown_channel};
pub use process::UpProcess;
pub use stack::{Stack, StackOptions};
