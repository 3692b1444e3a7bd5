set -eu
endpoint=${S3_ENDPOINT:+--endpoint-url $S3_ENDPOINT}
key="$BACKUP_KEY"
if [ "$key" = latest ]; then
  key="${S3_PREFIX}$(aws s3 ls $endpoint "s3://${S3_BUCKET}/${S3_PREFIX}" | awk '{print $4}' | sort | tail -n 1)"
fi
echo "restoring s3://${S3_BUCKET}/${key}"
aws s3 cp $endpoint "s3://${S3_BUCKET}/${key}" /restore/dump.sql.gz
