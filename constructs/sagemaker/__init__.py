"""SageMaker: real-time endpoints with blue/green deployments, and training jobs' role and request."""
