SELECT i, 'row ' || i AS t FROM generate_series(1, 1000) AS i;
