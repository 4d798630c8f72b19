-- Sub-DAGs at run time (issue 18): on the task that expanded its job, what it appended —
-- JSON {attempt, added, fallback_reason}; fallback_reason says why the task's own proposal (a
-- model's plan) was refused and its fallback appended instead. NULL for other tasks. Keep in
-- step with migrations/postgres/0004_task_expansion.sql.
ALTER TABLE tasks ADD COLUMN expansion TEXT;
