"""Monitoring and alerting: the environment's alert topic, alarms, dashboard and Container Insights on EKS."""
