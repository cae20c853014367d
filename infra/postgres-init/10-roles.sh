#!/bin/sh
# The postgres container runs this once, when it initialises an empty data volume (/docker-entrypoint-initdb.d):
# the two roles of README "Database roles" and the database, owned by the owner role. `migrate` (db upgrade, as
# the owner) then creates the schema and grants the runtime role its privileges.
# Names may be changed with TRIAL_DB, TRIAL_OWNER_ROLE and TRIAL_APP_ROLE (and then in compose.yaml's URLs).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  --set db="${TRIAL_DB:-trial}" --set owner="${TRIAL_OWNER_ROLE:-trial_owner}" --set app="${TRIAL_APP_ROLE:-trial_app}" \
  --set owner_password="$TRIAL_OWNER_PASSWORD" --set app_password="$TRIAL_APP_PASSWORD" <<'SQL'
CREATE ROLE :"owner" LOGIN PASSWORD :'owner_password';
CREATE ROLE :"app" LOGIN PASSWORD :'app_password';
CREATE DATABASE :"db" OWNER :"owner";
SQL
