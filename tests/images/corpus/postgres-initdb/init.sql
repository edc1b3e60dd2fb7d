-- Run once by the image's entrypoint when it initialises an empty data directory.
CREATE TABLE visits (id serial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now());
