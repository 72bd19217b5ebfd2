\set w random(0, 9)
INSERT INTO bench_ins (a, b) VALUES (:w, 'hello');
