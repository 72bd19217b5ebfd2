\set i random(1, 65535)
SELECT :i::int AS a, 'hello'::text AS b;
