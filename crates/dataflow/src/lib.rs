//! The SPLAI scheduler: a timely/differential dataflow that incrementally maintains runnable tasks,
//! live worker capacity and assignments over the event log (ARCHITECTURE §5).
//!
//! Not built yet: issue 3 builds it on the contract (`splai-events`) and the log (`splai-ingest`).
