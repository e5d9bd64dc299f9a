"""The CMI section of Oscar's dashboard: payments, their callbacks, staff operations."""
