//! SPLAI executors: register, beat, run assigned attempts (candle inference, embeddings, tools,
//! aggregation), write artifacts with lineage and report on `task-events` (ARCHITECTURE §6).
//!
//! Not built yet: issue 4 builds it.
