"""EKS for ML workloads: cluster, CPU and GPU node groups, add-ons, system components and IRSA."""
