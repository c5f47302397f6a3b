"""The account-level foundation GitOps needs: the Terraform state store and the roles GitHub Actions assumes."""
