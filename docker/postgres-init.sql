-- Run once by postgres:16 on an empty data directory (docker-entrypoint-initdb.d).
-- Synapse uses the database "synapse" (POSTGRES_DB); the bridge gets its own.
CREATE DATABASE matrix_msn;
