# Versions and state. The provider is pinned exactly: a provider upgrade is a reviewed change, never a
# side effect of `terraform init` in the pipeline.
terraform {
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "6.50.0"
    }
  }

  # Partial configuration: bucket and prefix come from envs/<env>.backend.hcl (or -backend-config
  # flags in Cloud Build), so one code base serves dev and prod with separate state.
  backend "gcs" {}
}
