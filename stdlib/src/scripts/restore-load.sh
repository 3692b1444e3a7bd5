set -eu
gunzip -c /restore/dump.sql.gz | psql -v ON_ERROR_STOP=1 --dbname "$TARGET_DATABASE"
