"""Check types: one module per YAML `type:`, each behind the Check protocol."""
