# terraform init -backend-config=envs/dev.backend.hcl
bucket = "payments-dev-example-tfstate"
prefix = "payments/dev"
