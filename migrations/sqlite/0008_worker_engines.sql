-- The language models a worker decodes in an inference engine, with the sequences each takes at
-- once (`worker_registered.engines`): the OpenAI endpoints refuse at once a chat request naming a
-- model no live worker decodes (an embedding model), instead of queueing it until it is
-- unschedulable.
ALTER TABLE workers ADD COLUMN engines TEXT;
