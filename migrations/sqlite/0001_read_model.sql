-- SPLAI read model (SQLite). Keep in step with migrations/postgres/0001_read_model.sql:
-- the store tests check both have the same tables and columns.
-- Times are epoch milliseconds (BIGINT); JSON documents are TEXT so one query text serves both.

CREATE TABLE jobs (
    job_id            TEXT PRIMARY KEY,
    tenant            TEXT NOT NULL,
    job_type          TEXT NOT NULL,
    priority          TEXT NOT NULL,
    state             TEXT NOT NULL,
    data_classification TEXT NOT NULL,
    model             TEXT,
    idempotency_key   TEXT,
    request_sha256    TEXT NOT NULL,
    trace_id          TEXT,
    dag               TEXT,
    reason            TEXT,
    failed_task       TEXT,
    tasks_total       BIGINT NOT NULL DEFAULT 0,
    tasks_succeeded   BIGINT NOT NULL DEFAULT 0,
    tasks_failed      BIGINT NOT NULL DEFAULT 0,
    result_artifact   TEXT,
    result_task       TEXT,
    submitted_at_ms   BIGINT NOT NULL,
    started_at_ms     BIGINT,
    finished_at_ms    BIGINT,
    updated_at_ms     BIGINT NOT NULL,
    UNIQUE (tenant, idempotency_key)
);
CREATE INDEX jobs_tenant_submitted ON jobs (tenant, submitted_at_ms DESC, job_id);
CREATE INDEX jobs_tenant_state ON jobs (tenant, state);

CREATE TABLE tasks (
    job_id        TEXT NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
    task_id       TEXT NOT NULL,
    kind          TEXT NOT NULL,
    state         TEXT NOT NULL,
    attempt       BIGINT NOT NULL DEFAULT 0,
    worker_id     TEXT,
    parents       TEXT NOT NULL,
    reason        TEXT,
    artifact_path TEXT,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (job_id, task_id)
);
CREATE INDEX tasks_state ON tasks (job_id, state);

CREATE TABLE attempts (
    job_id            TEXT NOT NULL,
    task_id           TEXT NOT NULL,
    attempt           BIGINT NOT NULL,
    worker_id         TEXT NOT NULL,
    state             TEXT NOT NULL,
    started_at_ms     BIGINT,
    finished_at_ms    BIGINT,
    duration_ms       BIGINT,
    error             TEXT,
    retryable         INTEGER,
    prompt_tokens     BIGINT,
    completion_tokens BIGINT,
    -- No foreign key to tasks: attempts arrive on `task-events`, which may be read before the
    -- `job-events` record that creates the task row.
    PRIMARY KEY (job_id, task_id, attempt)
);

CREATE TABLE workers (
    worker_id       TEXT PRIMARY KEY,
    cores           BIGINT NOT NULL,
    memory_mb       BIGINT NOT NULL,
    slots           BIGINT NOT NULL,
    models          TEXT NOT NULL,
    tools           TEXT NOT NULL,
    labels          TEXT NOT NULL,
    registered_at_ms BIGINT NOT NULL,
    last_beat_ms    BIGINT NOT NULL,
    cpu_pct         REAL,
    memory_used_mb  BIGINT,
    running         BIGINT NOT NULL DEFAULT 0,
    warm_models     TEXT,
    left_at_ms      BIGINT
);

CREATE TABLE artifacts (
    path          TEXT PRIMARY KEY,
    tenant        TEXT NOT NULL,
    job_id        TEXT NOT NULL,
    task_id       TEXT NOT NULL,
    attempt       BIGINT NOT NULL,
    sha256        TEXT NOT NULL,
    size_bytes    BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX artifacts_job ON artifacts (tenant, job_id);

-- Lineage: which artifacts an artifact was computed from.
CREATE TABLE artifact_inputs (
    artifact_path TEXT NOT NULL REFERENCES artifacts (path) ON DELETE CASCADE,
    input_path    TEXT NOT NULL,
    PRIMARY KEY (artifact_path, input_path)
);

-- Append-only audit log with a hash chain: hash = sha256(prev_hash || canonical record).
CREATE TABLE audit_events (
    seq        BIGINT PRIMARY KEY,
    ts_ms      BIGINT NOT NULL,
    tenant     TEXT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    detail     TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE
);
CREATE INDEX audit_tenant ON audit_events (tenant, seq);

-- Where each projector has read up to, updated in the same transaction as its effects.
CREATE TABLE projector_offsets (
    projector   TEXT NOT NULL,
    topic       TEXT NOT NULL,
    partition   BIGINT NOT NULL,
    next_offset BIGINT NOT NULL,
    PRIMARY KEY (projector, topic, partition)
);

-- Each job's event stream, as served over SSE: `seq` is the SSE event id (per job, from 1), so a
-- client resumes with Last-Event-ID; `source` (topic/partition/offset) makes projection idempotent.
CREATE TABLE job_stream (
    job_id  TEXT NOT NULL,
    seq     BIGINT NOT NULL,
    source  TEXT NOT NULL UNIQUE,
    event   TEXT NOT NULL,
    data    TEXT NOT NULL,
    ts_ms   BIGINT NOT NULL,
    PRIMARY KEY (job_id, seq)
);

-- Dead letters: undecodable records and dead-lettered tasks, with the reason and the payload.
CREATE TABLE dead_letters (
    source         TEXT PRIMARY KEY,
    tenant         TEXT NOT NULL,
    job_id         TEXT,
    task_id        TEXT,
    reason         TEXT NOT NULL,
    payload        TEXT NOT NULL,
    origin         TEXT,
    ts_ms          BIGINT NOT NULL,
    requeued_at_ms BIGINT
);
CREATE INDEX dead_letters_tenant ON dead_letters (tenant, ts_ms);
