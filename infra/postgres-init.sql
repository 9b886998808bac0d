-- One database per service on the compose file's PostgreSQL (modelyard itself is POSTGRES_DB).
-- That server belongs to this compose project (its own volume); `make up` on a shared PostgreSQL
-- names its databases per checkout instead and marks each with its owner (modelyard/orchestration/stack.py).
CREATE DATABASE mlflow OWNER modelyard;
CREATE DATABASE prefect OWNER modelyard;
