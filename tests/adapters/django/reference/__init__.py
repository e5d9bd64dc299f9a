"""The reference platform of docs/adding-a-platform.md: a shop of one model, paid by CMI.

Small enough to read in one sitting; the guide includes these files as they are and
``tests/adapters/django/test_reference_platform.py`` pays, refunds and fails with it.
"""
