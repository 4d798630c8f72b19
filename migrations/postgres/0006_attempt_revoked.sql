-- Why the scheduler revoked an attempt (cancelled, timed_out, worker_lost, superseded), when it did.
ALTER TABLE attempts ADD COLUMN revoked TEXT;
