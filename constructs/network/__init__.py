"""The platform's network: VPC, subnets, NAT, endpoints and flow logs."""
