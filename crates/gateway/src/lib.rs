//! The SPLAI gateway: admission over HTTP, the SQL projection of `job-events`, SSE streams and the
//! dashboard (ARCHITECTURE §7).
//!
//! Not built yet: issue 5 builds it.
