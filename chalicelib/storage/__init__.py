"""The only layer that talks to DynamoDB, SQS and S3. Every function takes the tenant (or owner scope) explicitly."""
