"""Kubernetes knowledge for moving workloads from EKS on EC2 to EKS Fargate (pure: dicts in, findings out)."""
