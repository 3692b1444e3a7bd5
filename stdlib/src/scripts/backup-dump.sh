set -eu
key="${S3_PREFIX}${PGDATABASE}-$(date -u +%Y%m%dT%H%M%SZ).sql.gz"
pg_dump --no-owner --no-privileges | gzip -9 > /backup/dump.sql.gz
printf '%s' "$key" > /backup/key
