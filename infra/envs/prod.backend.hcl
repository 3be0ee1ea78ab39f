# terraform init -backend-config=envs/prod.backend.hcl
bucket = "payments-prod-example-tfstate"
prefix = "payments/prod"
