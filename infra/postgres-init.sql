-- One database per service on the compose file's PostgreSQL (modelyard itself is POSTGRES_DB).
CREATE DATABASE mlflow OWNER modelyard;
CREATE DATABASE prefect OWNER modelyard;
