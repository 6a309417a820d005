"""The service-level rules of seed section 2: policy file and pure deadline functions."""
