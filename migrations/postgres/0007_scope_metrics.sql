-- The newest record of each key of the `metrics` topic (a tenant's scope, or `cluster`): what the
-- dashboard's live charts show. `body` is the record's JSON body.
CREATE TABLE scope_metrics (
    scope TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    body TEXT NOT NULL,
    ts_ms BIGINT NOT NULL
);
