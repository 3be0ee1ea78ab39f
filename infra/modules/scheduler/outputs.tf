output "ids" {
  description = "Job ids by name."
  value       = { for k, j in google_cloud_scheduler_job.this : k => j.id }
}
