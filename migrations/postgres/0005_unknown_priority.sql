-- A rejected job's type and priority are not known (its request never planned): 'unknown', as the
-- projection now writes, instead of the placeholder 'normal' (not a priority).
UPDATE jobs SET priority = 'unknown' WHERE priority = 'normal';
