-- A job is (tenant, job id): two tenants may use the same id, and no tenant can learn or take
-- another's (issue 16). Keep in step with migrations/sqlite/0002_tenant_job_identity.sql.
-- The projected tables are rebuilt from the log: dropped here, recreated keyed by tenant, and the
-- projector's offsets reset so it projects the log again. Jobs, tasks, attempts and streams all
-- come from the log; artifacts and dead letters are kept (their rows are re-projected as no-ops).
DROP TABLE job_stream;
DROP TABLE attempts;
DROP TABLE tasks;
DROP TABLE jobs;
DELETE FROM projector_offsets;

CREATE TABLE jobs (
    job_id            TEXT NOT NULL,
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
    PRIMARY KEY (tenant, job_id),
    UNIQUE (tenant, idempotency_key)
);
CREATE INDEX jobs_tenant_submitted ON jobs (tenant, submitted_at_ms DESC, job_id);
CREATE INDEX jobs_tenant_state ON jobs (tenant, state);

CREATE TABLE tasks (
    tenant        TEXT NOT NULL,
    job_id        TEXT NOT NULL,
    task_id       TEXT NOT NULL,
    kind          TEXT NOT NULL,
    state         TEXT NOT NULL,
    attempt       BIGINT NOT NULL DEFAULT 0,
    worker_id     TEXT,
    parents       TEXT NOT NULL,
    reason        TEXT,
    artifact_path TEXT,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant, job_id, task_id),
    FOREIGN KEY (tenant, job_id) REFERENCES jobs (tenant, job_id) ON DELETE CASCADE
);
CREATE INDEX tasks_state ON tasks (tenant, job_id, state);

CREATE TABLE attempts (
    tenant            TEXT NOT NULL,
    job_id            TEXT NOT NULL,
    task_id           TEXT NOT NULL,
    attempt           BIGINT NOT NULL,
    worker_id         TEXT NOT NULL,
    state             TEXT NOT NULL,
    started_at_ms     BIGINT,
    finished_at_ms    BIGINT,
    duration_ms       BIGINT,
    error             TEXT,
    retryable         BOOLEAN,
    prompt_tokens     BIGINT,
    completion_tokens BIGINT,
    -- No foreign key to tasks: attempts arrive on `task-events`, which may be read before the
    -- `job-events` record that creates the task row.
    PRIMARY KEY (tenant, job_id, task_id, attempt)
);

CREATE TABLE job_stream (
    tenant  TEXT NOT NULL,
    job_id  TEXT NOT NULL,
    seq     BIGINT NOT NULL,
    source  TEXT NOT NULL UNIQUE,
    event   TEXT NOT NULL,
    data    TEXT NOT NULL,
    ts_ms   BIGINT NOT NULL,
    PRIMARY KEY (tenant, job_id, seq)
);
