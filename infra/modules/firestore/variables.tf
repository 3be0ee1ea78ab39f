variable "project_id" {
  description = "Project of the database."
  type        = string
}

variable "location" {
  description = "Firestore location id (immutable)."
  type        = string
}

variable "pitr" {
  description = "Enable point-in-time recovery."
  type        = bool
  default     = false
}

variable "deletion_protection" {
  description = "Refuse to delete the database."
  type        = bool
  default     = true
}

variable "indexes" {
  description = "Composite indexes: collection, query scope and ordered fields (order or array_config)."
  type = list(object({
    collection  = string
    query_scope = optional(string, "COLLECTION")
    fields = list(object({
      field_path   = string
      order        = optional(string)
      array_config = optional(string)
    }))
  }))
  default = []

  validation {
    condition = alltrue(flatten([for i in var.indexes : [
      for f in i.fields : (f.order == null) != (f.array_config == null)
    ]]))
    error_message = "each index field needs exactly one of order (ASCENDING/DESCENDING) or array_config (CONTAINS)."
  }

  validation {
    condition     = alltrue([for i in var.indexes : length(i.fields) >= 2])
    error_message = "a composite index needs at least two fields (single fields are indexed automatically)."
  }
}

variable "ttl_fields" {
  description = "Timestamp fields whose value is the document's expiry (Firestore TTL policy)."
  type = list(object({
    collection = string
    field      = string
  }))
  default = []
}

variable "exemptions" {
  description = "Fields exempted from single-field indexing (large, never queried)."
  type = list(object({
    collection = string
    field      = string
  }))
  default = []
}
