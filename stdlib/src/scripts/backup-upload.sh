set -eu
aws s3 cp ${S3_ENDPOINT:+--endpoint-url "$S3_ENDPOINT"} /backup/dump.sql.gz "s3://${S3_BUCKET}/$(cat /backup/key)"
