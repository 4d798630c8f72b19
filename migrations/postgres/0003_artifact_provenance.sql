-- Result caching by lineage (issue 18): what an output determined by its inputs was computed
-- from besides its input artifacts (cache key, model weights sha256, executor version) and, for a
-- reuse, the artifact it was copied from. JSON of `splai_events::Provenance`; NULL for outputs
-- that are not cached (sampled inference, shell, sleep). Keep in step with
-- migrations/sqlite/0003_artifact_provenance.sql.
ALTER TABLE artifacts ADD COLUMN provenance TEXT;
